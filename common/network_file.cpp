// The saved-network file of the MNIST lessons: see network_file.hpp.
#include "common/network_file.hpp"

#include <fmt/ranges.h>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/limits.hpp"

namespace nn {

void save_network_file(const std::string& path, const std::vector<int>& sizes,
                       const std::vector<RowVector>& biases, const std::vector<Matrix>& weights) {
    BinaryWriter out(path, kNetworkMagic, kNetworkVersion);
    out.put<std::uint32_t>(static_cast<std::uint32_t>(sizes.size()));
    for (int n : sizes) out.put<std::uint32_t>(static_cast<std::uint32_t>(n));
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
        out.put_span(as_span(biases[l]));
        out.put_span(as_span(weights[l]));
    }
    out.commit();
}

NetworkFile load_network_file(const std::string& path) {
    BinaryReader in(path, kNetworkMagic, kNetworkVersion);
    const auto layers = in.get<std::uint32_t>();
    if (layers < 2 || layers > 64) fail("{}: implausible layer count {}", path, layers);
    NetworkFile net;
    for (std::uint32_t l = 0; l < layers; ++l) {
        const auto n = in.get<std::uint32_t>();
        if (n == 0 || n > (1u << 20)) fail("{}: implausible layer size {}", path, n);
        net.sizes.push_back(static_cast<int>(n));
    }
    // Each layer holds a count (u64) and its biases, a count and its weights.
    std::size_t expected = 0;
    for (std::size_t l = 0; l + 1 < net.sizes.size(); ++l) {
        const std::uint64_t values = checked_mul(std::uint64_t(net.sizes[l + 1]), 1 + std::uint64_t(net.sizes[l]), path);
        expected += 2 * sizeof(std::uint64_t) + checked_mul(sizeof(float), values, path);
    }
    if (expected != in.remaining())
        fail("{}: holds {} bytes of values where a network of sizes {} needs {}", path,
             in.remaining(), fmt::join(net.sizes, ","), expected);
    for (std::size_t l = 0; l + 1 < net.sizes.size(); ++l) {
        net.biases.emplace_back(net.sizes[l + 1]);
        net.weights.emplace_back(net.sizes[l + 1], net.sizes[l]);
        in.get_span(as_span(net.biases.back()));
        in.get_span(as_span(net.weights.back()));
    }
    in.expect_end();
    return net;
}

}  // namespace nn
