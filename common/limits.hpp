// Bounds that keep a run within what the machine can do: a size is checked
// before it is allocated, and a product of sizes cannot overflow unseen.
#pragma once
#include <cstdint>
#include <string_view>

namespace nn {

// This machine's physical memory, in bytes.
std::uint64_t physical_memory();

// InputError unless `bytes` (what `what` needs at the least) fits in the
// machine's memory: "the bigram table for V = 50000 characters would need
// 40.0 GB (40000000000 bytes), more than this machine's 25.3 GB of memory".
void check_fits(double bytes, std::string_view what);

// a * b, or InputError saying `what` is too large if the product overflows.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what);

}  // namespace nn
