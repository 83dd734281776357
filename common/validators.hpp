// Checks for numeric flags, with messages a person can read:
//   app.add_option("--lr", lr, "...")->check(nn::Positive);
//   --lr: must be greater than 0, not -0.1
//   app.add_option("--eval-iters", n, "...")->check(nn::Count(1, 10000));
//   --eval-iters: must be a whole number in [1, 10000], not 2147483647
// Every integer flag has an upper bound, shown in --help, so no flag can ask
// for a run that never ends or a size that overflows.
#pragma once
#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

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

// Parses all of `text` as a whole number; false if it is not one or overflows.
template <typename Int>
bool parse_whole(const std::string& text, Int& value) {
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return ec == std::errc() && ptr == end;
}

// The items of "784,30,10", empty ones included.
inline std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    for (std::size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1)
        items.push_back(text.substr(start, comma - start));
    items.push_back(text.substr(start));
    return items;
}

// A value as an error message shows it.
inline std::string shown(const std::string& text) { return text.empty() ? "an empty value" : text; }
}  // namespace detail

inline const CLI::Validator Positive = detail::number_check(false, "POSITIVE");
inline const CLI::Validator NonNegative = detail::number_check(true, "NONNEGATIVE");

// A whole number in [lo, hi].
inline CLI::Validator Count(long long lo, long long hi) {
    const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return CLI::Validator(
        [lo, hi, range](std::string& text) -> std::string {
            long long value = 0;
            if (!detail::parse_whole(text, value) || value < lo || value > hi)
                return "must be a whole number in " + range + ", not " + detail::shown(text);
            return "";
        },
        "in " + range);
}

// A comma-separated list of whole numbers in [lo, hi], such as 784,30,10:
// nothing empty between the commas. split_counts() then turns it into numbers.
inline CLI::Validator CountList(long long lo, long long hi) {
    return CLI::Validator(
        [count = Count(lo, hi)](std::string& text) -> std::string {
            for (std::string item : detail::split_commas(text))
                if (const std::string error = count(item); !error.empty()) return "'" + text + "': each number " + error;
            return "";
        },
        "comma-separated, each in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}
inline std::vector<int> split_counts(const std::string& text) {
    std::vector<int> out;
    for (const std::string& item : detail::split_commas(text)) detail::parse_whole(item, out.emplace_back());
    return out;
}

// A seed: a whole number in [0, 2^64 - 1].
inline const CLI::Validator Seed = CLI::Validator(
    [](std::string& text) -> std::string {
        std::uint64_t value = 0;
        if (!detail::parse_whole(text, value)) return "must be a whole number in [0, 2^64 - 1], not " + detail::shown(text);
        return "";
    },
    "in [0, 2^64 - 1]");

}  // namespace nn
