// 06-gpt: a Transformer, the GPT of the lecture's end, trained on a CPU.
//
// Same data, training loop and sampling as 05-multihead. The model becomes a
// stack of n_layer Blocks, each attention then a feed-forward layer, with
// residual connections, LayerNorm and dropout, and a final LayerNorm; it is
// trained with the recipe of the small CPU Shakespeare GPT (warm-up and cosine
// learning rate, AdamW with weight decay on matrices, gradient clipping). With
// the defaults it reaches a validation loss of about 1.88 in 2000 steps.
//
// It is also a tool: --out saves checkpoints, --resume continues from one,
// and `06-gpt sample --checkpoint DIR` writes text with a key/value cache.
#include <fmt/core.h>
#include <malloc.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "06-gpt/checkpoint.hpp"
#include "06-gpt/model.hpp"
#include "common/cli.hpp"
#include "common/fileio.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

namespace {
namespace fs = std::filesystem;

double peak_rss_mb() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Eigen's matrix products allocate their packing buffers on every call. Keep
// freed memory in the heap rather than handing it back to the kernel, or each
// step pays for fresh zeroed pages.
void keep_freed_memory() {
    ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void set_threads(int threads) {
    omp_set_num_threads(threads);
    Eigen::setNbThreads(threads);
}

// Refuses settings that cannot work together, with the flag to change.
void check_settings(const Config& c, const TrainConfig& t, int stop_at) {
    if (c.n_embd % c.n_head != 0)
        nn::fail("--n-embd ({}) must be a multiple of --n-head ({}): each head gets n_embd / n_head channels", c.n_embd, c.n_head);
    if (!(c.dropout >= 0 && c.dropout < 1)) nn::fail("--dropout must be in [0, 1), not {}", c.dropout);
    if (t.min_lr > t.learning_rate) nn::fail("--min-lr ({}) is above --lr ({})", t.min_lr, t.learning_rate);
    if (!(t.beta1 >= 0 && t.beta1 < 1) || !(t.beta2 >= 0 && t.beta2 < 1))
        nn::fail("--beta1 and --beta2 must be in [0, 1)");
    if (stop_at > t.max_iters) nn::fail("--stop-at ({}) is after --max-iters ({})", stop_at, t.max_iters);
}

// A resumed run must use the settings the checkpoint was trained with.
void check_same(const Checkpoint& k, const Config& c, const TrainConfig& t, const std::string& vocabulary) {
    std::vector<std::string> diff;
    auto same = [&](const char* flag, auto ckpt, auto now) {
        if (ckpt != now) diff.push_back(fmt::format("{} {} (this run: {})", flag, ckpt, now));
    };
    same("--n-layer", k.config.n_layer, c.n_layer);
    same("--n-head", k.config.n_head, c.n_head);
    same("--n-embd", k.config.n_embd, c.n_embd);
    same("--block-size", k.config.block_size, c.block_size);
    same("--dropout", k.config.dropout, c.dropout);
    same("--batch-size", k.train.batch_size, t.batch_size);
    same("--max-iters", k.train.max_iters, t.max_iters);
    same("--warmup-iters", k.train.warmup_iters, t.warmup_iters);
    same("--eval-interval", k.train.eval_interval, t.eval_interval);
    same("--eval-iters", k.train.eval_iters, t.eval_iters);
    same("--lr", k.train.learning_rate, t.learning_rate);
    same("--min-lr", k.train.min_lr, t.min_lr);
    same("--weight-decay", k.train.weight_decay, t.weight_decay);
    same("--beta1", k.train.beta1, t.beta1);
    same("--beta2", k.train.beta2, t.beta2);
    same("--grad-clip", k.train.grad_clip, t.grad_clip);
    same("--seed", k.train.seed, t.seed);
    if (k.vocabulary != vocabulary) diff.push_back("a different vocabulary (another text?)");
    if (!diff.empty()) {
        std::string list;
        for (const std::string& d : diff) list += (list.empty() ? "" : ", ") + d;
        nn::fail("the checkpoint was trained with other settings; resume with the same ones: {}", list);
    }
}

struct SampleOptions {
    std::string checkpoint, prompt;
    int max_new_tokens = 500, top_k = 0, num_samples = 1, threads = 1;  // one row at a time: too small to share
    float temperature = 1.0f;
    std::uint64_t seed = 1337;
    bool no_cache = false;
};

// 06-gpt sample: text from a saved model.
int sample_command(const SampleOptions& o) {
    set_threads(o.threads);
    const fs::path file = checkpoint_file(o.checkpoint, "best.ckpt");
    const Checkpoint k = read_checkpoint(file);
    const nn::Vocabulary vocab(nn::decode_utf8(k.vocabulary));
    const std::vector<int> context = o.prompt.empty() ? std::vector<int>{0} : vocab.encode(o.prompt, "the prompt");
    nn::Rng init(0);
    GPTLanguageModel model(k.config, init);
    restore(k, model, nullptr);
    fmt::print(stderr, "{}: step {}, val loss {:.4f}; {} layers, {} heads, n_embd {}, context {}\n",
               file.string(), k.step, k.history.empty() ? NAN : k.history.back().val, k.config.n_layer,
               k.config.n_head, k.config.n_embd, k.config.block_size);
    nn::Rng rng(o.seed);
    long tokens = 0;
    nn::Stopwatch clock;
    for (int s = 0; s < o.num_samples; ++s) {
        const std::vector<int> out = model.generate(context, o.max_new_tokens, rng, o.temperature, o.top_k, !o.no_cache);
        if (o.num_samples > 1) fmt::print("--- sample {} ---\n", s + 1);
        fmt::print("{}\n", vocab.decode(out));
        tokens += o.max_new_tokens;
    }
    const double seconds = clock.seconds();
    std::fflush(stdout);
    fmt::print(stderr, "{} tokens in {:.2f} s: {:.0f} tokens/s ({})\n", tokens, seconds,
               seconds > 0 ? tokens / seconds : 0.0, o.no_cache ? "no cache" : "key/value cache");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"06-gpt: a GPT (a stack of Transformer blocks) on Tiny Shakespeare, trained with "
                 "hand-written backprop and AdamW, with checkpoints; `06-gpt sample` writes text "
                 "from a checkpoint.",
                 "06-gpt"};
    Config config;
    TrainConfig train;
    std::string data_dir, metrics_path, plot_path, prompt, out_dir, resume_dir, preset = "default";
    int max_new_tokens = 500, top_k = 0, threads = 2, stop_at = -1;
    float temperature = 1.0f;
    nn::add_data_option(app, data_dir);
    app.add_option("--batch-size", train.batch_size, "B: sequences per batch")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--block-size", config.block_size, "T: characters per sequence (context length)")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--n-embd", config.n_embd, "C: channels of the residual stream")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--n-head", config.n_head, "nh: attention heads per block, each of C / nh channels")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--n-layer", config.n_layer, "Transformer blocks")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--dropout", config.dropout, "Probability of zeroing an activation while training")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--max-iters", train.max_iters, "Training steps")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--eval-interval", train.eval_interval, "Estimate the losses every this many steps")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--eval-iters", train.eval_iters, "Batches per split in each loss estimate")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--lr", train.learning_rate, "Peak AdamW learning rate")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--min-lr", train.min_lr, "Learning rate at the last step, after the cosine decay")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--warmup-iters", train.warmup_iters, "Steps of linear learning-rate warm-up")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--weight-decay", train.weight_decay, "AdamW decoupled weight decay (matrices only)")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--beta1", train.beta1, "AdamW beta1")->check(nn::NonNegative)->capture_default_str();
    app.add_option("--beta2", train.beta2, "AdamW beta2")->check(nn::NonNegative)->capture_default_str();
    app.add_option("--grad-clip", train.grad_clip, "Clip the global gradient norm to this (0: off)")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--seed", train.seed, "Seed for the weights, the batches, dropout and the sampling")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--max-new-tokens", max_new_tokens, "Characters to generate after training")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--prompt", prompt, "Text to continue (default: token 0, a newline in Tiny Shakespeare, as in the lecture)");
    app.add_option("--temperature", temperature, "Divide the logits by this before sampling")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--top-k", top_k, "Sample only among the k likeliest characters (0: all)")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--metrics", metrics_path, "Write step, train_loss, val_loss, seconds as JSON lines here");
    app.add_option("--plot", plot_path, "Draw the train and val losses against the step into this PNG");
    app.add_option("--preset", preset, "default: the small CPU model above; lecture: the lecture's "
                   "6 layers, 6 heads, n_embd 384, context 256, batch 64, dropout 0.2, lr 3e-4, 5000 "
                   "steps (flags given too win)")
        ->check(CLI::IsMember({"default", "lecture"}))->capture_default_str();
    app.add_option("--threads", threads, "OpenMP threads")->check(nn::Positive)->capture_default_str();
    app.add_option("--out", out_dir, "Save checkpoints here: best.ckpt (lowest val loss) and last.ckpt");
    app.add_option("--resume", resume_dir, "Continue training from DIR/last.ckpt (saving there too unless --out)");
    app.add_option("--stop-at", stop_at, "Stop after this many steps, saving last.ckpt to --resume later")
        ->check(nn::NonNegative);

    SampleOptions so;
    CLI::App* sample = app.add_subcommand("sample", "Write text with a model saved by --out");
    sample->add_option("--checkpoint", so.checkpoint, "A directory written by --out (best.ckpt is used), or a .ckpt file")
        ->required();
    sample->add_option("--prompt", so.prompt, "Text to continue (default: token 0, a newline in Tiny Shakespeare)");
    sample->add_option("--max-new-tokens", so.max_new_tokens, "Characters to generate per sample")
        ->check(nn::NonNegative)->capture_default_str();
    sample->add_option("--temperature", so.temperature, "Divide the logits by this before sampling")
        ->check(nn::Positive)->capture_default_str();
    sample->add_option("--top-k", so.top_k, "Sample only among the k likeliest characters (0: all)")
        ->check(nn::NonNegative)->capture_default_str();
    sample->add_option("--seed", so.seed, "Seed for the sampling")->check(nn::NonNegative)->capture_default_str();
    sample->add_option("--num-samples", so.num_samples, "How many samples to write")
        ->check(nn::Positive)->capture_default_str();
    sample->add_option("--threads", so.threads, "OpenMP threads")->check(nn::Positive)->capture_default_str();
    sample->add_flag("--no-cache", so.no_cache, "Recompute the whole context for every character (slow; for comparison)");
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        keep_freed_memory();
        if (*sample) return sample_command(so);
        // The lecture's gpt.py sizes and settings, where no flag says otherwise. The
        // rest of the recipe stays this lesson's: GELU, tied head, warm-up and cosine
        // decay (here to 3e-5), AdamW betas (0.9, 0.99), weight decay 0.1, clipping.
        if (preset == "lecture") {
            auto set = [&](const char* flag, auto& value, auto preset_value) {
                if (app.get_option(flag)->count() == 0) value = preset_value;
            };
            set("--n-layer", config.n_layer, 6);
            set("--n-head", config.n_head, 6);
            set("--n-embd", config.n_embd, 384);
            set("--block-size", config.block_size, 256);
            set("--dropout", config.dropout, 0.2f);
            set("--batch-size", train.batch_size, 64);
            set("--lr", train.learning_rate, 3e-4f);
            set("--min-lr", train.min_lr, 3e-5f);
            set("--max-iters", train.max_iters, 5000);
            set("--eval-interval", train.eval_interval, 500);
        }
        check_settings(config, train, stop_at);
        set_threads(threads);
        const int B = train.batch_size, T = config.block_size;
        const nn::TextData data = nn::load_text(fs::path(data_dir) / "tinyshakespeare.txt");
        nn::check_context(data, T);
        config.vocab_size = data.vocab.size();
        const int V = config.vocab_size;
        const std::vector<int> context = prompt.empty() ? std::vector<int>{0} : data.vocab.encode(prompt, "the prompt");
        fmt::print("Tiny Shakespeare from {}: {} characters\n", data_dir, data.train.size() + data.val.size());
        fmt::print("  vocabulary, V = {}: {}\n", V, data.vocab.printable());
        fmt::print("  train: the first {} tokens, val: the last {}\n\n", data.train.size(), data.val.size());

        nn::Rng rng(train.seed);
        GPTLanguageModel model(config, rng);
        nn::AdamW optimizer(model.parameters(), {.lr = train.learning_rate, .beta1 = train.beta1,
                                                 .beta2 = train.beta2, .eps = 1e-8f,
                                                 .weight_decay = train.weight_decay});
        long n_params = 0;
        for (const nn::Parameter* p : model.parameters()) n_params += p->value.size();

        Checkpoint state;  // what --out saves
        state.config = config;
        state.train = train;
        state.vocabulary = vocabulary_text(data.vocab);
        int start = 0;
        if (!resume_dir.empty()) {
            const fs::path file = checkpoint_file(resume_dir, "last.ckpt");
            const Checkpoint k = read_checkpoint(file);
            check_same(k, config, train, state.vocabulary);
            restore(k, model, &optimizer);
            rng.set_state(k.rng_state);
            state.best_val = k.best_val;
            state.history = k.history;
            start = static_cast<int>(k.step);
            if (stop_at >= 0 && stop_at <= start)
                nn::fail("--stop-at {} is not after step {}, where {} stopped", stop_at, start, file.string());
            if (out_dir.empty()) out_dir = fs::is_directory(resume_dir) ? resume_dir : fs::path(resume_dir).parent_path().string();
            fmt::print("resumed from {} at step {}\n\n", file.string(), start);
        } else {
            // One batch walked through the model, to show the shapes.
            nn::Rng show(train.seed + 1);
            const nn::Batch example = nn::get_batch(data, nn::Split::train, B, T, show);
            const float loss0 = model.loss(example);
            const Block& b0 = model.blocks[0];
            const int C = config.n_embd, hs = b0.sa.head_size;
            fmt::print("shapes, with B = {} (batch), T = {} (time), C = {} (n_embd), nh = {} (heads), hs = {} (head size), V = {}:\n",
                       B, T, C, config.n_head, hs, V);
            fmt::print("  {:<44} ({}, {})  tokens; row b is text[i_b : i_b+{}]\n", "xb = get_batch('train')", B, T, T);
            fmt::print("  {:<44} {}  (B*T, C)\n", "x = tok_emb + pos_emb", nn::shape(model.x));
            fmt::print("  {} x Block:\n", config.n_layer);
            fmt::print("    {:<42} {}  (B*T, C): each row to mean 0, variance 1\n", "ln1(x)", nn::shape(b0.ln1.y));
            fmt::print("    {:<42} {}  (B*T, 3C): q, k, v of all heads\n", "qkv = c_attn(ln1(x))", nn::shape(b0.sa.c_attn.y));
            fmt::print("    {:<42} {}  (B*nh*T, T): B*nh blocks of (T, T)\n", "wei = softmax(mask(q k^T / sqrt(hs)))", nn::shape(b0.sa.wei));
            fmt::print("    {:<42} {}  (B*T, C): the heads side by side\n", "out = wei v", nn::shape(b0.sa.out));
            fmt::print("    {:<42} {}  (B*T, C)\n", "x = x + proj(out)", nn::shape(b0.x1));
            fmt::print("    {:<42} {}  (B*T, 4C)\n", "h = gelu(fc(ln2(x)))", nn::shape(b0.ffwd.gelu.y));
            fmt::print("    {:<42} {}  (B*T, C)\n", "x = x + proj(h)", nn::shape(b0.y));
            fmt::print("  {:<44} {}  (B*T, V): tied to token_embedding_table\n", "logits = ln_f(x) W_te^T", nn::shape(model.logits));
            fmt::print("  {:<44} ()  = {:.4f} (a uniform guess gives ln {} = {:.4f})\n",
                       "loss = cross_entropy(logits, yb)", loss0, V, std::log(static_cast<double>(V)));
            fmt::print("  {} trained parameters, {} threads\n\n", n_params, threads);
        }

        nn::MetricsLog metrics(metrics_path);
        auto log_metrics = [&](const EvalRecord& e) {
            metrics.write(fmt::format(R"({{"step": {}, "train_loss": {:.4f}, "val_loss": {:.4f}, "seconds": {:.2f}}})",
                                      e.step, e.train, e.val, e.seconds));
        };
        for (const EvalRecord& e : state.history) log_metrics(e);
        if (!out_dir.empty()) {
            fs::create_directories(out_dir);
            nn::check_writable(fs::path(out_dir) / "last.ckpt");  // now, not after the first 250 steps
        }
        if (!plot_path.empty()) nn::check_writable(plot_path);
        auto save = [&](const char* name, int step) {
            state.step = step;
            state.rng_state = rng.state();
            save_checkpoint(fs::path(out_dir) / name, state, model, optimizer);
        };

        const int end = stop_at >= 0 ? stop_at : train.max_iters;
        nn::Progress progress("step", std::max(1, end - start));
        nn::Stopwatch clock;
        const double seconds_before = state.history.empty() ? 0.0 : state.history.back().seconds;
        double eval_seconds = 0;
        std::vector<double> step_ms;
        step_ms.reserve(static_cast<std::size_t>(std::max(0, end - start)));
        auto model_loss = [&](const nn::Batch& batch) { return model.loss(batch); };
        for (int step = start;; ++step) {
            const bool eval_due = step % train.eval_interval == 0 || step == train.max_iters;
            if (eval_due && !(step == start && !resume_dir.empty())) {
                const nn::Stopwatch eval_clock;
                model.train(false);
                const nn::Losses losses = nn::estimate_loss(data, train.eval_iters, B, T, model_loss, train.seed);
                model.train(true);
                eval_seconds += eval_clock.seconds();
                progress.clear();
                fmt::print("step {}: train loss {:.4f}, val loss {:.4f}\n", step, losses.train, losses.val);
                const EvalRecord e{step, losses.train, losses.val, seconds_before + clock.seconds()};
                state.history.push_back(e);
                log_metrics(e);
                if (!out_dir.empty()) {
                    if (losses.val < state.best_val) {
                        state.best_val = losses.val;
                        save("best.ckpt", step);
                    }
                    save("last.ckpt", step);
                }
            }
            if (step >= end) {
                if (!out_dir.empty() && !eval_due) save("last.ckpt", step);
                break;
            }
            const nn::Stopwatch step_clock;
            optimizer.options.lr = get_lr(train, step);
            const nn::Batch batch = nn::get_batch(data, nn::Split::train, B, T, rng);
            const float loss = model.loss(batch);
            optimizer.zero_grad();
            model.backward();
            if (train.grad_clip > 0) nn::clip_grad_norm(model.parameters(), train.grad_clip);
            optimizer.step();
            step_ms.push_back(step_clock.seconds() * 1e3);
            progress.update(step - start + 1, fmt::format("loss {:.3f}", loss));
        }
        progress.clear();
        const double seconds = clock.seconds();
        std::vector<double> sorted = step_ms;
        std::sort(sorted.begin(), sorted.end());
        const double median = sorted.empty() ? 0.0 : sorted[sorted.size() / 2];
        fmt::print("{} steps in {:.1f} s ({:.1f} s of it estimating losses): {:.1f} ms per training step "
                   "(median), {:.1f} steps/s; peak memory {:.0f} MB\n",
                   end - start, seconds, eval_seconds, median, median > 0 ? 1e3 / median : 0.0, peak_rss_mb());
        if (!out_dir.empty()) fmt::print("checkpoints in {}: best.ckpt (val loss {:.4f}), last.ckpt (step {})\n",
                                         out_dir, state.best_val, end);
        if (!plot_path.empty()) {
            nn::Series tr{"train", {}, {}}, va{"val", {}, {}};
            for (const EvalRecord& e : state.history) {
                tr.x.push_back(static_cast<float>(e.step));
                tr.y.push_back(e.train);
                va.x.push_back(static_cast<float>(e.step));
                va.y.push_back(e.val);
            }
            nn::write_line_plot(plot_path, "06-gpt: loss", "step", {tr, va});
            fmt::print("wrote the loss curves to {}\n", plot_path);
        }

        if (max_new_tokens > 0) {
            fmt::print("\ngenerate({} characters after {:?}):\n", max_new_tokens, data.vocab.decode(context));
            const nn::Stopwatch gen_clock;
            const std::vector<int> out = model.generate(context, max_new_tokens, rng, temperature, top_k);
            const double gen_seconds = gen_clock.seconds();
            fmt::print("{}\n", data.vocab.decode(out));
            std::fflush(stdout);
            fmt::print(stderr, "({} tokens/s with the key/value cache)\n",
                       gen_seconds > 0 ? static_cast<long>(max_new_tokens / gen_seconds) : 0L);
        }
        return 0;
    });
}
