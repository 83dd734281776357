#include "common/training.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>

#include <fmt/core.h>

#include "common/fileio.hpp"
#include "common/plot.hpp"

namespace nn {

double LoopStats::median_step_ms() const {
    if (step_ms.empty()) return 0.0;
    std::vector<double> sorted = step_ms;
    std::sort(sorted.begin(), sorted.end());
    return sorted[sorted.size() / 2];
}

void print_loop_report(int steps, const LoopStats& stats, double peak_memory_mb, std::string_view memory_note) {
    const double median = stats.median_step_ms();
    fmt::print("{} steps in {:.1f} s ({:.1f} s of it estimating losses): {:.1f} ms per training step "
               "(median), {:.1f} steps/s; peak memory {:.0f} MB{}\n",
               steps, stats.seconds, stats.eval_seconds, median, median > 0 ? 1e3 / median : 0.0, peak_memory_mb,
               memory_note);
}

EvalRecord last_losses(const std::vector<EvalRecord>& history) {
    const float none = std::numeric_limits<float>::quiet_NaN();
    return history.empty() ? EvalRecord{0, none, none, 0} : history.back();
}

void plot_losses(const std::string& path, const std::string& title, const std::vector<EvalRecord>& history) {
    if (path.empty()) return;
    Series train{"train", {}, {}}, val{"val", {}, {}};
    for (const EvalRecord& e : history) {
        train.x.push_back(static_cast<float>(e.step));
        train.y.push_back(e.train);
        val.x.push_back(static_cast<float>(e.step));
        val.y.push_back(e.val);
    }
    write_line_plot(path, title, "step", {train, val});
    fmt::print("wrote the loss curves to {}\n", path);
}

void check_outputs(const std::string& out_dir, std::initializer_list<std::string> paths) {
    if (!out_dir.empty()) {
        make_directory(out_dir, "--out");  // a checkpoint is several files
        check_writable(std::filesystem::path(out_dir) / "last.ckpt");
    }
    for (const std::string& path : paths)
        if (!path.empty()) check_writable(path);
}

}  // namespace nn
