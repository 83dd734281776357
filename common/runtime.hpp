// Threads and memory of the process, for the lessons that train a Transformer
// (06, 07, 08).
#pragma once
#include <Eigen/Core>
#include <malloc.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>

namespace nn {

// The most resident memory this process has used so far, in MB.
inline double peak_rss_mb() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Eigen's matrix products allocate their packing buffers on every call, and
// the blocks free and allocate again the buffers they take turns with
// (06-gpt/memory.hpp). Keep freed memory in the heap, up to 1 GB, rather than handing
// it back to the kernel (glibc's default for a block above 32 MB), or each
// step pays for fresh zeroed pages. The peak stays what is in use at once.
inline void keep_freed_memory() {
    ::mallopt(M_MMAP_THRESHOLD, 1 << 30);
    ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

// The cores that other programs leave idle now, from /proc/stat sampled over
// 100 ms; at least 1. The default thread count: the threads of a step meet at
// many barriers, and one whose core is taken by another program makes the
// others wait (beside one busy core, bench/gpt-under-load measured 48.9 ms a
// step with two threads, 33.2 with one). Results are the same for any thread
// count.
inline int idle_cores() {
    const int cores = omp_get_num_procs();
    auto sample = [](double& idle, double& total) {
        std::ifstream stat("/proc/stat");
        std::string cpu;
        double v[8] = {};
        stat >> cpu;
        for (double& x : v) stat >> x;
        idle = v[3] + v[4];  // idle, iowait
        total = std::accumulate(std::begin(v), std::end(v), 0.0);
        return static_cast<bool>(stat);
    };
    double idle0, total0, idle1, total1;
    if (!sample(idle0, total0)) return cores;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!sample(idle1, total1) || total1 <= total0) return cores;
    const double idle_share = (idle1 - idle0) / (total1 - total0);
    return std::clamp(static_cast<int>(std::lround(idle_share * cores)), 1, cores);
}

}  // namespace nn
