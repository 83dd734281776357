// The machine's own arithmetic limit: how many float multiply-adds per second
// its cores can do at all, from a loop of nothing else (no memory, no
// packing), for bench/gpt-vs-torch to set beside Eigen's matrix-product peak.
//
// Each thread keeps independent accumulators, each one vector register, so
// that the fused multiply-add units never wait for a previous result: a * b + c
// on every one, many times over. With AVX-512, 16 of the 32 registers of 64
// bytes; otherwise 12 of the 16 AVX2 registers of 32 bytes (two units of 4 to
// 5 cycles' latency need 8 to 10 chains). Vectors wider than the registers
// would not fit: 16 of 64 bytes on AVX2 are 32 registers' worth, spilled to
// memory on every step, and measured 15 times below the cores' limit.
//
// Built and run by bench/gpt-vs-torch:
//   g++ -O3 -march=native -fopenmp bench/fma_peak.cpp
//   ./fma_peak [threads]
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#if defined(__AVX512F__)
typedef float Vec __attribute__((vector_size(64)));  // 16 floats: one AVX-512 register
constexpr int kLanes = 16, kChains = 16;
#else
typedef float Vec __attribute__((vector_size(32)));  // 8 floats: one AVX2 register
constexpr int kLanes = 8, kChains = 12;
#endif

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    omp_set_num_threads(threads);
    const long iterations = 20'000'000;  // per thread: about 0.1 s at 3 GHz
    double best = 0;
    float sink = 0;
    for (int rep = 0; rep < 7; ++rep) {
        const double t0 = omp_get_wtime();
#pragma omp parallel reduction(+ : sink)
        {
            Vec acc[kChains];
            for (int c = 0; c < kChains; ++c)
                for (int l = 0; l < kLanes; ++l) acc[c][l] = 1.0f + 1e-3f * static_cast<float>(c + l);
            Vec a, b;
            for (int l = 0; l < kLanes; ++l) a[l] = 0.999999f, b[l] = 1e-7f;
            for (long i = 0; i < iterations; ++i)
                for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * a + b;  // one fused multiply-add each
            for (int c = 0; c < kChains; ++c)
                for (int l = 0; l < kLanes; ++l) sink += acc[c][l];
        }
        const double seconds = omp_get_wtime() - t0;
        best = std::max(best, 2.0 * kLanes * kChains * iterations * threads / seconds / 1e9);
    }
    std::printf("multiply-add peak: %.1f GFLOP/s on %d threads (checksum %.3g)\n", best, threads, sink);
    std::printf("FMA_GFLOPS=%.1f\n", best);
}
