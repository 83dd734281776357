// --metrics PATH: one JSON object per line, for plots. The whole file is
// rewritten atomically after each line, so a reader never sees half a line.
// --summary-json PATH: the run's figures (step time, peak memory, losses) as
// one JSON object on one line, which the benchmark scripts read instead of
// the printed text.
#pragma once
#include <cmath>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "common/fileio.hpp"

namespace nn {

class MetricsLog {
public:
    // An empty path turns the log off.
    explicit MetricsLog(std::string path) : path_(std::move(path)) {
        if (!path_.empty()) check_writable(path_);
    }
    // Appends one line, e.g. R"({"epoch": 1, "accuracy": 0.91})".
    void write(const std::string& json_object) {
        if (path_.empty()) return;
        text_ += json_object;
        text_ += '\n';
        write_file_atomically(path_, text_);
    }
    // The line of a loss estimate: {"step": 250, "train_loss": 2.0123,
    // "val_loss": 2.0456, "seconds": 6.21}.
    void write_losses(long step, double train_loss, double val_loss, double seconds) {
        write(fmt::format(R"({{"step": {}, "train_loss": {:.4f}, "val_loss": {:.4f}, "seconds": {:.2f}}})", step,
                          train_loss, val_loss, seconds));
    }

private:
    std::string path_;
    std::string text_;
};

// Writes a run's summary to `path`, atomically, as {"key": number, ...} on
// one line, the fields in the order given, each to seven significant digits
// (more than any figure here means; a count below 10^7 stays whole). A value
// that is not finite is null. An empty path writes nothing. (Check the path
// with check_writable before the run, as for any output.)
inline void write_summary_json(const std::string& path,
                               std::initializer_list<std::pair<std::string_view, double>> fields) {
    if (path.empty()) return;
    std::string line = "{";
    for (const auto& [key, value] : fields) {
        if (line.size() > 1) line += ", ";
        line += std::isfinite(value) ? fmt::format("\"{}\": {:.7g}", key, value) : fmt::format("\"{}\": null", key);
    }
    write_file_atomically(path, line + "}\n");
}

}  // namespace nn
