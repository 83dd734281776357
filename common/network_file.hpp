// The saved-network file of the MNIST lessons: 02-backprop writes it, and
// 01-mnist-mlp reads it, so the format is one contract kept in one place.
//
// The nn2gpt container (fileio.hpp) with magic "NN2GPMLP", version 1. Its
// payload: the layer count L and the L sizes (u32 each), then for each layer
// l = 0..L-2 its biases and weights (float32, row-major, each with its count).
// See 02-backprop/README.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.hpp"

namespace nn {

inline constexpr char kNetworkMagic[] = "NN2GPMLP";
inline constexpr std::uint32_t kNetworkVersion = 1;

// What the file holds: a feed-forward network's sizes and parameters.
struct NetworkFile {
    std::vector<int> sizes;          // neurons per layer, input first: L entries
    std::vector<RowVector> biases;   // biases[l]: (1, sizes[l+1]), l = 0..L-2
    std::vector<Matrix> weights;     // weights[l]: (sizes[l+1], sizes[l])
};

// Writes the network to `path` (atomically: PATH.tmp, then renamed).
void save_network_file(const std::string& path, const std::vector<int>& sizes,
                       const std::vector<RowVector>& biases, const std::vector<Matrix>& weights);

// Reads a network written by save_network_file. A truncated, corrupted or
// foreign file, or one whose sizes do not match the values it holds, is an
// InputError naming the file (checked before anything is allocated).
NetworkFile load_network_file(const std::string& path);

}  // namespace nn
