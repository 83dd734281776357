// A progress line with the rate and the time left, on stderr so that stdout
// keeps only the results. On a terminal it redraws one line about twice a
// second; in a log it prints a line every five seconds.
#pragma once
#include <chrono>
#include <string>
#include <string_view>

namespace nn {

class Stopwatch {
public:
    Stopwatch() : start_(std::chrono::steady_clock::now()) {}
    double seconds() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }
    void restart() { start_ = std::chrono::steady_clock::now(); }

private:
    std::chrono::steady_clock::time_point start_;
};

class Progress {
public:
    // `unit` names what is counted ("step", "batch"); `total` how many there are.
    Progress(std::string unit, long total);
    // Reports that `done` of `total` are finished; `note` is appended (a loss, say).
    void update(long done, std::string_view note = {});
    // Clears the line on a terminal, before a result line is printed.
    void clear();

private:
    std::string unit_;
    long total_;
    bool terminal_;
    bool drawn_ = false;
    Stopwatch clock_;
    double last_print_ = 0;  // the first line waits one interval, so its rate is meaningful
};

}  // namespace nn
