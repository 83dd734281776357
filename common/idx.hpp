// IDX files, the format MNIST ships in (http://yann.lecun.com/exdb/mnist/):
//   bytes 0-1  zero
//   byte  2    element type (0x08: unsigned byte, the only one MNIST uses)
//   byte  3    number of dimensions, d
//   then d big-endian u32 dimension sizes, then the elements, row-major.
// Files may be plain or gzip-compressed; zlib reads both.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace nn {

struct IdxArray {
    std::vector<std::uint32_t> dims;  // e.g. {60000, 28, 28}
    std::vector<std::uint8_t> data;   // product(dims) bytes
};

// Reads an unsigned-byte IDX file and checks the magic number, the dimensions
// and that the data is exactly as long as they say. Throws InputError naming
// the file and what is wrong.
IdxArray read_idx(const std::filesystem::path& path);

// The dimension sizes in an IDX header after its 4 magic bytes: `sizes` holds
// d big-endian u32 numbers, 4d bytes (most significant byte first), and the
// result their d values, e.g. the bytes 00 00 ea 60 00 00 00 1c 00 00 00 1c
// give {60000, 28, 28}.
std::vector<std::uint32_t> idx_dims(std::span<const unsigned char> sizes);

}  // namespace nn
