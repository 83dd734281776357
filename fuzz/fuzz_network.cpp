// Fuzzes common/network_file.cpp's load_network_file, the saved network of
// 01-mnist-mlp and 02-backprop. The container's CRC is fixed up first, so the
// mutations reach the reader's own checks.
#include "common/network_file.hpp"
#include "common/random.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file(nn::reseal_container({reinterpret_cast<const char*>(data), size}), "net.bin");
    return fuzz::refuse_or_read([&] { nn::load_network_file(path.string()); });
}

void write_seeds(const std::filesystem::path& dir) {
    nn::Rng rng(1);
    for (const std::vector<int>& sizes : {std::vector<int>{4, 3, 2}, std::vector<int>{2, 5, 3, 1}}) {
        std::vector<nn::RowVector> biases;
        std::vector<nn::Matrix> weights;
        for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
            biases.emplace_back(sizes[l + 1]);
            weights.emplace_back(sizes[l + 1], sizes[l]);
            rng.fill_normal(nn::as_span(biases.back()), 0.0f, 1.0f);
            rng.fill_normal(nn::as_span(weights.back()), 0.0f, 1.0f);
        }
        nn::save_network_file((dir / ("net-" + std::to_string(sizes.size()))).string(), sizes, biases, weights);
    }
}
