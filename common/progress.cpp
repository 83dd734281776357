#include "common/progress.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace nn {

Progress::Progress(std::string unit, long total)
    : unit_(std::move(unit)), total_(total), terminal_(::isatty(STDERR_FILENO) != 0) {}

void Progress::update(long done, std::string_view note) {
    const double now = clock_.seconds();
    const bool last = done >= total_;
    if (now - last_print_ < (terminal_ ? 0.5 : 5.0) && !(last && terminal_)) return;
    last_print_ = now;
    const double rate = now > 0 ? done / now : 0.0;
    const double eta = rate > 0 ? (total_ - done) / rate : 0.0;
    std::fflush(stdout);
    fmt::print(stderr, "{}{} {}/{} | {:.1f} {}/s | ETA {:.0f}s{}{}{}", terminal_ ? "\r" : "",
               unit_, done, total_, rate, unit_, eta, note.empty() ? "" : " | ", note,
               terminal_ ? "\x1b[K" : "\n");
    drawn_ = terminal_;
    std::fflush(stderr);
}

void Progress::clear() {
    if (drawn_) fmt::print(stderr, "\r\x1b[K");
    drawn_ = false;
}

}  // namespace nn
