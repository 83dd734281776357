// MNIST, split as in "Neural Networks and Deep Learning" (mnist_loader.py):
// the first 50,000 training images train, the last 10,000 validate, and the
// 10,000 t10k images test. Pixels are scaled to [0, 1].
#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/tensor.hpp"

namespace nn {

struct Dataset {
    Matrix images;                     // (n, 784): one image per row, pixels in [0, 1]
    std::vector<std::uint8_t> labels;  // (n): the digit 0-9 of each image
    Eigen::Index size() const { return images.rows(); }
};

struct Mnist {
    Dataset training, validation, test;
};

// Reads DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
// Throws InputError if a file is missing, corrupt, or does not fit the others.
Mnist load_mnist(const std::filesystem::path& data_dir);

}  // namespace nn
