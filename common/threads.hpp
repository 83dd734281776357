// Threads: how the lessons share their work between the cores. OpenMP runs
// the threads; the project splits each product and loop itself (by rows, on
// fixed boundaries), so that a result is the same bits for a given thread
// count, and opens a parallel region only where each thread gets enough work.
// Eigen's matrix products never start threads of their own (set_threads).
#pragma once
#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "common/tensor.hpp"

namespace nn {

// The threads of the project's parallel regions, and none for Eigen's own
// products. Every parallel region here is opened with a condition (`if`), and
// a region whose condition is false still runs, on a team of one thread.
// Eigen, seeing a team of one, would open a nested region for a product of
// its own, with new threads every time (nested teams are not pooled): 100
// times slower at small sizes. With one Eigen thread, a product inside a
// region runs on the thread that calls it.
inline void set_threads(int threads) {
    omp_set_num_threads(threads);
    Eigen::setNbThreads(1);
}

// Inside a parallel region: this thread's share [first, second) of `rows`
// rows, in order. The boundaries between threads fall on multiples of 8 rows:
// Eigen's kernel takes a row-major result's rows 4 at a time and a ragged rest
// another way, so a boundary elsewhere would change, with the thread count,
// which way (and so which last bits) some rows get.
inline std::pair<Eigen::Index, Eigen::Index> thread_rows(Eigen::Index rows) {
    const Eigen::Index n = omp_get_num_threads(), t = omp_get_thread_num();
    auto boundary = [&](Eigen::Index i) { return i == n ? rows : rows * i / n / 8 * 8; };
    return {boundary(t), boundary(t + 1)};
}

// Inside a parallel region: this thread's rows of out (+)= a b, computed by
// Eigen on this thread (set_threads: Eigen does not share a product itself).
// With `bias` (1, cols; not with Accumulate), out = bias + a b: the rows start
// as the bias and the product is added to them, one pass over out, not two.
template <bool Accumulate, typename A, typename B>
void product_rows(const A& a, const B& b, Matrix& out, const Matrix* bias = nullptr) {
    assert(!Accumulate || bias == nullptr);
    const auto [r0, r1] = thread_rows(out.rows());
    auto rows = out.middleRows(r0, r1 - r0);
    if constexpr (Accumulate) {
        rows.noalias() += a.middleRows(r0, r1 - r0) * b;
    } else if (bias != nullptr) {
        rows.rowwise() = bias->row(0);
        rows.noalias() += a.middleRows(r0, r1 - r0) * b;
    } else {
        rows.noalias() = a.middleRows(r0, r1 - r0) * b;
    }
}

// by_rows(out) = e and by_rows(out) += e: out (=, +=) an Eigen expression of
// whole matrices (x + a, say), the threads sharing its rows. A residual add
// is a pass over memory (at the lecture's size 25 MB read twice and written
// once) that one thread would do while the other waits. Each value is what
// Eigen computes for it alone, whatever the thread count.
class ByRows {
public:
    explicit ByRows(Matrix& out) : out_(out) {}
    template <typename E>
    void operator=(const Eigen::MatrixBase<E>& e) {
        out_.resize(e.rows(), e.cols());
        share([&](Eigen::Index r0, Eigen::Index n) { out_.middleRows(r0, n) = e.middleRows(r0, n); });
    }
    template <typename E>
    void operator+=(const Eigen::MatrixBase<E>& e) {
        assert(e.rows() == out_.rows() && e.cols() == out_.cols());
        share([&](Eigen::Index r0, Eigen::Index n) { out_.middleRows(r0, n) += e.middleRows(r0, n); });
    }

private:
    template <typename F>
    void share(F f) {
#pragma omp parallel if (out_.size() >= kParallelGrain)
        {
            const auto [r0, r1] = thread_rows(out_.rows());
            f(r0, r1 - r0);
        }
    }
    Matrix& out_;
};
inline ByRows by_rows(Matrix& out) { return ByRows(out); }

// Whether a product of these sizes is worth a parallel region.
inline bool parallel_product(Eigen::Index rows, Eigen::Index inner, Eigen::Index cols) {
    return static_cast<long>(rows) * inner * cols >= 64 * kParallelGrain;
}

// out = a b (+ bias), with the rows of out split between the OpenMP threads
// (product_rows). On these lessons' small, wide products that is faster than
// Eigen sharing each product, whose threads meet at every panel. Each element
// is the same sum in the same order whatever the thread count (Eigen's own
// sharing changes its blocking with the thread count, and with it the last
// bits of the sums).
template <typename A, typename B>
void product_by_rows(const A& a, const B& b, Matrix& out, const Matrix* bias = nullptr) {
#pragma omp parallel if (parallel_product(a.rows(), a.cols(), b.cols()))
    product_rows<false>(a, b, out, bias);
}

// Inside a parallel region: out (1, D) += the sum of each column of m (N, D),
// a bias's gradient, the threads sharing the columns in blocks of 16 (without
// waiting for each other at the end). Each block is Eigen's column sum, so
// every value is the same sum in the same order whatever the thread count.
template <typename Expr>
void column_sums_share(const Expr& m, Matrix& out) {
    const Eigen::Index D = m.cols(), blocks = (D + 15) / 16;
#pragma omp for schedule(static) nowait
    for (Eigen::Index b = 0; b < blocks; ++b) {
        const Eigen::Index c0 = 16 * b, width = std::min<Eigen::Index>(16, D - c0);
        out.middleCols(c0, width) += m.middleCols(c0, width).colwise().sum();
    }
}

// out (1, D) += the sum of each column of m (N, D), on all threads.
template <typename Expr>
void add_column_sums(const Expr& m, Matrix& out) {
#pragma omp parallel if (m.rows() * m.cols() >= kParallelGrain)
    column_sums_share(m, out);
}

}  // namespace nn
