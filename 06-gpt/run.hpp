// 06-gpt: the run's tooling beside the concept (08-data-parallel includes it
// too): the options of a run that are not settings of the model or of
// training (the data, sampling, outputs, checkpoints, threads), the lecture
// preset, the text to train on, and the sample after training.
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "06-gpt/generate.hpp"
#include "06-gpt/model.hpp"
#include "06-gpt/train.hpp"
#include "common/cli.hpp"
#include "common/fileio.hpp"
#include "common/progress.hpp"
#include "common/random.hpp"
#include "common/settings.hpp"
#include "common/text.hpp"
#include "common/training.hpp"
#include "common/validators.hpp"

// What a run does besides training (not part of a checkpoint).
struct RunOptions {
    std::string data_dir, metrics_path, summary_path, plot_path, prompt, out_dir, resume_dir, preset = "default";
    std::string text_path, val_text_path;  // --text, --val-text: another text than Tiny Shakespeare
    int max_new_tokens = 500, top_k = 0, threads = 0, stop_at = -1;  // threads 0: one per idle core
    float temperature = 1.0f;
};

// Where 08's command line differs: each of its ranks reads Tiny Shakespeare
// (no --text), and --threads are each rank's, one by default (a rank per core).
struct RunFlags {
    bool text = true, threads_per_rank = false;
};

inline void add_run_options(CLI::App& app, RunOptions& o, RunFlags flags = {}) {
    nn::add_data_option(app, o.data_dir);
    if (flags.text) {
        app.add_option("--text", o.text_path, "Train on this UTF-8 text instead of --data's tinyshakespeare.txt (the "
                       "vocabulary is its characters; its last 10% is the validation split, unless --val-text)");
        app.add_option("--val-text", o.val_text_path, "With --text: validate on this text instead, and train on all of "
                       "--text (its characters must be in --text's vocabulary)");
    }
    nn::add_sampling_options(app, o.max_new_tokens, o.prompt, o.temperature, o.top_k);
    nn::add_training_outputs(app, o.metrics_path, o.summary_path, o.plot_path);
    app.add_option("--preset", o.preset, "default: the small CPU model above; lecture: the lecture's "
                   "6 layers, 6 heads, n_embd 384, context 256, batch 64, dropout 0.2, lr 3e-4, 5000 "
                   "steps (flags given too win)")
        ->check(CLI::IsMember({"default", "lecture"}))->capture_default_str();
    if (flags.threads_per_rank) {
        o.threads = 1;
        app.add_option("--threads", o.threads, "OpenMP threads of each rank (one rank per core: 1)")
            ->check(nn::Count(1, 256))->capture_default_str();
    } else {
        app.add_option("--threads", o.threads, "OpenMP threads (0: one per core left idle by other programs, "
                       "measured at the start; every core for a step as large as the lecture preset's)")->check(nn::Count(0, 256))->capture_default_str();
    }
    app.add_option("--out", o.out_dir, "Save checkpoints here: best.ckpt (lowest val loss) and last.ckpt");
    app.add_option("--resume", o.resume_dir, "Continue training from DIR/last.ckpt (saving there too unless --out)");
    app.add_option("--stop-at", o.stop_at, "Stop after this many steps, the learning-rate schedule still that of --max-iters; with --out, last.ckpt is saved there to --resume later")
        ->check(nn::Count(0, 1000000));
}

// The lecture's gpt.py sizes and settings, where no flag says otherwise. The
// rest of the recipe stays this lesson's: GELU, tied head, warm-up and cosine
// decay (here to 3e-5), AdamW betas (0.9, 0.99), weight decay 0.1, clipping.
inline void apply_preset(const CLI::App& app, const std::string& preset, Config& c, TrainConfig& t) {
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
inline nn::TextData load_training_text(const RunOptions& run) {
    namespace fs = std::filesystem;
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

// What load_training_text read: the text, its vocabulary, the two splits.
inline void print_data(const nn::TextData& data, const RunOptions& run) {
    if (run.text_path.empty())
        fmt::print("Tiny Shakespeare from {}: {} characters\n", run.data_dir, data.train.size() + data.val.size());
    else
        fmt::print("{}: {} characters\n", data.source, data.train.size() + data.val.size());
    fmt::print("  vocabulary, V = {}: {}\n", data.vocab.size(), data.vocab.printable());
    if (run.val_text_path.empty())
        fmt::print("  train: the first {} tokens, val: the last {}\n\n", data.train.size(), data.val.size());
    else
        fmt::print("  train: the {} tokens of {}, val: the {} of {}\n\n", data.train.size(), run.text_path,
                   data.val.size(), run.val_text_path);
}

// What the trained model writes: --max-new-tokens characters after `context`,
// and on stderr how fast the key/value cache made them.
inline void sample_after_training(GPTLanguageModel& model, const nn::Vocabulary& vocab, const std::vector<int>& context,
                                  const RunOptions& run, nn::Rng& rng) {
    fmt::print("\ngenerate({} characters after {:?}):\n", run.max_new_tokens, vocab.decode(context));
    const nn::Stopwatch clock;
    const std::vector<int> out = generate(model, context, run.max_new_tokens, rng, run.temperature, run.top_k);
    const double seconds = clock.seconds();
    fmt::print("{}\n", vocab.decode(out));
    std::fflush(stdout);
    fmt::print(stderr, "({} tokens/s with the key/value cache)\n",
               seconds > 0 ? static_cast<long>(run.max_new_tokens / seconds) : 0L);
}
