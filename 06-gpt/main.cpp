// 06-gpt: a Transformer, the GPT of the lecture's end, trained on a CPU.
//
// Same data, training loop and sampling as 05-multihead. The model becomes a
// stack of n_layer Blocks, each attention then a feed-forward layer, with
// residual connections, LayerNorm and dropout, and a final LayerNorm; it is
// trained with the recipe of the small CPU Shakespeare GPT (warm-up and cosine
// learning rate, AdamW with weight decay on matrices, gradient clipping). With
// the defaults it reaches a validation loss of about 1.91 in 2000 steps.
// --no-residual, --no-layernorm, --no-proj, --activation, --ffwd-mult,
// --no-tie and --lr-schedule switch single pieces off, to measure them.
//
// It is also a tool: --out saves checkpoints, --resume continues from one,
// and `06-gpt sample --checkpoint DIR` writes text with a key/value cache.
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "06-gpt/checkpoint.hpp"
#include "06-gpt/complete.hpp"
#include "06-gpt/generate.hpp"
#include "06-gpt/inspect.hpp"
#include "06-gpt/model.hpp"
#include "06-gpt/sample.hpp"
#include "common/runtime.hpp"
#include "06-gpt/train.hpp"
#include "common/cli.hpp"
#include "common/fileio.hpp"
#include "common/limits.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

