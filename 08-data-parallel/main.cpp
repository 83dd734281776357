// 08-data-parallel: 06's GPT trained by several processes at once (data
// parallelism over MPI), and with gradient accumulation.
//
// Start it as `mpirun -np N 08-data-parallel ...`: N ranks, each a copy of the
// same program with the same model (the same seed gives the same weights).
// Every step all ranks draw the same global batch of B sequences; rank r takes
// its slice, sequences [r B/N, (r+1) B/N), and runs it as --grad-accum K
// micro-batches of B/(N K) one after another, adding up their gradients. One
// all-reduce sums the gradients of all ranks; scaled by 1/(N K) that is the
// gradient of the mean loss over the global batch, the gradient 06 computes
// on one batch of B. Every rank then clips and takes the same AdamW step, so
// the weights stay identical on every rank. The loss estimates are split the
// same way. Only rank 0 prints and saves checkpoints.
//
// The model, the recipe, checkpoints, --resume and `sample` are 06's, and so
// are the run's options, checks and printouts (06-gpt/run.hpp, shapes.hpp);
// `eval` and the resume check are common/'s, shared with 06.
#include <fmt/core.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "06-gpt/run.hpp"
#include "06-gpt/sample.hpp"
#include "06-gpt/shapes.hpp"
#include "06-gpt/size.hpp"
#include "08-data-parallel/checkpoint.hpp"
#include "08-data-parallel/distributed.hpp"
#include "08-data-parallel/gradients.hpp"
#include "08-data-parallel/model.hpp"
#include "08-data-parallel/train.hpp"
#include "common/eval_command.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/progress.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"

