// 08-data-parallel: threads and memory of the process (tooling beside the concept).
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

// Eigen's matrix products allocate their packing buffers on every call, and
// the blocks free and allocate again the buffers they take turns with
// (model.hpp). Keep freed memory in the heap, up to 1 GB, rather than handing
// it back to the kernel (glibc's default for a block above 32 MB), or each
// step pays for fresh zeroed pages. The peak stays what is in use at once.
inline void keep_freed_memory() {
    ::mallopt(M_MMAP_THRESHOLD, 1 << 30);
    ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

