#include "common/layers.hpp"

#include <cmath>
#include <vector>
#include <limits>
#include <stdexcept>

#include "common/error.hpp"

namespace nn {

void softmax_rows(Eigen::Ref<Matrix> m) {
    // exp(-inf) is 0, but Eigen's vectorised exp (rows of 8, 16, ... floats) returns
    // 2.9e-39 for it: the masked entries are remembered and set to 0 after the exp.
    constexpr float minus_inf = -std::numeric_limits<float>::infinity();
    std::vector<Eigen::Index> masked;
    for (Eigen::Index r = 0; r < m.rows(); ++r) {
        auto row = m.row(r);
        masked.clear();
        for (Eigen::Index j = 0; j < row.size(); ++j)
            if (row(j) == minus_inf) masked.push_back(j);
        row.array() = (row.array() - row.maxCoeff()).exp();
        for (const Eigen::Index j : masked) row(j) = 0.0f;
        row /= row.sum();
    }
}

Linear::Linear(int in, int out, bool bias, Rng& rng) : has_bias(bias) {
    const float bound = 1.0f / std::sqrt(static_cast<float>(in));
    weight.resize(out, in);
    for (float& w : weight.value.reshaped()) w = bound * (2 * rng.uniform() - 1);
    if (has_bias) {
        this->bias.resize(1, out);
        for (float& b : this->bias.value.reshaped()) b = bound * (2 * rng.uniform() - 1);
    }
}

// (N, in) -> (N, out)
const Matrix& Linear::forward(const Matrix& input) {
    x = &input;
    y.resize(input.rows(), weight.value.rows());
    product_by_rows(input, weight.value.transpose(), y, has_bias ? &bias.value : nullptr);  // y = x W^T + b
    return y;
}

void linear_backward(const Matrix& dy, const Matrix& x, const Matrix& w, Matrix& dw, Matrix* db, Matrix& dx) {
    dx.resize(dy.rows(), w.cols());
#pragma omp parallel if (parallel_product(dy.rows(), dy.cols(), w.cols()))
    {
        product_rows<true>(dy.transpose(), x, dw);      // dW += dy^T x   (out, in)
        if (db != nullptr) column_sums_share(dy, *db);  // db += sum_n dy (1, out)
        product_rows<false>(dy, w, dx);                 // dx = dy W      (N, in)
    }
}

// (N, out) -> (N, in)
const Matrix& Linear::backward(const Matrix& dy) {
    if (x == nullptr || x->rows() != dy.rows()) throw std::logic_error("Linear::backward without a matching forward");
    linear_backward(dy, *x, weight.value, weight.grad, has_bias ? &bias.grad : nullptr, dx);
    return dx;
}

Embedding::Embedding(int num_embeddings, int embedding_dim, Rng& rng) {
    weight.resize(num_embeddings, embedding_dim);
    rng.fill_normal(std::span<float>(weight.value.data(), weight.value.size()));
}

// (N) -> (N, C)
const Matrix& Embedding::forward(std::span<const int> tokens) {
    idx.assign(tokens.begin(), tokens.end());
    y.resize(static_cast<Eigen::Index>(idx.size()), weight.value.cols());
    for (std::size_t n = 0; n < idx.size(); ++n) {
        if (idx[n] < 0 || idx[n] >= weight.value.rows())
            fail("token {} is outside an embedding table of {} rows", idx[n], weight.value.rows());
        y.row(static_cast<Eigen::Index>(n)) = weight.value.row(idx[n]);
    }
    return y;
}

// (N, C) -> nothing: row idx[n] of the table receives dy[n]; a token that
// occurs several times adds up the gradients of all its rows
// Exercise: embedding_backward
void Embedding::backward(const Matrix& dy) {
    for (std::size_t n = 0; n < idx.size(); ++n)
        weight.grad.row(idx[n]) += dy.row(static_cast<Eigen::Index>(n));
}

// (N, V), (N) -> () the mean of -log softmax(logits)[n, targets[n]]; keeps
// probs (N, V) and the targets for backward
// Exercise: cross_entropy_forward
double CrossEntropy::forward(const Matrix& logits, std::span<const int> target_tokens) {
    targets.assign(target_tokens.begin(), target_tokens.end());
    probs = logits;
    softmax_rows(probs);
    double loss = 0;
    for (Eigen::Index n = 0; n < probs.rows(); ++n) {
        // -log p computed from the logits (log-sum-exp) rather than log(p), which underflows.
        const auto row = logits.row(n);
        loss += log_sum_exp(row) - row(targets[static_cast<std::size_t>(n)]);
    }
    return loss / static_cast<double>(probs.rows());
}

// () -> (N, V): (probs - one_hot(targets)) / N, from what forward kept
// Exercise: cross_entropy_backward
const Matrix& CrossEntropy::backward() {
    dlogits = probs;
    for (Eigen::Index n = 0; n < dlogits.rows(); ++n) dlogits(n, targets[static_cast<std::size_t>(n)]) -= 1.0f;
    dlogits /= static_cast<float>(dlogits.rows());
    return dlogits;
}

}  // namespace nn
