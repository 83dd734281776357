// The generic layers the language-model lessons share, each a forward that
// keeps what its backward needs and a backward right beside it. A backward
// takes d(loss)/d(output), returns d(loss)/d(input), and ADDS the gradients
// of the layer's parameters to their .grad (so zero them before each step).
//
// Shapes use the lecture's names: N = B*T rows (one per token position),
// C channels, V vocabulary size.
#pragma once
#include <algorithm>
#include <cassert>
#include <cmath>
#include <span>
#include <utility>
#include <vector>

#include "common/random.hpp"
#include "common/tensor.hpp"
#include "common/threads.hpp"

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