namespace {
namespace fs = std::filesystem;

// A resumed run must use the settings the checkpoint was trained with
// (nn::check_same); but for --grad-accum, which, like the number of ranks, only
// says how the same global batch is split.
void check_same_but_split(const fs::path& file, Checkpoint saved, const Config& c, const DataParallelTrainConfig& t,
                          const std::string& vocabulary) {
    saved.train.grad_accum = t.grad_accum;
    nn::check_same(file, saved, c, t, vocabulary);
}

// 06's estimate_loss, with every batch split as the training batches are:
// each rank adds up the mean losses of its micro-batches, the ranks' sums
// are added, and the total divided by the world K micro-batches of each of
// the eval_iters batches is the mean loss over the batches, as in 06.
nn::Losses estimate_loss(GPTLanguageModel& model, const nn::TextData& data, const DataParallelTrainConfig& train,
                         const Split& split, const Distributed& dist) {
    const int B = train.batch_size, T = model.config.block_size;
    std::vector<double> sums{0, 0};  // train, val
    for (const nn::Split which : {nn::Split::train, nn::Split::val}) {
        nn::Rng rng(train.seed);
        for (int i = 0; i < train.eval_iters; ++i) {
            const nn::Batch batch = nn::get_batch(data, which, B, T, rng);
            for (int k = 0; k < split.K; ++k)
                sums[which == nn::Split::train ? 0 : 1] += model.loss(rows(batch, split.first(k), split.micro));
        }
    }
    dist.sum(sums);
    const double n = static_cast<double>(train.eval_iters) * split.world * split.K;
    return {static_cast<float>(sums[0] / n), static_cast<float>(sums[1] / n)};
}

// One micro-batch walked through the model, to show the shapes.
void print_shapes(DataParallelGPT& model, const nn::TextData& data, const DataParallelTrainConfig& train,
                  const Split& split, int threads) {
    const Config& c = model.config;
    const int B = split.micro;
    long n_params = 0;
    for (const nn::Parameter* p : model.parameters()) n_params += p->value.size();
    fmt::print("the global batch of {} sequences: {} rank{} x {} micro-batch{} (--grad-accum) x {} sequences\n",
               train.batch_size, split.world, split.world == 1 ? "" : "s", split.K, split.K == 1 ? "" : "es", B);
    fmt::print("shapes of one micro-batch, with B = {} (micro-batch), T = {} (time), C = {} (n_embd), nh = {} (heads), "
               "hs = {} (head size), V = {}:\n", B, c.block_size, c.n_embd, c.n_head, model.blocks[0].sa.head_size,
               c.vocab_size);
    print_forward_shapes(model, data, B, train.seed);
    fmt::print("  {} trained parameters ({:.1f} MB of gradients to all-reduce a step), {} thread{} per rank\n\n",
               n_params, n_params * 4.0 / 1e6, threads, threads == 1 ? "" : "s");
}

// What the training loop measured, and the share of the training steps' time
// spent in the gradients' MPI_Allreduce.
struct LoopStats : nn::LoopStats {
    double allreduce_share = 0;
};

// The lecture's training loop, from step `start` to `end`: every eval_interval
// steps estimate_loss (and save checkpoints, on rank 0), otherwise get_batch,
// then per micro-batch of this rank's slice loss and backward, then the
// all-reduce of the gradients, clip, AdamW step.
struct Training {
    DataParallelGPT& model;
    nn::AdamW& optimizer;
    const nn::TextData& data;
    const DataParallelTrainConfig& train;
    const RunOptions& run;
    Checkpoint& state;  // what --out saves; its history grows
    nn::Rng& rng;       // the batches' (the same on every rank)
    int start, end;     // the steps to take: [start, end)
    const Split& split;
    Distributed& dist;
};
LoopStats train_loop(const Training& t) {
    auto& [model, optimizer, data, train, run, state, rng, start, end, split, dist] = t;
    const int B = train.batch_size, T = model.config.block_size;
    const bool saving = !run.out_dir.empty() && dist.root();
    const bool resumed = !run.resume_dir.empty();
    nn::MetricsLog metrics(dist.root() ? run.metrics_path : "");
    for (const EvalRecord& e : state.history) metrics.write_losses(e.step, e.train, e.val, e.seconds);
    auto save = [&](const char* name, int step) {
        state.step = step;
        state.rng_state = rng.state();
        save_checkpoint(fs::path(run.out_dir) / name, state, model, optimizer);
    };
    nn::Progress progress("step", std::max(1, end - start));
    LoopStats stats;
    nn::Stopwatch clock;
    const double seconds_before = state.history.empty() ? 0.0 : state.history.back().seconds;
    double train_seconds = 0;
    for (int step = start;; ++step) {
        const bool eval_due = step % train.eval_interval == 0 || step == train.max_iters;
        if (eval_due && !(step == start && resumed)) {
            const nn::Stopwatch eval_clock;
            model.train(false);
            const nn::Losses losses = estimate_loss(model, data, train, split, dist);
            model.train(true);
            stats.eval_seconds += eval_clock.seconds();
            progress.clear();
            fmt::print("step {}: train loss {:.4f}, val loss {:.4f}\n", step, losses.train, losses.val);
            const EvalRecord e{step, losses.train, losses.val, seconds_before + clock.seconds()};
            state.history.push_back(e);
            metrics.write_losses(e.step, e.train, e.val, e.seconds);
            if (saving) {
                if (losses.val < state.best_val) {
                    state.best_val = losses.val;
                    save("best.ckpt", step);
                }
                save("last.ckpt", step);
            }
        }
        if (step >= end) {
            if (saving && !eval_due) save("last.ckpt", step);
            break;
        }
        const nn::Stopwatch step_clock;
        optimizer.options.lr = get_lr(train, step);
        dist.maybe_die(step);
        const nn::Batch batch = nn::get_batch(data, nn::Split::train, B, T, rng);  // the same on every rank
        optimizer.zero_grad();
        const double loss = accumulate_gradients(model, batch, split, step);  // gradients.hpp
        // The sum over all ranks' micro-batches, each the gradient of a mean over
        // its own rows: divided by their number, the gradient of the global mean.
        dist.allreduce_gradients(model.parameters(), split.K);
        if (train.grad_clip > 0) nn::clip_grad_norm(model.parameters(), train.grad_clip);
        optimizer.step();
        stats.step_ms.push_back(step_clock.seconds() * 1e3);
        train_seconds += step_clock.seconds();
        if (dist.root()) progress.update(step - start + 1, fmt::format("loss {:.3f} (rank 0's slice)", loss));
    }
    progress.clear();
    stats.seconds = clock.seconds();
    stats.allreduce_share = train_seconds > 0 ? dist.allreduce_seconds / train_seconds : 0.0;
    return stats;
}

void report(const LoopStats& s, int steps, const RunOptions& run, const Checkpoint& state, int end,
            GPTLanguageModel& model, const Distributed& dist) {
    const double peak_mb = dist.max(nn::peak_rss_mb());
    nn::print_loop_report(steps, s, peak_mb, " per rank (the largest)");
    fmt::print("all-reduce of the gradients: {:.1f}% of the training steps' time on rank 0 (with {} rank{})\n",
               100 * s.allreduce_share, dist.world, dist.world == 1 ? "" : "s");
    const EvalRecord last = nn::last_losses(state.history);
    if (dist.root())
        nn::write_summary_json(run.summary_path, {{"steps", steps}, {"seconds", s.seconds}, {"eval_seconds", s.eval_seconds},
                                                  {"ms_per_step_median", s.median_step_ms()}, {"peak_memory_mb", peak_mb},
                                                  {"allreduce_share", s.allreduce_share}, {"ranks", dist.world},
                                                  {"threads", run.threads}, {"train_loss", last.train},
                                                  {"val_loss", last.val}});
    // Every rank took the same steps from the same weights: the same bits.
    const std::vector<std::uint64_t> sums = dist.gather(weights_checksum(model.parameters()));
    std::string list;
    for (const std::uint64_t c : sums) list += fmt::format(" {:016x}", c);
    const bool same = std::all_of(sums.begin(), sums.end(), [&](std::uint64_t c) { return c == sums[0]; });
    fmt::print("weights checksum per rank:{} ({})\n", list, same ? "identical" : "DIFFERENT");
    if (!run.out_dir.empty())
        fmt::print("checkpoints in {}: best.ckpt (val loss {:.4f}), last.ckpt (step {})\n", run.out_dir, state.best_val, end);
    if (dist.root()) nn::plot_losses(run.plot_path, "08-data-parallel: loss", state.history);
}

}  // namespace

