// 07-encoder-decoder: threads and memory of the process (tooling beside the concept).
#pragma once
#include <Eigen/Core>
#include <malloc.h>
#include <omp.h>
#include <sys/resource.h>

// The most resident memory this process has used so far, in MB.
inline double peak_rss_mb() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Eigen's matrix products allocate their packing buffers on every call. Keep
// freed memory in the heap rather than handing it back to the kernel, or each
// step pays for fresh zeroed pages.
inline void keep_freed_memory() {
    ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

