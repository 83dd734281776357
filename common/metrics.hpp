// --metrics PATH: one JSON object per line, for plots. The whole file is
// rewritten atomically after each line, so a reader never sees half a line.
#pragma once
#include <string>

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

private:
    std::string path_;
    std::string text_;
};

}  // namespace nn
