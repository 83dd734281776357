// Eigen type aliases used everywhere: float32, row-major.
//
// A row of a Matrix is one example (an image, a token position), so a batch of
// activations is (B, C) and a linear layer computes y = x * W^T + b, with W
// stored (out, in) as in the book and in PyTorch.
#pragma once
#include <Eigen/Core>

#include <span>
#include <string>

namespace nn {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;        // a column vector (n, 1)
using RowVector = Eigen::RowVectorXf;  // a row vector (1, n): one bias per output

// OpenMP loops over fewer values than this run on one thread (`#pragma omp
// parallel for if(n >= nn::kParallelGrain)`): waking a second thread costs
// more than the work, and a lot more when the other core is busy.
inline constexpr long kParallelGrain = 1 << 15;

// All the coefficients of a matrix or vector as one span, in storage order.
template <typename Derived>
std::span<float> as_span(Eigen::PlainObjectBase<Derived>& m) {
    return {m.data(), static_cast<std::size_t>(m.size())};
}
template <typename Derived>
std::span<const float> as_span(const Eigen::PlainObjectBase<Derived>& m) {
    return {m.data(), static_cast<std::size_t>(m.size())};
}

// "(rows, cols)": how the lessons print a shape, as PyTorch prints .shape.
template <typename Derived>
std::string shape(const Eigen::EigenBase<Derived>& m) {
    return "(" + std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + ")";
}

}  // namespace nn
