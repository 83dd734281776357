// Checks for numeric flags, with messages a person can read:
//   app.add_option("--lr", lr, "...")->check(nn::Positive);
//   --lr: must be greater than 0, not -0.1
#pragma once
#include <CLI/CLI.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace nn {

namespace detail {
inline CLI::Validator number_check(bool allow_zero, const char* description) {
    return CLI::Validator(
        [allow_zero](std::string& text) -> std::string {
            double value = 0;
            if (!CLI::detail::lexical_cast(text, value) || !std::isfinite(value))
                return "'" + text + "' is not a finite number";
            if (std::abs(value) > std::numeric_limits<float>::max())  // stored in a float, it would be inf
                return "'" + text + "' is too large";
            if (value > 0 || (allow_zero && value == 0)) return "";
            return std::string(allow_zero ? "must be 0 or more" : "must be greater than 0") + ", not " + text;
        },
        description);
}
}  // namespace detail

inline const CLI::Validator Positive = detail::number_check(false, "POSITIVE");
inline const CLI::Validator NonNegative = detail::number_check(true, "NONNEGATIVE");

}  // namespace nn
