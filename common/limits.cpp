#include "common/limits.hpp"

#include <unistd.h>

#include "common/error.hpp"

namespace nn {

std::uint64_t physical_memory() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return std::uint64_t{1} << 40;  // unknown: do not refuse on a guess
    return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
}

void check_fits(double bytes, std::string_view what) {
    const double have = static_cast<double>(physical_memory());
    if (bytes > have)
        fail("{} would need {:.1f} GB ({:.0f} bytes), more than this machine's {:.1f} GB of memory", what,
             bytes / 1e9, bytes, have / 1e9);
}

std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
    std::uint64_t product;
    if (__builtin_mul_overflow(a, b, &product)) fail("{} is too large: {} x {} overflows 64 bits", what, a, b);
    return product;
}

}  // namespace nn
