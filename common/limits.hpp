// Bounds that keep a run within what the machine can do: a size is checked
// before it is allocated, and a product of sizes cannot overflow unseen.
#pragma once
#include <cstdint>
#include <string_view>

namespace nn {

// This machine's physical memory, in bytes.
std::uint64_t physical_memory();

// InputError unless `bytes` (what `what` needs at the least) fits in the
// machine's memory: "the bigram table (V = 40000) would need 25.6 GB, more
// than this machine's 24.0 GB".
void check_fits(double bytes, std::string_view what);

// a * b, or InputError saying `what` is too large if the product overflows.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what);

}  // namespace nn
