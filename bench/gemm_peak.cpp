// The matrix-product peak on the shapes of one 06-gpt training step, for the
// model-FLOPs-utilisation figure of bench/gpt-vs-torch.
//
// For every (M, K, N) product a default step makes (forward y = x W^T,
// backward dx = dy W and dW = dy^T x), it times Eigen two ways:
//   eigen-mt   one product, Eigen's own OpenMP threading (what 06-gpt's
//              Linear layers do);
//   split      the output split in row blocks across the OpenMP threads, each
//              block a single-threaded Eigen product (what 06-gpt could do);
// and prints GFLOP/s per shape and the weighted total for a whole step.
//
// Built and run by bench/gpt-vs-torch:
//   g++ -O3 -march=native -fopenmp -I/usr/include/eigen3 bench/gemm_peak.cpp
//   ./gemm_peak [threads]
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
    int count;  // how many of these a default step makes (4 layers)
    int m, k, n;
    char kind;  // 'f': C = A B^T (forward), 'd': C = A B (dx), 'w': C = A^T B (dW)
};

double seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// C (m x n) from A and B laid out as the training step lays them out.
void product(char kind, const Matrix& a, const Matrix& b, Matrix& c, bool split) {
    auto run = [&](Eigen::Index r0, Eigen::Index rn) {
        auto out = c.middleRows(r0, rn);
        if (kind == 'f') out.noalias() = a.middleRows(r0, rn) * b.transpose();
        else if (kind == 'd') out.noalias() = a.middleRows(r0, rn) * b;
        else out.noalias() = a.transpose().middleRows(r0, rn) * b;
    };
    if (!split) {
        run(0, c.rows());
        return;
    }
#pragma omp parallel
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const Eigen::Index rows = c.rows();
        const Eigen::Index r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
        if (r1 > r0) run(r0, r1 - r0);
    }
}

double gflops(const Shape& s, bool split) {
    Matrix a, b, c(s.m, s.n);
    if (s.kind == 'f') a = Matrix::Random(s.m, s.k), b = Matrix::Random(s.n, s.k);
    else if (s.kind == 'd') a = Matrix::Random(s.m, s.k), b = Matrix::Random(s.k, s.n);
    else a = Matrix::Random(s.k, s.m), b = Matrix::Random(s.k, s.n);
    for (int i = 0; i < 20; ++i) product(s.kind, a, b, c, split);
    std::vector<double> times;
    for (int rep = 0; rep < 15; ++rep) {
        const double t0 = seconds();
        for (int i = 0; i < 20; ++i) product(s.kind, a, b, c, split);
        times.push_back((seconds() - t0) / 20);
    }
    std::sort(times.begin(), times.end());
    return 2.0 * s.m * s.k * s.n / times[times.size() / 2] / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
    omp_set_num_threads(threads);
    Eigen::setNbThreads(threads);
    const int BT = 12 * 64, C = 128, V = 65;
    const Shape shapes[] = {
        {"qkv fwd", 4, BT, C, 3 * C, 'f'},     {"attn proj fwd", 4, BT, C, C, 'f'},
        {"mlp fc fwd", 4, BT, C, 4 * C, 'f'},  {"mlp proj fwd", 4, BT, 4 * C, C, 'f'},
        {"lm head fwd", 1, BT, C, V, 'f'},     {"qkv dx", 4, BT, 3 * C, C, 'd'},
        {"attn proj dx", 4, BT, C, C, 'd'},    {"mlp fc dx", 4, BT, 4 * C, C, 'd'},
        {"mlp proj dx", 4, BT, C, 4 * C, 'd'}, {"lm head dx", 1, BT, V, C, 'd'},
        {"qkv dW", 4, 3 * C, BT, C, 'w'},      {"attn proj dW", 4, C, BT, C, 'w'},
        {"mlp fc dW", 4, 4 * C, BT, C, 'w'},   {"mlp proj dW", 4, C, BT, 4 * C, 'w'},
        {"lm head dW", 1, V, BT, C, 'w'},
    };
    std::printf("%-14s %16s %10s %10s\n", "product", "M x K x N", "eigen-mt", "split");
    double flop = 0, time_mt = 0, time_split = 0;
    for (const Shape& s : shapes) {
        const double g_mt = gflops(s, false), g_split = gflops(s, true);
        const double f = 2.0 * s.m * s.k * s.n * s.count;
        flop += f;
        time_mt += f / (g_mt * 1e9);
        time_split += f / (g_split * 1e9);
        std::printf("%-14s %4d x %4d x %4d %9.1f %10.1f   GFLOP/s\n", s.what, s.m, s.k, s.n,
                    g_mt, g_split);
    }
    std::printf("step (linear layers, %.2f GFLOP): eigen-mt %.1f GFLOP/s (%.1f ms), split %.1f "
                "GFLOP/s (%.1f ms), threads %d\n",
                flop / 1e9, flop / time_mt / 1e9, time_mt * 1e3, flop / time_split / 1e9,
                time_split * 1e3, threads);
    std::printf("PEAK_GFLOPS=%.1f\n", flop / std::min(time_mt, time_split) / 1e9);
}
