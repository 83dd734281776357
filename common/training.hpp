// The training loop's records and reporting, for the lessons that train with
// a table of settings (06, 07, 08): what a loop measured, the line that ends
// a run, the last loss estimate and the loss curves (tooling, not a concept).
#pragma once
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace nn {

// One loss estimate: the lines "step N: train loss X, val loss Y".
struct EvalRecord {
    int step;
    float train, val;
    double seconds;
};

// What a training loop measured: its whole time, the part of it spent
// estimating losses, and each training step's time in ms.
struct LoopStats {
    double seconds = 0, eval_seconds = 0;
    std::vector<double> step_ms;

    // The median step (0 if there was none): the figure the benchmarks read,
    // which a slow first step or a busy moment does not move.
    double median_step_ms() const;
};

// The line that ends a run: "N steps in X s (Y s of it estimating losses):
// Z ms per training step (median), R steps/s; peak memory M MB", then
// `memory_note` (say, " per rank").
void print_loop_report(int steps, const LoopStats& stats, double peak_memory_mb, std::string_view memory_note = "");

// The last loss estimate of a run, or NaNs (null in a summary) if there was none.
EvalRecord last_losses(const std::vector<EvalRecord>& history);

// The train and val losses of `history` against the step, into the PNG at
// `path`, with a line saying so; nothing if `path` is empty.
void plot_losses(const std::string& path, const std::string& title, const std::vector<EvalRecord>& history);

// The run's outputs, checked before training rather than after its first
// loss estimate: `out_dir` (if given) is made and a checkpoint there must be
// writable, and so must every other path given (empty ones are skipped).
void check_outputs(const std::string& out_dir, std::initializer_list<std::string> paths);

}  // namespace nn
