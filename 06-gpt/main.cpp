// 06-gpt: a Transformer, the GPT of the lecture's end, trained on a CPU.
//
// The data and the sampling are 05-multihead's; the training loop gains the
// recipe's settings, checkpoints and the `sample` command, so this file is
// mostly new (read it whole, not as a diff against 05). The model becomes a
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
#include <string>
#include <vector>

#include "06-gpt/checkpoint.hpp"
#include "06-gpt/complete.hpp"
#include "06-gpt/model.hpp"
#include "06-gpt/run.hpp"
#include "06-gpt/sample.hpp"
#include "06-gpt/shapes.hpp"
#include "06-gpt/size.hpp"
#include "06-gpt/train.hpp"
#include "common/eval_command.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/progress.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"

namespace {
namespace fs = std::filesystem;

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
nn::LoopStats train_loop(const Training& t) {
    auto& [model, optimizer, data, train, run, state, rng, start, end] = t;
    const int B = train.batch_size, T = model.config.block_size;
    const bool resumed = !run.resume_dir.empty();
    nn::MetricsLog metrics(run.metrics_path);
    for (const EvalRecord& e : state.history) metrics.write_losses(e.step, e.train, e.val, e.seconds);
    auto save = [&](const char* name, int step) {
        state.step = step;
        state.rng_state = rng.state();
        save_checkpoint(fs::path(run.out_dir) / name, state, model, optimizer);
    };
    nn::Progress progress("step", std::max(1, end - start));
    nn::LoopStats stats;
    nn::Stopwatch clock;
    const double seconds_before = state.history.empty() ? 0.0 : state.history.back().seconds;
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
            metrics.write_losses(e.step, e.train, e.val, e.seconds);
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
        stats.step_ms.push_back(step_clock.seconds() * 1e3);
        progress.update(step - start + 1, fmt::format("loss {:.3f}", loss));
    }
    progress.clear();
    stats.seconds = clock.seconds();
    return stats;
}

void report(const nn::LoopStats& s, int steps, const RunOptions& run, const Checkpoint& state, int end) {
    nn::print_loop_report(steps, s, nn::peak_rss_mb());
    const nn::EvalRecord last = nn::last_losses(state.history);
    nn::write_summary_json(run.summary_path, {{"steps", steps}, {"seconds", s.seconds}, {"eval_seconds", s.eval_seconds},
                                              {"ms_per_step_median", s.median_step_ms()}, {"peak_memory_mb", nn::peak_rss_mb()},
                                              {"threads", run.threads}, {"train_loss", last.train}, {"val_loss", last.val}});
    if (!run.out_dir.empty())
        fmt::print("checkpoints in {}: best.ckpt (val loss {:.4f}), last.ckpt (step {})\n", run.out_dir, state.best_val, end);
    nn::plot_losses(run.plot_path, "06-gpt: loss", state.history);
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
    nn::EvalOptions eval_options;
    const CLI::App* eval = nn::add_eval_command(app, eval_options);
    CompleteOptions complete_options;
    const CLI::App* complete = add_complete_command(app, complete_options);
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        nn::keep_freed_memory();
        if (*sample) return sample_command<CheckpointReader>(sample_options);
        if (*eval) return nn::eval_command<GPTLanguageModel, CheckpointReader>(eval_options);
        if (*complete) return complete_command<CheckpointReader>(complete_options);
        // 1. Settings: the preset, then refuse what cannot work, before any work is done.
        apply_preset(app, run.preset, config, train);
        config.validate();
        train.validate();
        if (run.stop_at > train.max_iters) nn::fail("--stop-at ({}) is after --max-iters ({})", run.stop_at, train.max_iters);

        // 2. Data: the text, its vocabulary, the train and val splits.
        const nn::TextData data = load_training_text(run);
        nn::check_context(data, config.block_size);
        config.vocab_size = data.vocab.size();
        check_fits(config, train.batch_size);
        if (run.threads == 0) run.threads = nn::auto_threads(step_flops(config, train.batch_size));
        nn::set_threads(run.threads);
        const std::vector<int> context = data.vocab.prompt(run.prompt);
        print_data(data, run);

        // 3. The model and its optimizer, new or resumed from a checkpoint.
        nn::Rng rng(train.seed);
        GPTLanguageModel model(config, rng);
        nn::AdamW optimizer(model.parameters(), {.lr = train.learning_rate, .beta1 = train.beta1, .beta2 = train.beta2,
                                                 .eps = 1e-8f, .weight_decay = train.weight_decay});
        Checkpoint state;  // what --out saves
        state.config = config, state.train = train, state.vocabulary = data.vocab.utf8();
        int start = 0;
        if (!run.resume_dir.empty()) {
            const fs::path file = checkpoint_file(run.resume_dir, "last.ckpt");
            CheckpointReader reader(file);
            nn::check_same(file, reader.info, config, train, state.vocabulary);
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
        nn::check_outputs(run.out_dir, {run.plot_path, run.summary_path});

        // 5. Train, 6. report.
        const int end = run.stop_at >= 0 ? run.stop_at : train.max_iters;
        const nn::LoopStats stats = train_loop({model, optimizer, data, train, run, state, rng, start, end});
        report(stats, end - start, run, state, end);

        // 7. Sample from what it learned.
        if (run.max_new_tokens > 0) sample_after_training(model, data.vocab, context, run, rng);
        return 0;
    });
}
