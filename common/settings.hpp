// The settings table's machinery (tooling beside the concept), for the lessons
// whose every setting is one line of a table (06, 07, 08).
//
// A lesson defines its Config and TrainConfig, names_of(E) for each enum
// setting E (the names of its values), and
//   for_each_setting(config, train, visit)
// which calls visit(flag, field, help, bound) for every setting, in the order
// a checkpoint stores them (a bool field's flag switches it off). From that
// table this file builds the command line's flags, shows a value, and says
// how the settings of two runs differ; common/checkpoint.hpp stores and reads
// them. So a new setting is one edit: a field, one line of the table.
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/validators.hpp"

namespace nn {

// What a setting's flag accepts, on top of validate() (which checks what
// depends on other settings): a float above 0 or at least 0, a whole number in
// [lo, hi], or a seed. Every integer has an upper bound, so no flag can ask for
// a run without end; a checkpoint's settings are held to the same bounds.
struct Bound {
    enum Kind { positive, nonnegative, count, seed, none } kind;
    long long lo = 0, hi = 0;
    constexpr Bound(Kind k, long long lo_ = 0, long long hi_ = 0) : kind(k), lo(lo_), hi(hi_) {}
    static constexpr Bound in(long long lo, long long hi) { return {count, lo, hi}; }

    // Whether the flag would accept `value` (as read from a checkpoint).
    template <typename T>
    bool accepts(T value) const {
        if constexpr (std::is_floating_point_v<T>) {
            if (!std::isfinite(value)) return false;
            return kind == positive ? value > 0 : kind == nonnegative ? value >= 0 : true;
        } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            if (kind == count) return std::cmp_greater_equal(value, lo) && std::cmp_less_equal(value, hi);
            return kind == seed || std::cmp_greater_equal(value, 0);
        }
        return true;
    }
};

// A setting's value as a person reads it: 0.001, gelu, on/off.
template <typename T>
std::string setting_text(const T& value) {
    if constexpr (std::is_same_v<T, bool>) return value ? "on" : "off";
    else if constexpr (std::is_enum_v<T>) return names_of(value)[static_cast<std::size_t>(value)];
    else return fmt::format("{}", value);
}

// One flag per setting of the lesson's table.
template <typename ConfigT, typename TrainT>
void add_settings(CLI::App& app, ConfigT& config, TrainT& train) {
    for_each_setting(config, train, [&](const char* flag, auto& value, const char* help, Bound bound) {
        using T = std::remove_cvref_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool>) {
            app.add_flag_callback(flag, [&value] { value = false; }, help);
        } else if constexpr (std::is_enum_v<T>) {
            const std::vector<std::string> names(names_of(value).begin(), names_of(value).end());
            app.add_option_function<std::string>(
                   flag, [&value, names](const std::string& name) {
                       value = static_cast<T>(std::find(names.begin(), names.end(), name) - names.begin());
                   }, help)
                ->check(CLI::IsMember(names))->default_str(setting_text(value));
        } else {
            CLI::Option* o = app.add_option(flag, value, help)->capture_default_str();
            if (bound.kind == Bound::positive) o->check(nn::Positive);
            if (bound.kind == Bound::nonnegative) o->check(nn::NonNegative);
            if (bound.kind == Bound::count) o->check(nn::Count(bound.lo, bound.hi));
            if (bound.kind == Bound::seed) o->check(nn::Seed);
        }
    });
}

// How the settings of a saved run differ from this run's, as
// "--flag saved (this run: now), ..."; empty when they are the same.
template <typename ConfigT, typename TrainT>
std::string settings_diff(const ConfigT& saved_config, const TrainT& saved_train, const ConfigT& config,
                          const TrainT& train) {
    std::vector<std::string> saved, now;
    auto collect = [](std::vector<std::string>& out) {
        return [&out](const char*, const auto& value, const char*, Bound) { out.push_back(setting_text(value)); };
    };
    for_each_setting(saved_config, saved_train, collect(saved));
    for_each_setting(config, train, collect(now));
    std::vector<std::string> flags;
    for_each_setting(config, train, [&](const char* flag, const auto&, const char*, Bound) { flags.push_back(flag); });
    std::string diff;
    for (std::size_t i = 0; i < flags.size(); ++i)
        if (saved[i] != now[i]) diff += fmt::format("{}{} {} (this run: {})", diff.empty() ? "" : ", ", flags[i], saved[i], now[i]);
    return diff;
}

// The resume check: a resumed run must use the settings (and the vocabulary)
// its checkpoint was trained with; InputError naming each one that differs.
template <typename CheckpointT, typename ConfigT, typename TrainT>  // k: a checkpoint's config, train, vocabulary
void check_same(const std::filesystem::path& file, const CheckpointT& k, const ConfigT& c, const TrainT& t,
                const std::string& vocabulary) {
    std::string diff = nn::settings_diff(k.config, k.train, c, t);
    if (k.vocabulary != vocabulary) diff += std::string(diff.empty() ? "" : ", ") + "a different vocabulary (another text?)";
    if (!diff.empty()) fail("{} was trained with other settings; resume with the same ones: {}", file.string(), diff);
}

}  // namespace nn
