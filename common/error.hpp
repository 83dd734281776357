// The one exception type for bad input: a missing or corrupt file, an
// impossible setting, a character outside the vocabulary. Lessons let it reach
// nn::guarded (cli.hpp), which prints its message on one line and exits with
// status 2. Anything else that escapes is a bug in the code, not in the input.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace nn {

struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws InputError with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw InputError(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace nn
