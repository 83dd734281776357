// The matrix-product peak on the shapes of one 06-gpt training step: how long
// the step's own products would take if each ran at Eigen's best on this
// machine, with nothing else in the step. bench/gpt-vs-torch and
// bench/gpt-lecture divide the step's measured time by it.
//
// For every (M, K, N) product of a Linear layer (forward y = x W^T, backward
// dx = dy W and dW = dy^T x), it times Eigen two ways:
//   eigen-mt   one product, Eigen's own OpenMP threading;
//   split      the output split in row blocks across the OpenMP threads, each
//              block a single-threaded Eigen product (what 06-gpt does);
// and for attention's products, which 06-gpt runs one (sequence, head) pair
// per thread at a time, the B*nh independent (T, hs) products shared between
// the threads: forward q k^T and wei v, backward dout v^T, wei^T dout, ds k
// and ds^T q. 06-gpt computes only the causal half of each (j <= i), so each
// counts half its full product's time at the full product's rate. (The
// backward also computes q k^T again; that recomputation is not counted.)
// Every operand stays the same between repetitions, in the cores' caches: a
// peak, not what a step's passes over fresh memory can reach.
//
// Prints GFLOP/s per shape, then the step's totals:
//   step (linear layers, ...)            the linear layers at the faster of the two ways
//   step (attention's products, ...)     the attention products, shared by pairs
//   LINEAR_MS=..., ATTENTION_MS=..., PEAK_GFLOPS=... for the scripts
//
// Built and run by bench/gpt-vs-torch and bench/gpt-lecture:
//   g++ -O3 -march=native -DNDEBUG -fopenmp -I/usr/include/eigen3 bench/gemm_peak.cpp
//   ./gemm_peak [threads [B T C n_layer n_head V]]    (default: 2, and 06-gpt's default model)
#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

struct Shape {
    const char* what;
    int count;  // how many of these a step makes
    int m, k, n;
    char kind;  // 'f': C = A B^T (forward), 'd': C = A B (dx), 'w': C = A^T B (dW)
};

double seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Operands {
    Matrix a, b, c;
    explicit Operands(const Shape& s) : c(s.m, s.n) {
        if (s.kind == 'f') a = Matrix::Random(s.m, s.k), b = Matrix::Random(s.n, s.k);
        else if (s.kind == 'd') a = Matrix::Random(s.m, s.k), b = Matrix::Random(s.k, s.n);
        else a = Matrix::Random(s.k, s.m), b = Matrix::Random(s.k, s.n);
    }
    // rows [r0, r0 + rn) of C, on this thread
    void rows(char kind, Eigen::Index r0, Eigen::Index rn) {
        auto out = c.middleRows(r0, rn);
        if (kind == 'f') out.noalias() = a.middleRows(r0, rn) * b.transpose();
        else if (kind == 'd') out.noalias() = a.middleRows(r0, rn) * b;
        else out.noalias() = a.transpose().middleRows(r0, rn) * b;
    }
};