namespace {
namespace fs = std::filesystem;

// What a run does besides training (not part of a checkpoint).
struct RunOptions {
    std::string data_dir, metrics_path, summary_path, plot_path, prompt, out_dir, resume_dir, preset = "default";
    std::string text_path, val_text_path;  // --text, --val-text: another text than Tiny Shakespeare
    int max_new_tokens = 500, top_k = 0, threads = 0, stop_at = -1;  // threads 0: one per idle core
    float temperature = 1.0f;
};

struct EvalOptions {
    std::string checkpoint, text, data_dir, grad_out;
    int batch_size = 16, threads = 0;
};

// Refuses settings whose model cannot fit in this machine's memory, before
// anything is allocated: at the least, the parameters with their gradients and
// AdamW's two moments, and what every block keeps for its backward pass of
// each of the B*T positions (model.hpp): ln1(x), out, x1, ln2(x1) and the
// block's output y (5C), q, k, v (3C), and fc's output, the activation's
// input (ffwd_mult C); the logits and their softmax (2V); the (B, nh, T, T)
// attention weights print_shapes keeps for one block, and every block's
// dropout mask, a bit per weight.
void check_fits(const Config& c, int B) {
    const double params = parameter_count(c);
    const double BT = double(B) * c.block_size, attention = BT * c.n_head * c.block_size;
    const double activations = c.n_layer * BT * c.n_embd * (8 + c.ffwd_mult) + 2 * BT * c.vocab_size + attention;
    nn::check_fits(4.0 * (4 * params + activations) + (c.dropout > 0 ? c.n_layer * attention / 8 : 0),
                   fmt::format("a model of {:.0f} parameters trained on batches of {} x {} characters", params, B,
                               c.block_size));
}

void add_run_options(CLI::App& app, RunOptions& o) {
    nn::add_data_option(app, o.data_dir);
    app.add_option("--text", o.text_path, "Train on this UTF-8 text instead of --data's tinyshakespeare.txt (the "
                   "vocabulary is its characters; its last 10% is the validation split, unless --val-text)");
    app.add_option("--val-text", o.val_text_path, "With --text: validate on this text instead, and train on all of "
                   "--text (its characters must be in --text's vocabulary)");
    app.add_option("--max-new-tokens", o.max_new_tokens, "Characters to generate after training")
        ->check(nn::Count(0, 1000000))->capture_default_str();
    app.add_option("--prompt", o.prompt, "Text to continue (default: token 0, a newline in Tiny Shakespeare, as in the lecture)");
    app.add_option("--temperature", o.temperature, "Divide the logits by this before sampling")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--top-k", o.top_k, "Sample only among the k likeliest characters (0: all)")
        ->check(nn::Count(0, 2097152))->capture_default_str();
    app.add_option("--metrics", o.metrics_path, "Write step, train_loss, val_loss, seconds as JSON lines here");
    app.add_option("--summary-json", o.summary_path, "Write the run's figures (ms per training step, peak memory, "
                   "last losses) here as one JSON line");
    app.add_option("--plot", o.plot_path, "Draw the train and val losses against the step into this PNG");
    app.add_option("--preset", o.preset, "default: the small CPU model above; lecture: the lecture's "
                   "6 layers, 6 heads, n_embd 384, context 256, batch 64, dropout 0.2, lr 3e-4, 5000 "
                   "steps (flags given too win)")
        ->check(CLI::IsMember({"default", "lecture"}))->capture_default_str();
    app.add_option("--threads", o.threads, "OpenMP threads (0: one per core left idle by other programs, "
                   "measured at the start)")->check(nn::Count(0, 256))->capture_default_str();
    app.add_option("--out", o.out_dir, "Save checkpoints here: best.ckpt (lowest val loss) and last.ckpt");
    app.add_option("--resume", o.resume_dir, "Continue training from DIR/last.ckpt (saving there too unless --out)");
    app.add_option("--stop-at", o.stop_at, "Stop after this many steps, saving last.ckpt to --resume later")
        ->check(nn::Count(0, 1000000));
}

CLI::App* add_eval_command(CLI::App& app, EvalOptions& o) {
    CLI::App* eval = app.add_subcommand("eval", "The mean cross-entropy of a saved model over a text, read in "
                                                "consecutive windows of its context: to compare it with another implementation");
    eval->add_option("--checkpoint", o.checkpoint, "A directory written by --out (best.ckpt is used), or a .ckpt file")
        ->required();
    eval->add_option("--text", o.text, "A UTF-8 text file (default: the validation split, the last 10% of --data's "
                                       "tinyshakespeare.txt)");
    nn::add_data_option(*eval, o.data_dir);
    eval->add_option("--batch-size", o.batch_size, "Windows per forward pass")->check(nn::Count(1, 4096))->capture_default_str();
    eval->add_option("--threads", o.threads, "OpenMP threads (0: one per idle core)")->check(nn::Count(0, 256))
        ->capture_default_str();
    eval->add_option("--grad", o.grad_out, "Instead, write the loss and the gradient of every parameter on one batch, "
                     "the first --batch-size windows of the text, to this file (for bench/gpt-parity)");
    return eval;
}

// The lecture's gpt.py sizes and settings, where no flag says otherwise. The
// rest of the recipe stays this lesson's: GELU, tied head, warm-up and cosine
// decay (here to 3e-5), AdamW betas (0.9, 0.99), weight decay 0.1, clipping.
void apply_preset(const CLI::App& app, const std::string& preset, Config& c, TrainConfig& t) {
    if (preset != "lecture") return;
    auto set = [&](const char* flag, auto& value, auto preset_value) {
        if (app.get_option(flag)->count() == 0) value = preset_value;
    };
    set("--n-layer", c.n_layer, 6);
    set("--n-head", c.n_head, 6);
    set("--n-embd", c.n_embd, 384);
    set("--block-size", c.block_size, 256);
    set("--dropout", c.dropout, 0.2f);
    set("--batch-size", t.batch_size, 64);
    set("--lr", t.learning_rate, 3e-4f);
    set("--min-lr", t.min_lr, 3e-5f);
    set("--max-iters", t.max_iters, 5000);
    set("--eval-interval", t.eval_interval, 500);
}

// The text to train on: --data's Tiny Shakespeare, or --text, split 90/10 or
// validated on --val-text.
nn::TextData load_training_text(const RunOptions& run) {
    if (run.text_path.empty()) {
        if (!run.val_text_path.empty()) nn::fail("--val-text needs --text: the text it validates");
        return nn::load_text(fs::path(run.data_dir) / "tinyshakespeare.txt");
    }
    nn::TextData data = nn::load_text(run.text_path);
    if (run.val_text_path.empty()) return data;
    data.train.insert(data.train.end(), data.val.begin(), data.val.end());
    const std::string bytes = nn::read_file(run.val_text_path, std::uint64_t{1} << 30);
    data.val = data.vocab.encode(nn::decode_utf8(bytes, run.val_text_path), run.val_text_path);
    data.source = run.text_path + " and " + run.val_text_path;
    return data;
}

// A resumed run must use the settings the checkpoint was trained with.
void check_same(const fs::path& file, const Checkpoint& k, const Config& c, const TrainConfig& t,
                const std::string& vocabulary) {
    std::string diff = nn::settings_diff(k.config, k.train, c, t);
    if (k.vocabulary != vocabulary) diff += std::string(diff.empty() ? "" : ", ") + "a different vocabulary (another text?)";
    if (!diff.empty()) nn::fail("{} was trained with other settings; resume with the same ones: {}", file.string(), diff);
}

// What the scale does at initialisation, in the first block: the variance of the scores q.k over
// every (i, j <= i) of a sequence, with and without 1 / sqrt(hs), and softmax's largest weight in
// a row, averaged over the rows, for qkv (B*T, 3C) and again for q, k drawn from N(0, 1) (as the
// lecture does, with their own generator: the run's is not touched). With --score, also the run's
// score: how widely it spreads over the keys of a row (the standard deviation over j <= i, averaged
// over the rows i >= 1) against the dot product's, and softmax's largest weight.
void print_scale(const nn::Matrix& qkv, const Config& c, int B, std::uint64_t seed) {
    const int T = c.block_size, C = c.n_embd, hs = C / c.n_head;
    auto print = [&](const char* what, const nn::Matrix& m) {
        double var_q = 0, var_k = 0, sum = 0, sum2 = 0, count = 0, max_scaled = 0, max_unscaled = 0;
        double spread_dot = 0, spread_score = 0, max_score = 0, rows = 0;  // --score
        auto variance = [](const auto& x) { return static_cast<double>((x.array() - x.mean()).square().mean()); };
        const float scale = c.scale ? 1.0f / std::sqrt(static_cast<float>(hs)) : 1.0f;
        nn::Matrix s(T, T), w(T, T), score(T, T);
        nn::Vector row_max(T), row_sum(T);
        for (int h = 0; h < c.n_head; ++h) {
            var_q += variance(m.middleCols(h * hs, hs)) / c.n_head;
            var_k += variance(m.middleCols(C + h * hs, hs)) / c.n_head;
            for (int b = 0; b < B; ++b) {
                s.noalias() = m.block(b * T, h * hs, T, hs) * m.block(b * T, C + h * hs, T, hs).transpose();
                for (int i = 0; i < T; ++i) {
                    sum += s.row(i).head(i + 1).sum();
                    sum2 += s.row(i).head(i + 1).squaredNorm();
                    count += i + 1;
                }
                for (const bool scaled : {true, false}) {
                    w = scaled ? (s / std::sqrt(static_cast<float>(hs))).eval() : s;
                    causal_softmax(w, row_max.data(), row_sum.data());
                    (scaled ? max_scaled : max_unscaled) += w.rowwise().maxCoeff().sum() / (double(c.n_head) * B * T);
                }
                if (c.score == Score::dot) continue;
                score_forward(c.score, m.block(b * T, h * hs, T, hs), m.block(b * T, C + h * hs, T, hs), scale, score);
                for (int i = 1; i < T; ++i, ++rows) {
                    spread_score += std::sqrt(variance(score.row(i).head(i + 1)));
                    spread_dot += scale * std::sqrt(variance(s.row(i).head(i + 1)));
                }
                causal_softmax(score, row_max.data(), row_sum.data());
                max_score += score.rowwise().maxCoeff().sum() / (double(c.n_head) * B * T);
            }
        }
        const double var_s = sum2 / count - (sum / count) * (sum / count);
        fmt::print("  {}: var(q) {:.3g}, var(k) {:.3g}; var(q.k) {:.3g} (hs var(q) var(k) = {:.3g}), "
                   "var(q.k / sqrt(hs)) {:.3g}\n", what, var_q, var_k, var_s, hs * var_q * var_k, var_s / hs);
        fmt::print("    softmax's largest weight in a row, averaged: {:.3f} with 1/sqrt(hs), {:.3f} without\n",
                   max_scaled, max_unscaled);
        if (c.score != Score::dot && rows > 0)
            fmt::print("    the {} score: spread over a row's keys {:.3g} (the dot product's: {:.3g}); "
                       "softmax's largest weight in a row, averaged: {:.3f}\n",
                       setting_text(c.score), spread_score / rows, spread_dot / rows, max_score);
    };
    double even = 0;
    for (int i = 0; i < T; ++i) even += 1.0 / (i + 1) / T;
    fmt::print("the scale at initialisation, block 1, hs = {}, scores q.k of every (i, j <= i) of a sequence "
               "(spread evenly, the largest weight would average {:.3f}):\n", hs, even);
    print("this batch's q, k", qkv);
    nn::Matrix unit(qkv.rows(), 2 * C);
    nn::Rng draw(seed ^ 0x5ca1eULL);
    draw.fill_normal(nn::as_span(unit));
    print("q, k from N(0, 1), the lecture's check", unit);
    fmt::print("  this run: {}\n\n", c.scale ? "scores divided by sqrt(hs) (--no-scale: not)" : "no scale (--no-scale)");
}

// One batch walked through the model and back, to show the shapes.
void print_shapes(GPTLanguageModel& model, const nn::TextData& data, const TrainConfig& train, int threads) {
    const Config& c = model.config;
    const int B = train.batch_size, T = c.block_size, V = c.vocab_size;
    nn::Rng show(train.seed + 1);
    Block& b0 = model.blocks[0];
    b0.sa.att.keep_weights = true;  // to show wei; training does not keep it (attention.hpp)
    const double loss0 = model.loss(nn::get_batch(data, nn::Split::train, B, T, show));
    long n_params = 0;
    for (const nn::Parameter* p : model.parameters()) n_params += p->value.size();
    auto row = [](const std::string& what, const nn::Matrix& m, const std::string& note) {
        fmt::print("    {:<42} {}  {}\n", what, nn::shape(m), note);
    };
    auto ln = [&](const char* name) { return c.layernorm ? fmt::format("{}(x)", name) : std::string("x"); };
    fmt::print("shapes, with B = {} (batch), T = {} (time), C = {} (n_embd), nh = {} (heads), hs = {} (head size), V = {}:\n",
               B, T, c.n_embd, c.n_head, b0.sa.head_size, V);
    fmt::print("  {:<44} ({}, {})  tokens; row b is text[i_b : i_b+{}]\n", "xb = get_batch('train')", B, T, T);
    fmt::print("  {:<44} {}  (B*T, C)\n", "x = tok_emb + pos_emb", nn::shape(model.x));
    fmt::print("  {} x Block:\n", c.n_layer);
    if (c.layernorm)  // ln1(x) is not kept (memory.hpp); it has its input's shape
        row("ln1(x)", *b0.ln1.x, "(B*T, C): each row to mean 0, variance 1");
    row(fmt::format("qkv = c_attn({})", ln("ln1")), b0.sa.c_attn.y, "(B*T, 3C): q, k, v of all heads");
    const std::string scores = c.score == Score::dot ? (c.scale ? "q k^T / sqrt(hs)" : "q k^T")
                                                     : score_formula(c.score, c.scale);  // 04's --score
    row("wei = softmax(mask(" + scores + "))", b0.sa.att.wei, c.score == Score::dot ? "(B*nh*T, T): B*nh blocks of (T, T)"
        : fmt::format("(B*nh*T, T): B*nh blocks of (T, T), the {} score", setting_text(c.score)));
    row("out = wei v", b0.sa.out, "(B*T, C): the heads side by side");
    const std::string attn_out = c.projection ? "proj(out)" : "out", ffwd_out = c.projection ? "proj(h)" : "h";
    row((c.residual ? "x = x + " : "x = ") + attn_out, b0.x1, "(B*T, C)");
    row(fmt::format("h = {}(fc({}))", setting_text(c.activation), ln("ln2")), b0.ffwd.fc.y,  // h's shape: h itself is not kept (model.hpp)
        fmt::format("(B*T, {}C)", c.ffwd_mult));
    row((c.residual ? "x = x + " : "x = ") + ffwd_out, b0.y, "(B*T, C)");
    fmt::print("  {:<44} {}  (B*T, V): {}\n", fmt::format("logits = lm_head({})", ln("ln_f")), nn::shape(model.criterion.probs),
               c.tie ? "tied to token_embedding_table" : "its own (V, C) matrix");
    fmt::print("  {:<44} ()  = {:.4f} (a uniform guess gives ln {} = {:.4f})\n", "loss = cross_entropy(logits, yb)",
               loss0, V, std::log(static_cast<double>(V)));
    b0.sa.att.keep_weights = false;
    b0.sa.att.wei.resize(0, 0);
    // The same batch back. The blocks free their activations' gradients once read (memory.hpp), so
    // those shapes are given from B, T, C, nh; the parameters' gradients are the kept matrices.
    model.backward();
    const int C = c.n_embd, hs = b0.sa.head_size;
    auto dims = [](long rows, long cols) { return fmt::format("({}, {})", rows, cols); };
    fmt::print("  backward, from the loss to the embeddings:\n");
    fmt::print("  {:<44} {}  (B*T, V): (softmax(logits) - one_hot(yb)) / (B*T)\n", "dlogits", nn::shape(model.criterion.dlogits));
    fmt::print("  {} x Block, the last first:\n", c.n_layer);
    fmt::print("    in each of the B*nh = {} (sequence, head) pairs in turn (attention.hpp):\n", B * c.n_head);
    fmt::print("      {:<40} {}  (T, T): the weights again from q, k, then d of them\n", "dwei = dout_h v^T", dims(T, T));
    fmt::print("      {:<40} {}  (T, T): 0 in the future\n", "ds = wei * (dwei - rowsum(dwei * wei))", dims(T, T));
    if (c.score == Score::dot)
        fmt::print("      {:<40} {}  (T, hs) each\n", c.scale ? "dq = ds k, dk = ds^T q (/ sqrt(hs))" : "dq = ds k, dk = ds^T q", dims(T, hs));
    else
        fmt::print("      {:<40} {}  (T, hs) each: the {} score's backward\n", "dq, dk", dims(T, hs), setting_text(c.score));
    fmt::print("      {:<40} {}  (T, hs)\n", "dv = wei^T dout_h", dims(T, hs));
    fmt::print("    {:<42} {}  (B*T, 3C): every head's dq, dk, dv in its columns\n", "dqkv", dims(long(B) * T, 3 * C));
    fmt::print("    {:<42} {}  (3C, C)\n", "d c_attn.weight", nn::shape(b0.sa.c_attn.weight.grad));
    fmt::print("    {:<42} {}  (B*T, C): what the block hands to the one before\n", "dx", dims(long(B) * T, C));
    fmt::print("  {:<44} {}  (V, C): {}\n", "d token_embedding_table", nn::shape(model.token_embedding_table.weight.grad),
               c.tie ? "from the tied lm head and from the lookup" : "from the lookup");
    fmt::print("  {:<44} {}  (T, C)\n", "d position_embedding_table", nn::shape(model.position_embedding_table.weight.grad));
    fmt::print("  {} trained parameters, {} threads\n\n", n_params, threads);
    print_scale(b0.sa.c_attn.y, c, B, train.seed);
}

// What the training loop measured.
struct LoopStats {
    double seconds = 0, eval_seconds = 0, median_step_ms = 0;
};

// The lecture's training loop, from step `start` to `end`: every eval_interval
// steps estimate_loss (and save checkpoints), otherwise get_batch, loss,
// backward, clip, AdamW step.
struct Training {
    GPTLanguageModel& model;
    nn::AdamW& optimizer;
    const nn::TextData& data;
    const TrainConfig& train;
    const RunOptions& run;
    Checkpoint& state;  // what --out saves; its history grows
    nn::Rng& rng;       // the batches'
    int start, end;     // the steps to take: [start, end)
};
LoopStats train_loop(const Training& t) {
    auto& [model, optimizer, data, train, run, state, rng, start, end] = t;
    const int B = train.batch_size, T = model.config.block_size;
    const bool resumed = !run.resume_dir.empty();
    nn::MetricsLog metrics(run.metrics_path);
    auto log_metrics = [&](const EvalRecord& e) {
        metrics.write(fmt::format(R"({{"step": {}, "train_loss": {:.4f}, "val_loss": {:.4f}, "seconds": {:.2f}}})",
                                  e.step, e.train, e.val, e.seconds));
    };
    for (const EvalRecord& e : state.history) log_metrics(e);
    auto save = [&](const char* name, int step) {
        state.step = step;
        state.rng_state = rng.state();
        save_checkpoint(fs::path(run.out_dir) / name, state, model, optimizer);
    };
    nn::Progress progress("step", std::max(1, end - start));
    LoopStats stats;
    nn::Stopwatch clock;
    const double seconds_before = state.history.empty() ? 0.0 : state.history.back().seconds;
    std::vector<double> step_ms;
    auto model_loss = [&](const nn::Batch& batch) { return static_cast<float>(model.loss(batch)); };
    for (int step = start;; ++step) {
        const bool eval_due = step % train.eval_interval == 0 || step == train.max_iters;
        if (eval_due && !(step == start && resumed)) {
            const nn::Stopwatch eval_clock;
            model.train(false);
            const nn::Losses losses = nn::estimate_loss(data, train.eval_iters, B, T, model_loss, train.seed);
            model.train(true);
            stats.eval_seconds += eval_clock.seconds();
            progress.clear();
            fmt::print("step {}: train loss {:.4f}, val loss {:.4f}\n", step, losses.train, losses.val);
            const EvalRecord e{step, losses.train, losses.val, seconds_before + clock.seconds()};
            state.history.push_back(e);
            log_metrics(e);
            if (!run.out_dir.empty()) {
                if (losses.val < state.best_val) {
                    state.best_val = losses.val;
                    save("best.ckpt", step);
                }
                save("last.ckpt", step);
            }
        }
        if (step >= end) {
            if (!run.out_dir.empty() && !eval_due) save("last.ckpt", step);
            break;
        }
        const nn::Stopwatch step_clock;
        optimizer.options.lr = get_lr(train, step);
        const nn::Batch batch = nn::get_batch(data, nn::Split::train, B, T, rng);
        const double loss = model.loss(batch);
        optimizer.zero_grad();
        model.backward();
        if (train.grad_clip > 0) nn::clip_grad_norm(model.parameters(), train.grad_clip);
        optimizer.step();
        step_ms.push_back(step_clock.seconds() * 1e3);
        progress.update(step - start + 1, fmt::format("loss {:.3f}", loss));
    }
    progress.clear();
    stats.seconds = clock.seconds();
    std::sort(step_ms.begin(), step_ms.end());
    stats.median_step_ms = step_ms.empty() ? 0.0 : step_ms[step_ms.size() / 2];
    return stats;
}

void report(const LoopStats& s, int steps, const RunOptions& run, const Checkpoint& state, int end) {
    fmt::print("{} steps in {:.1f} s ({:.1f} s of it estimating losses): {:.1f} ms per training step "
               "(median), {:.1f} steps/s; peak memory {:.0f} MB\n",
               steps, s.seconds, s.eval_seconds, s.median_step_ms, s.median_step_ms > 0 ? 1e3 / s.median_step_ms : 0.0,
               nn::peak_rss_mb());
    const float none = std::numeric_limits<float>::quiet_NaN();  // null in the summary
    const EvalRecord last = state.history.empty() ? EvalRecord{0, none, none, 0} : state.history.back();
    nn::write_summary_json(run.summary_path, {{"steps", steps}, {"seconds", s.seconds}, {"eval_seconds", s.eval_seconds},
                                              {"ms_per_step_median", s.median_step_ms}, {"peak_memory_mb", nn::peak_rss_mb()},
                                              {"threads", run.threads}, {"train_loss", last.train}, {"val_loss", last.val}});
    if (!run.out_dir.empty())
        fmt::print("checkpoints in {}: best.ckpt (val loss {:.4f}), last.ckpt (step {})\n", run.out_dir, state.best_val, end);
    if (run.plot_path.empty()) return;
    nn::Series tr{"train", {}, {}}, va{"val", {}, {}};
    for (const EvalRecord& e : state.history) {
        tr.x.push_back(static_cast<float>(e.step));
        tr.y.push_back(e.train);
        va.x.push_back(static_cast<float>(e.step));
        va.y.push_back(e.val);
    }
    nn::write_line_plot(run.plot_path, "06-gpt: loss", "step", {tr, va});
    fmt::print("wrote the loss curves to {}\n", run.plot_path);
}

// 06-gpt eval: the mean cross-entropy of a saved model over a text. The text
// is cut into consecutive windows of block_size characters (the last one may
// be shorter); each window predicts its next characters from those before it
// in the window, so every character but the first is predicted exactly once.
int eval_command(const EvalOptions& o) {
    nn::set_threads(o.threads == 0 ? nn::idle_cores() : o.threads);
    const fs::path file = checkpoint_file(o.checkpoint, "best.ckpt");
    CheckpointReader reader(file);
    const Checkpoint& k = reader.info;
    const nn::Vocabulary vocab(nn::decode_utf8(k.vocabulary));
    std::vector<int> tokens;
    std::string what;
    if (o.text.empty()) {
        const nn::TextData data = nn::load_text(fs::path(o.data_dir) / "tinyshakespeare.txt");
        what = "the validation split of " + (fs::path(o.data_dir) / "tinyshakespeare.txt").string();
        tokens = vocab.encode(data.vocab.decode(data.val), what);
    } else {
        what = o.text;
        tokens = vocab.encode(nn::read_file(o.text, std::uint64_t{1} << 28), o.text);
    }
    if (tokens.size() < 2) nn::fail("{} has {} characters: at least 2 are needed to predict one", what, tokens.size());
    nn::Rng init(0);
    GPTLanguageModel model(k.config, init);
    reader.restore(model, nullptr);
    model.train(false);

    const int T = k.config.block_size;
    const std::size_t predictions = tokens.size() - 1, full = predictions / static_cast<std::size_t>(T);
    double total = 0;  // the sum of the cross-entropies of every prediction
    auto run = [&](std::size_t first_window, int B, int t) {
        nn::Batch batch{B, t, std::vector<int>(static_cast<std::size_t>(B) * t), std::vector<int>(static_cast<std::size_t>(B) * t)};
        for (int b = 0; b < B; ++b) {
            const std::size_t at = (first_window + static_cast<std::size_t>(b)) * static_cast<std::size_t>(T);
            std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(at), t, batch.x.begin() + b * t);
            std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(at) + 1, t, batch.y.begin() + b * t);
        }
        total += model.loss(batch) * B * t;  // loss() is the mean over the B*t predictions
    };
    if (!o.grad_out.empty()) {  // one batch forward and backward, written in the format of fileio.hpp
        if (full < static_cast<std::size_t>(o.batch_size))
            nn::fail("--grad needs {} full windows of {} characters; {} has {}", o.batch_size, T, what, full);
        nn::check_writable(o.grad_out);
        run(0, o.batch_size, T);
        for (nn::Parameter* p : model.parameters()) p->grad.setZero();
        model.backward();
        const double loss = total / (static_cast<double>(o.batch_size) * T);
        nn::BinaryWriter w(o.grad_out, "NN2GPTGR", 1);
        w.put<double>(loss);
        const std::vector<nn::Parameter*> params = model.parameters();
        nn::put_parameters(w, params, &nn::Parameter::grad);
        w.commit();
        fmt::print("loss {:.6f} on {} windows of {}; the gradients of {} parameters written to {}\n", loss,
                   o.batch_size, T, params.size(), o.grad_out);
        return 0;
    }
    const nn::Stopwatch clock;
    for (std::size_t w = 0; w < full; w += static_cast<std::size_t>(o.batch_size))
        run(w, static_cast<int>(std::min<std::size_t>(o.batch_size, full - w)), T);
    if (const std::size_t rest = predictions - full * static_cast<std::size_t>(T); rest > 0) run(full, 1, static_cast<int>(rest));
    const double mean = total / static_cast<double>(predictions);
    fmt::print("{}: {} characters of {}, {} predictions in {} windows of at most {}\n", file.string(), tokens.size(), what,
               predictions, full + (predictions % static_cast<std::size_t>(T) != 0), T);
    fmt::print("mean cross-entropy {:.6f} (perplexity {:.4f}) in {:.2f} s\n", mean, std::exp(mean), clock.seconds());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"06-gpt: a GPT (a stack of Transformer blocks) on Tiny Shakespeare, trained with "
                 "hand-written backprop and AdamW, with checkpoints; `06-gpt sample` writes text "
                 "from a checkpoint, `06-gpt eval` measures its loss on a text.",
                 "06-gpt"};
    Config config;
    TrainConfig train;
    RunOptions run;
    SampleOptions sample_options;
    nn::add_settings(app, config, train);
    add_run_options(app, run);
    const CLI::App* sample = add_sample_command(app, sample_options);
    EvalOptions eval_options;
    const CLI::App* eval = add_eval_command(app, eval_options);
    CompleteOptions complete_options;
    const CLI::App* complete = add_complete_command(app, complete_options);
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        nn::keep_freed_memory();
        if (*sample) return sample_command<CheckpointReader>(sample_options);
        if (*eval) return eval_command(eval_options);
        if (*complete) return complete_command<CheckpointReader>(complete_options);
        // 1. Settings: the preset, then refuse what cannot work, before any work is done.
        apply_preset(app, run.preset, config, train);
        config.validate();
        train.validate();
        if (run.stop_at > train.max_iters) nn::fail("--stop-at ({}) is after --max-iters ({})", run.stop_at, train.max_iters);
        if (run.threads == 0) run.threads = nn::idle_cores();
        nn::set_threads(run.threads);

        // 2. Data: the text, its vocabulary, the train and val splits.
        const nn::TextData data = load_training_text(run);
        nn::check_context(data, config.block_size);
        config.vocab_size = data.vocab.size();
        check_fits(config, train.batch_size);
        const std::vector<int> context = run.prompt.empty() ? std::vector<int>{0} : data.vocab.encode(run.prompt, "the prompt");
        if (run.text_path.empty())
            fmt::print("Tiny Shakespeare from {}: {} characters\n", run.data_dir, data.train.size() + data.val.size());
        else
            fmt::print("{}: {} characters\n", data.source, data.train.size() + data.val.size());
        fmt::print("  vocabulary, V = {}: {}\n", config.vocab_size, data.vocab.printable());
        if (run.val_text_path.empty())
            fmt::print("  train: the first {} tokens, val: the last {}\n\n", data.train.size(), data.val.size());
        else
            fmt::print("  train: the {} tokens of {}, val: the {} of {}\n\n", data.train.size(), run.text_path,
                       data.val.size(), run.val_text_path);

        // 3. The model and its optimizer, new or resumed from a checkpoint.
        nn::Rng rng(train.seed);
        GPTLanguageModel model(config, rng);
        nn::AdamW optimizer(model.parameters(), {.lr = train.learning_rate, .beta1 = train.beta1, .beta2 = train.beta2,
                                                 .eps = 1e-8f, .weight_decay = train.weight_decay});
        Checkpoint state;  // what --out saves
        state.config = config, state.train = train, state.vocabulary = vocabulary_text(data.vocab);
        int start = 0;
        if (!run.resume_dir.empty()) {
            const fs::path file = checkpoint_file(run.resume_dir, "last.ckpt");
            CheckpointReader reader(file);
            check_same(file, reader.info, config, train, state.vocabulary);
            reader.restore(model, &optimizer);
            rng.set_state(reader.info.rng_state, file.string());
            state = reader.info;
            start = static_cast<int>(state.step);
            if (run.stop_at >= 0 && run.stop_at <= start)
                nn::fail("--stop-at {} is not after step {}, where {} stopped", run.stop_at, start, file.string());
            if (run.out_dir.empty()) run.out_dir = fs::is_directory(run.resume_dir) ? run.resume_dir : fs::path(run.resume_dir).parent_path().string();
            fmt::print("resumed from {} at step {}\n\n", file.string(), start);
        } else {
            print_shapes(model, data, train, run.threads);  // 4. One batch through the model.
        }
        if (!run.out_dir.empty()) {  // output paths checked now, not after the first 250 steps
            fs::create_directories(run.out_dir);
            nn::check_writable(fs::path(run.out_dir) / "last.ckpt");
        }
        if (!run.plot_path.empty()) nn::check_writable(run.plot_path);
        if (!run.summary_path.empty()) nn::check_writable(run.summary_path);

        // 5. Train, 6. report.
        const int end = run.stop_at >= 0 ? run.stop_at : train.max_iters;
        const LoopStats stats = train_loop({model, optimizer, data, train, run, state, rng, start, end});
        report(stats, end - start, run, state, end);

        // 7. Sample from what it learned.
        if (run.max_new_tokens > 0) {
            fmt::print("\ngenerate({} characters after {:?}):\n", run.max_new_tokens, data.vocab.decode(context));
            const nn::Stopwatch clock;
            const std::vector<int> out = generate(model, context, run.max_new_tokens, rng, run.temperature, run.top_k);
            const double seconds = clock.seconds();
            fmt::print("{}\n", data.vocab.decode(out));
            std::fflush(stdout);
            fmt::print(stderr, "({} tokens/s with the key/value cache)\n",
                       seconds > 0 ? static_cast<long>(run.max_new_tokens / seconds) : 0L);
        }
        return 0;
    });
}
