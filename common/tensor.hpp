// Eigen type aliases used everywhere: float32, row-major.
//
// A row of a Matrix is one example (an image, a token position), so a batch of
// activations is (B, C) and a linear layer computes y = x * W^T + b, with W
// stored (out, in) as in the book and in PyTorch.
#pragma once
#include <Eigen/Core>

namespace nn {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;        // a column vector (n, 1)
using RowVector = Eigen::RowVectorXf;  // a row vector (1, n): one bias per output

// A view of rows [first, first + count) of a Matrix, without copying.
inline auto rows(Matrix& m, Eigen::Index first, Eigen::Index count) {
    return m.middleRows(first, count);
}

}  // namespace nn