// The median over 7 rounds of one repetition's seconds, each round about 50 ms
// of repetitions (at least one), after one round of warm-up.
template <typename Run>
double median_seconds(double flop, Run run) {
    const int reps = std::max(1, static_cast<int>(0.05 * 2e11 / flop));  // about 50 ms at 200 GFLOP/s
    std::vector<double> times;
    for (int round = 0; round < 8; ++round) {
        const double t0 = seconds();
        for (int i = 0; i < reps; ++i) run();
        if (round > 0) times.push_back((seconds() - t0) / reps);
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

// GFLOP/s of one Linear product, by Eigen's own threads or split by rows
double linear_gflops(const Shape& s, bool split) {
    Operands o(s);
    const double flop = 2.0 * s.m * s.k * s.n;
    Eigen::setNbThreads(split ? 1 : omp_get_max_threads());
    const double t = median_seconds(flop, [&] {
        if (!split) return o.rows(s.kind, 0, s.m);
#pragma omp parallel
        {
            const Eigen::Index t = omp_get_thread_num(), nt = omp_get_num_threads();
            const Eigen::Index r0 = s.m * t / nt, r1 = s.m * (t + 1) / nt;
            if (r1 > r0) o.rows(s.kind, r0, r1 - r0);
        }
    });
    return flop / t / 1e9;
}

// GFLOP/s of `pairs` independent products of one shape, shared between the
// threads (each thread its own operands, one product after another)
double batched_gflops(const Shape& s, int pairs) {
    Eigen::setNbThreads(1);
    std::vector<Operands> per_thread;
    for (int t = 0; t < omp_get_max_threads(); ++t) per_thread.emplace_back(s);
    const double flop = 2.0 * s.m * s.k * s.n * pairs;
    const double t = median_seconds(flop, [&] {
#pragma omp parallel for schedule(static)
        for (int p = 0; p < pairs; ++p) per_thread[omp_get_thread_num()].rows(s.kind, 0, s.m);
    });
    return flop / t / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    int B = 12, T = 64, C = 128, L = 4, nh = 4, V = 65;
    if (argc == 8) {
        B = std::atoi(argv[2]), T = std::atoi(argv[3]), C = std::atoi(argv[4]);
        L = std::atoi(argv[5]), nh = std::atoi(argv[6]), V = std::atoi(argv[7]);
    } else if (argc != 1 && argc != 2) {
        std::fprintf(stderr, "usage: gemm_peak [threads [B T C n_layer n_head V]]\n");
        return 2;
    }
    if (threads < 1 || B < 1 || T < 1 || C < 1 || L < 1 || nh < 1 || V < 1 || C % nh != 0) {
        std::fprintf(stderr, "gemm_peak: impossible sizes (C must be a multiple of n_head)\n");
        return 2;
    }
    omp_set_num_threads(threads);
    const int BT = B * T, hs = C / nh;
    std::printf("sizes: B %d, T %d, C %d, n_layer %d, n_head %d, V %d; threads %d\n", B, T, C, L, nh, V, threads);
    const Shape linear[] = {
        {"qkv fwd", L, BT, C, 3 * C, 'f'},     {"attn proj fwd", L, BT, C, C, 'f'},
        {"mlp fc fwd", L, BT, C, 4 * C, 'f'},  {"mlp proj fwd", L, BT, 4 * C, C, 'f'},
        {"lm head fwd", 1, BT, C, V, 'f'},     {"qkv dx", L, BT, 3 * C, C, 'd'},
        {"attn proj dx", L, BT, C, C, 'd'},    {"mlp fc dx", L, BT, 4 * C, C, 'd'},
        {"mlp proj dx", L, BT, C, 4 * C, 'd'}, {"lm head dx", 1, BT, V, C, 'd'},
        {"qkv dW", L, 3 * C, BT, C, 'w'},      {"attn proj dW", L, C, BT, C, 'w'},
        {"mlp fc dW", L, 4 * C, BT, C, 'w'},   {"mlp proj dW", L, C, BT, 4 * C, 'w'},
        {"lm head dW", 1, V, BT, C, 'w'},
    };
    std::printf("%-14s %16s %10s %10s\n", "product", "M x K x N", "eigen-mt", "split");
    double flop = 0, time_mt = 0, time_split = 0;
    for (const Shape& s : linear) {
        const double g_mt = linear_gflops(s, false), g_split = linear_gflops(s, true);
        const double f = 2.0 * s.m * s.k * s.n * s.count;
        flop += f;
        time_mt += f / (g_mt * 1e9);
        time_split += f / (g_split * 1e9);
        std::printf("%-14s %4d x %4d x %4d %9.1f %10.1f   GFLOP/s\n", s.what, s.m, s.k, s.n, g_mt, g_split);
    }
    const double linear_s = std::min(time_mt, time_split);
    std::printf("step (linear layers, %.2f GFLOP): eigen-mt %.1f GFLOP/s (%.1f ms), split %.1f "
                "GFLOP/s (%.1f ms), threads %d\n",
                flop / 1e9, flop / time_mt / 1e9, time_mt * 1e3, flop / time_split / 1e9, time_split * 1e3, threads);

    // Attention: per layer and (sequence, head) pair, each product once (the causal half of it).
    const Shape attention[] = {
        {"q k^T", L, T, hs, T, 'f'},      {"wei v", L, T, T, hs, 'd'},   {"dout v^T", L, T, hs, T, 'f'},
        {"wei^T dout", L, T, T, hs, 'w'}, {"ds k", L, T, T, hs, 'd'},    {"ds^T q", L, T, T, hs, 'w'},
    };
    double attention_flop = 0, attention_s = 0;
    for (const Shape& s : attention) {
        const double g = batched_gflops(s, B * nh);
        const double f = 0.5 * 2.0 * s.m * s.k * s.n * s.count * B * nh;  // the causal half
        attention_flop += f;
        attention_s += f / (g * 1e9);
        std::printf("%-14s %4d x %4d x %4d %9s %10.1f   GFLOP/s (x %d pairs)\n", s.what, s.m, s.k, s.n, "", g, B * nh);
    }
    std::printf("step (attention's products, causal halves, %.2f GFLOP): %.1f GFLOP/s (%.1f ms)\n",
                attention_flop / 1e9, attention_flop / attention_s / 1e9, attention_s * 1e3);
    std::printf("LINEAR_MS=%.2f\nATTENTION_MS=%.2f\n", linear_s * 1e3, attention_s * 1e3);
    std::printf("PEAK_GFLOPS=%.1f\n", flop / linear_s / 1e9);
}
