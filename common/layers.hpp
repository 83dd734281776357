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
#include <span>
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

// out (+)= a b, with the rows of out split between the OpenMP threads, each
// computing its rows with Eigen on one thread (inside a parallel region Eigen
// does not share a product again). On these lessons' small, wide products
// that is faster than Eigen sharing each product, whose threads meet at every
// panel. Each element is the same sum in the same order whatever the thread
// count (Eigen's own sharing changes its blocking with the thread count, and
// with it the last bits of the sums).
// With `bias` (1, cols), each row of out then gets it added, in the same region.
template <bool Accumulate, typename A, typename B>
void product_by_rows(const A& a, const B& b, Matrix& out, const Matrix* bias = nullptr) {
    const long work = static_cast<long>(a.rows()) * a.cols() * b.cols();
#pragma omp parallel if (work >= 64 * kParallelGrain)
    {
        const Eigen::Index n = omp_get_num_threads(), t = omp_get_thread_num();
        const Eigen::Index r0 = out.rows() * t / n, r1 = out.rows() * (t + 1) / n;
        auto rows = out.middleRows(r0, r1 - r0);
        if constexpr (Accumulate) rows.noalias() += a.middleRows(r0, r1 - r0) * b;
        else rows.noalias() = a.middleRows(r0, r1 - r0) * b;
        if (bias != nullptr) rows.rowwise() += bias->row(0);
    }
}

// out (1, D) += the sum of each column of m (N, D): a bias's gradient. The
// columns are shared out between the threads in blocks of 16; each block is
// Eigen's column sum, so every value is the same sum in the same order
// whatever the thread count.
template <typename Expr>
void add_column_sums(const Expr& m, Matrix& out) {
    const Eigen::Index D = m.cols(), blocks = (D + 15) / 16;
#pragma omp parallel for schedule(static) if (m.rows() * D >= kParallelGrain)
    for (Eigen::Index b = 0; b < blocks; ++b) {
        const Eigen::Index c0 = 16 * b, width = std::min<Eigen::Index>(16, D - c0);
        out.middleCols(c0, width) += m.middleCols(c0, width).colwise().sum();
    }
}

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