int main(int argc, char** argv) {
    Distributed dist(argc, argv);
    CLI::App app{"08-data-parallel: 06's GPT trained by N processes at once (mpirun -np N), each on its "
                 "slice of the batch, their gradients summed by an MPI all-reduce; --grad-accum splits a "
                 "slice further into micro-batches run one after another. `08-data-parallel sample` writes "
                 "text from a checkpoint, `08-data-parallel eval` measures its loss on a text.",
                 "08-data-parallel"};
    Config config;
    DataParallelTrainConfig train;
    RunOptions run;
    SampleOptions sample_options;
    nn::add_settings(app, config, train);
    add_run_options(app, run, {.text = false, .threads_per_rank = true});
    const CLI::App* sample = add_sample_command(app, sample_options);
    nn::EvalOptions eval_options;
    const CLI::App* eval = nn::add_eval_command(app, eval_options);
    if (auto status = parse_on_every_rank(app, argc, argv, dist)) return *status;

    return guarded_on_every_rank(app, dist, [&] {
        nn::keep_freed_memory();
        dist.check_same({{"the command", *sample ? "sample" : *eval ? "eval" : "training"}});
        if (*sample) return dist.root() ? sample_command<CheckpointReader>(sample_options) : 0;
        if (*eval) return dist.root() ? nn::eval_command<GPTLanguageModel, CheckpointReader>(eval_options) : 0;
        // 1. Settings: the preset, then refuse what cannot work, before any work is done.
        std::optional<Split> split;
        dist.on_every_rank([&] {
            apply_preset(app, run.preset, config, train);
            config.validate();
            train.validate();
            split.emplace(train, dist.world, dist.rank);
            if (run.stop_at > train.max_iters) nn::fail("--stop-at ({}) is after --max-iters ({})", run.stop_at, train.max_iters);
        });
        dist.check_same(shared_settings(config, train, run.stop_at));  // one model, one recipe on every rank
        nn::set_threads(run.threads);

        // 2. Data: the text, its vocabulary, the train and val splits (every rank reads it).
        std::optional<nn::TextData> loaded;
        std::vector<int> context;
        dist.on_every_rank([&] {
            loaded.emplace(load_training_text(run));
            nn::check_context(*loaded, config.block_size);
            context = loaded->vocab.prompt(run.prompt);
        });
        const nn::TextData& data = *loaded;
        dist.check_same({{"--data's text", text_fingerprint(data)}});
        config.vocab_size = data.vocab.size();
        check_fits(config, train.batch_size / (dist.world * train.grad_accum));  // one micro-batch at a time
        print_data(data, run);

        // 3. The model and its optimizer, new or resumed from a checkpoint.
        nn::Rng rng(train.seed);
        DataParallelGPT model(config, rng);
        nn::AdamW optimizer(model.parameters(), {.lr = train.learning_rate, .beta1 = train.beta1, .beta2 = train.beta2,
                                                 .eps = 1e-8f, .weight_decay = train.weight_decay});
        Checkpoint state;  // what --out saves
        state.config = config, state.train = train, state.vocabulary = data.vocab.utf8();
        int start = 0;
        dist.on_every_rank([&] {
            if (!run.resume_dir.empty()) {  // every rank reads the checkpoint: it must see the same file
                const fs::path file = checkpoint_file(run.resume_dir, "last.ckpt");
                CheckpointReader reader(file);
                check_same_but_split(file, reader.info, config, train, state.vocabulary);
                reader.restore(model, &optimizer);
                rng.set_state(reader.info.rng_state, file.string());
                state = reader.info;
                state.train = train;  // the saved settings but for --grad-accum
                start = static_cast<int>(state.step);
                if (run.stop_at >= 0 && run.stop_at <= start)
                    nn::fail("--stop-at {} is not after step {}, where {} stopped", run.stop_at, start, file.string());
                if (run.out_dir.empty()) run.out_dir = fs::is_directory(run.resume_dir) ? run.resume_dir : fs::path(run.resume_dir).parent_path().string();
                fmt::print("resumed from {} at step {} on {} rank{}\n\n", file.string(), start, dist.world,
                           dist.world == 1 ? "" : "s");
            } else if (dist.root()) {
                print_shapes(model, data, train, *split, run.threads);  // 4. One micro-batch through the model.
            }
            if (dist.root()) {  // output paths checked now, as in 06, and what a run killed while saving left
                nn::check_outputs(run.out_dir, {run.plot_path, run.summary_path, run.metrics_path});
                for (const char* name : {"best.ckpt.tmp", "last.ckpt.tmp"})
                    if (!run.out_dir.empty()) fs::remove(fs::path(run.out_dir) / name);
            }
        });
        // Each rank read its own --resume, or started from the seed.
        dist.check_same({{"the start (--resume)", start_fingerprint(start, model.parameters(), rng)}});

        // 5. Train, 6. report.
        const int end = run.stop_at >= 0 ? run.stop_at : train.max_iters;
        const LoopStats stats = train_loop({model, optimizer, data, train, run, state, rng, start, end, *split, dist});
        report(stats, end - start, run, state, end, model, dist);

        // 7. Sample from what it learned (rank 0).
        if (run.max_new_tokens > 0 && dist.root()) sample_after_training(model, data.vocab, context, run, rng);
        return 0;
    });
}
