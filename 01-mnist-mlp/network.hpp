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
#include <string>
#include <utility>
#include <vector>

#include "common/mnist.hpp"
#include "common/network_file.hpp"
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
    // Exercise: feedforward
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
    // Exercise: evaluate
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

// A trained network as 02-backprop saves it, read from the file format both
// lessons share (common/network_file.hpp; the layout is in 02-backprop/ENGINEERING.md).
inline Network load_network(const std::string& path) {
    nn::NetworkFile file = nn::load_network_file(path);
    nn::Rng unused(0);
    Network net(file.sizes, unused);
    net.biases = std::move(file.biases);
    net.weights = std::move(file.weights);
    return net;
}
