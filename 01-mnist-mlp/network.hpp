// A feed-forward network of sigmoid neurons: network.py from chapter 1 of
// Michael Nielsen's "Neural Networks and Deep Learning", before it learns.
//
// The book writes one example as a column vector x of shape (784, 1) and a
// layer as a' = sigmoid(w a + b). We stack a mini-batch of m examples as the
// ROWS of a matrix, shape (m, 784), so the same layer reads
//     a' = sigmoid(a w^T + b)          a: (m, n_in), w: (n_out, n_in), b: (1, n_out)
// with w stored exactly as the book stores it: weights[l](j, k) connects
// neuron k of layer l to neuron j of layer l+1.
#pragma once
#include <fmt/ranges.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/fileio.hpp"
#include "common/mnist.hpp"
#include "common/random.hpp"
#include "common/tensor.hpp"

// sigmoid(z) = 1 / (1 + e^-z), element by element.
inline void sigmoid(const nn::Matrix& z, nn::Matrix& out) {
    out = (1.0f + (-z.array()).exp()).inverse().matrix();
}

class Network {
public:
    // sizes: the number of neurons in each layer, e.g. {784, 30, 10}.
    // Biases and weights are drawn from N(0, 1), as in network.py; the input
    // layer has no biases.
    Network(std::vector<int> sizes, nn::Rng& rng) : sizes(std::move(sizes)) {
        for (std::size_t l = 1; l < this->sizes.size(); ++l) {
            biases.emplace_back(this->sizes[l]);
            rng.fill_normal(nn::as_span(biases.back()));
        }
        for (std::size_t l = 1; l < this->sizes.size(); ++l) {
            weights.emplace_back(this->sizes[l], this->sizes[l - 1]);
            rng.fill_normal(nn::as_span(weights.back()));
        }
    }

    int num_layers() const { return static_cast<int>(sizes.size()); }

    // Returns the network's output for the inputs `a`: (m, sizes[0]) -> (m, sizes.back()).
    // If `activations` is given, it receives every layer's activation, input first.
    nn::Matrix feedforward(const nn::Matrix& a, std::vector<nn::Matrix>* activations = nullptr) const {
        nn::Matrix activation = a, z;
        if (activations) activations->assign(1, activation);
        for (std::size_t l = 0; l < weights.size(); ++l) {
            z.noalias() = activation * weights[l].transpose();  // (m, n_in) x (n_in, n_out)
            z.rowwise() += biases[l];
            sigmoid(z, activation);
            if (activations) activations->push_back(activation);
        }
        return activation;
    }

    // Returns how many of `data`'s images the network classifies correctly:
    // its answer is the output neuron with the highest activation.
    int evaluate(const nn::Dataset& data) const {
        const nn::Matrix output = feedforward(data.images);  // (n, 10)
        int correct = 0;
        for (Eigen::Index i = 0; i < output.rows(); ++i) {
            Eigen::Index guess;
            output.row(i).maxCoeff(&guess);
            correct += guess == data.labels[i];
        }
        return correct;
    }

    std::vector<int> sizes;
    std::vector<nn::RowVector> biases;  // biases[l]: (1, sizes[l+1])
    std::vector<nn::Matrix> weights;    // weights[l]: (sizes[l+1], sizes[l])
};

// A trained network as 02-backprop saves it (see 02-backprop/README.md):
// the nn2gpt container (common/fileio.hpp) with magic "NN2GPMLP", version 1,
// holding the layer count L and the L sizes (u32 each), then for each layer
// l = 0..L-2 its biases and weights (float32, row-major, each with its count).
inline constexpr char kNetworkMagic[] = "NN2GPMLP";
inline constexpr std::uint32_t kNetworkVersion = 1;

inline Network load_network(const std::string& path) {
    nn::BinaryReader in(path, kNetworkMagic, kNetworkVersion);
    const auto layers = in.get<std::uint32_t>();
    if (layers < 2 || layers > 64) nn::fail("{}: implausible layer count {}", path, layers);
    std::vector<int> sizes;
    for (std::uint32_t l = 0; l < layers; ++l) {
        const auto n = in.get<std::uint32_t>();
        if (n == 0 || n > (1u << 20)) nn::fail("{}: implausible layer size {}", path, n);
        sizes.push_back(static_cast<int>(n));
    }
    // Each layer holds a count (u64) and its biases, a count and its weights.
    std::size_t expected = 0;
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l)
        expected += 2 * sizeof(std::uint64_t) +
                    sizeof(float) * std::size_t(sizes[l + 1]) * (1 + std::size_t(sizes[l]));
    if (expected != in.remaining())
        nn::fail("{}: holds {} bytes of values where a network of sizes {} needs {}", path,
                 in.remaining(), fmt::join(sizes, ","), expected);
    nn::Rng unused(0);
    Network net(sizes, unused);
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
        in.get_span(nn::as_span(net.biases[l]));
        in.get_span(nn::as_span(net.weights[l]));
    }
    in.expect_end();
    return net;
}
