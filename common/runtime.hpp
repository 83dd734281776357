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
// 100 ms; at least 1. The default thread count for a small step (auto_threads,
// below): the threads of a step meet at many barriers, and one whose core is
// taken by another program makes the others wait (beside one busy core,
// bench/gpt-under-load measured 48.9 ms a step with two threads, 33.2 with
// one). Results are the same for any thread count.
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

// The automatic thread count (--threads 0) for training steps whose matrix
// products come to `step_flops` floating-point operations: every core from
// 4e11 up, one per idle core below. In a large step each parallel region is
// long, and a thread whose core another program shares still adds a share of
// that core; in a small one it mostly makes the others wait at the next
// meeting. Beside one busy loop on the 2-core AVX2 machine (2026-12-07,
// 06-gpt, wall seconds with 1 / 2 threads): 0.9e11 flops a step, 18.6 / 22.4;
// 2.9e11, 22.4 / 23.1; 5.9e11, 41.8 / 37.9; the lecture preset's 1.2e12,
// 91.6 / 82.7. 4e11 lies between the largest step where one thread won or
// tied and the smallest where two won. A core twice as fast halves each
// region's time and so moves the crossing up.
inline constexpr double kEveryCoreFlops = 4e11;
inline int auto_threads(double step_flops) {
    return step_flops >= kEveryCoreFlops ? omp_get_num_procs() : idle_cores();
}

}  // namespace nn
