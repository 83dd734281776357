// Fuzzes common/idx.cpp's read_idx, the MNIST reader, plain and gzip.
#include <zlib.h>

#include "common/idx.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file({reinterpret_cast<const char*>(data), size}, "data-idx-ubyte");
    return fuzz::refuse_or_read([&] { nn::read_idx(path); });
}

void write_seeds(const std::filesystem::path& dir) {
    // Two 3x4 "images" and their two labels, plain and gzip-compressed.
    std::string images{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    for (int i = 0; i < 24; ++i) images += static_cast<char>(i * 10);
    const std::string labels{0, 0, 8, 1, 0, 0, 0, 2, 7, 3};
    for (const auto& [name, bytes] : {std::pair{"images", images}, std::pair{"labels", labels}}) {
        std::ofstream(dir / name, std::ios::binary) << bytes;
        gzFile gz = gzopen((dir / (std::string(name) + ".gz")).c_str(), "wb");
        gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
        gzclose(gz);
    }
}
