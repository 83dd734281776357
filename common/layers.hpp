// The generic layers the language-model lessons share, each a forward that
// keeps what its backward needs and a backward right beside it. A backward
// takes d(loss)/d(output), returns d(loss)/d(input), and ADDS the gradients
// of the layer's parameters to their .grad (so zero them before each step).
//
// Shapes use the lecture's names: N = B*T rows (one per token position),
// C channels, V vocabulary size.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <span>
#include <utility>
#include <vector>

#include "common/random.hpp"
#include "common/tensor.hpp"

namespace nn {

// A trainable matrix and the gradient of the loss with respect to it.
struct Parameter {
    Matrix value;
    Matrix grad;       // same shape as value
    bool decay = true;  // whether AdamW's weight decay applies to it
    void resize(Eigen::Index rows, Eigen::Index cols) {
        value.setZero(rows, cols);
        grad.setZero(rows, cols);
    }
};

// Softmax of each row, in place; -infinity entries become 0.
void softmax_rows(Eigen::Ref<Matrix> m);

// log(sum_j exp(z_j)) of one row of logits, computed as max + log(sum_j
// exp(z_j - max)) so that no exp overflows: -log softmax(z)_v = lse - z_v,
// without taking the log of a probability that underflowed to 0. The exps
// are summed in the row's own type (float, or double for a row cast to
// double), the log taken in double.
template <typename Row>
double log_sum_exp(const Eigen::MatrixBase<Row>& z) {
    const auto max = z.maxCoeff();
    return max + std::log(static_cast<double>((z.array() - max).exp().sum()));
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
// Eigen on this thread (inside a parallel region Eigen does not share a
// product again). With `bias` (1, cols; not with Accumulate), out = bias + a b:
// the rows start as the bias and the product is added to them, one pass over
// out, not two.
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

// The backward of y = x W^T (+ b), W (out, in): dW += dy^T x (out, in),
// db += sum_n dy (1, out) when db is given, dx = dy W (N, in). The three
// share one parallel region: each thread computes its rows of dW, its blocks
// of db and its rows of dx, none reading what another writes, so the threads
// meet once instead of three times.
void linear_backward(const Matrix& dy, const Matrix& x, const Matrix& w, Matrix& dw, Matrix* db, Matrix& dx);

// y = x W^T + b, with W stored (out, in) as in PyTorch.
//
// backward needs the input x (dW = dy^T x). The layer keeps a pointer to it,
// not a copy: the matrix given to forward must still hold the same values when
// backward runs (in these lessons it is always an earlier layer's output).
struct Linear {
    Parameter weight;           // (out, in), initialised U(-1/sqrt(in), 1/sqrt(in)) as in PyTorch
    Parameter bias;             // (1, out), or empty when built without bias
    bool has_bias;
    const Matrix* x = nullptr;  // the last input, read again by backward
    Matrix y, dx;               // the last output and input gradient

    Linear(int in, int out, bool bias, Rng& rng);
    const Matrix& forward(const Matrix& input);  // (N, in) -> (N, out)
    const Matrix& backward(const Matrix& dy);    // (N, out) -> (N, in)
};

// A lookup table: token i reads row i.
struct Embedding {
    Parameter weight;       // (V, C), initialised N(0, 1) as in PyTorch
    std::vector<int> idx;   // the last input, kept for backward
    Matrix y;               // the last output

    Embedding(int num_embeddings, int embedding_dim, Rng& rng);
    const Matrix& forward(std::span<const int> tokens);  // (N) -> (N, C)
    void backward(const Matrix& dy);                     // (N, C) -> (nothing: the input is integers)
};

// Softmax followed by the mean negative log-likelihood of the targets.
struct CrossEntropy {
    Matrix probs;               // (N, V): softmax of the last logits
    std::vector<int> targets;   // (N)
    Matrix dlogits;             // (N, V)

    // The loss is summed and returned in double, so that finite differences of it are exact
    // enough to check gradients of order 1e-4.
    double forward(const Matrix& logits, std::span<const int> target_tokens);  // (N, V), (N) -> ()
    const Matrix& backward();  // () -> (N, V): (probs - one_hot(targets)) / N
};

}  // namespace nn
