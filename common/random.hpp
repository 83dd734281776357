// Seeded random numbers that are the same on every machine and standard
// library: the engine is std::mt19937_64 (fully specified by the standard),
// and the distributions are written out here because std's are not.
#pragma once
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace nn {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}

    // A uniform float in [0, 1), from the top 24 bits of one draw.
    float uniform() { return static_cast<float>(engine_() >> 40) * 0x1.0p-24f; }

    // A uniform integer in [0, n), without modulo bias.
    std::uint64_t below(std::uint64_t n) {
        const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
        std::uint64_t r;
        do { r = engine_(); } while (r >= limit);
        return r % n;
    }

    // A draw from N(mean, stddev^2), by the Box-Muller transform in double.
    float normal(float mean = 0.0f, float stddev = 1.0f) {
        if (has_spare_) {
            has_spare_ = false;
            return mean + stddev * static_cast<float>(spare_);
        }
        double u1, u2;
        do { u1 = (engine_() >> 11) * 0x1.0p-53; } while (u1 <= 0.0);
        u2 = (engine_() >> 11) * 0x1.0p-53;
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 2.0 * M_PI * u2;
        spare_ = radius * std::sin(angle);
        has_spare_ = true;
        return mean + stddev * static_cast<float>(radius * std::cos(angle));
    }

    // Fills `out` with N(mean, stddev^2) draws.
    void fill_normal(std::span<float> out, float mean = 0.0f, float stddev = 1.0f) {
        for (float& x : out) x = normal(mean, stddev);
    }

    // Shuffles in place (Fisher-Yates).
    template <typename T>
    void shuffle(std::vector<T>& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

    // The whole state as text, and back: what a checkpoint stores to resume.
    std::string state() const {
        std::ostringstream out;
        out << engine_ << ' ' << has_spare_ << ' ' << std::hexfloat << spare_;
        return out.str();
    }
    // `source` names where the text came from (a checkpoint file), for the
    // message if it is not a state this generator can be in.
    void set_state(const std::string& text, std::string_view source) {
        std::istringstream in(text);
        std::mt19937_64 engine;
        bool has_spare = false;
        std::string spare;
        in >> engine >> has_spare >> spare;
        char* end = nullptr;
        const double value = in ? std::strtod(spare.c_str(), &end) : 0.0;
        if (!in || end != spare.c_str() + spare.size() || !std::isfinite(value))
            fail("{}: corrupt random-number state", source);
        // An all-zero engine draws 0 forever (a resumed run would see one batch
        // again and again); no seed leads there.
        std::mt19937_64 probe = engine;
        bool all_zero = true;
        for (std::size_t i = 0; i < 2 * std::mt19937_64::state_size && all_zero; ++i) all_zero = probe() == 0;
        if (all_zero) fail("{}: corrupt random-number state (all zero: it would draw 0 forever)", source);
        engine_ = engine, has_spare_ = has_spare, spare_ = value;
    }

private:
    std::mt19937_64 engine_;
    bool has_spare_ = false;
    double spare_ = 0.0;
};

}  // namespace nn
