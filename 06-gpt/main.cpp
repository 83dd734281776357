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
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "06-gpt/checkpoint.hpp"
#include "06-gpt/complete.hpp"
#include "06-gpt/eval.hpp"
#include "06-gpt/generate.hpp"
#include "06-gpt/inspect.hpp"
#include "06-gpt/model.hpp"
#include "06-gpt/run.hpp"
#include "06-gpt/sample.hpp"
#include "06-gpt/size.hpp"
#include "06-gpt/train.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/progress.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"

namespace {
namespace fs = std::filesystem;

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
    if (c.layernorm) row("ln1(x)", b0.ln1.y, "(B*T, C): each row to mean 0, variance 1");
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
    const nn::EvalRecord last = last_losses(state.history);
    nn::write_summary_json(run.summary_path, {{"steps", steps}, {"seconds", s.seconds}, {"eval_seconds", s.eval_seconds},
                                              {"ms_per_step_median", s.median_step_ms}, {"peak_memory_mb", nn::peak_rss_mb()},
                                              {"threads", run.threads}, {"train_loss", last.train}, {"val_loss", last.val}});
    if (!run.out_dir.empty())
        fmt::print("checkpoints in {}: best.ckpt (val loss {:.4f}), last.ckpt (step {})\n", run.out_dir, state.best_val, end);
    plot_losses(run, "06-gpt: loss", state.history);
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
        print_data(data, run);

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
        check_outputs(run);

        // 5. Train, 6. report.
        const int end = run.stop_at >= 0 ? run.stop_at : train.max_iters;
        const LoopStats stats = train_loop({model, optimizer, data, train, run, state, rng, start, end});
        report(stats, end - start, run, state, end);

        // 7. Sample from what it learned.
        if (run.max_new_tokens > 0) sample_after_training(model, data.vocab, context, run, rng);
        return 0;
    });
}
