// Seeded random numbers that are the same on every machine and standard
// library: the engine is the 64-bit Mersenne Twister (std::mt19937_64, fully
// specified by the standard), written out below, and the distributions are
// written out here because std's are not.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <numeric>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace nn {

// std::mt19937_64, draw for draw (tests/test_random.cpp checks it against the
// standard library's), with one difference: every 312 draws it tempers the
// whole new block of state at once, in loops the compiler turns into vector
// instructions, where std tempers one draw per call. Dropout draws one number
// per value (about 230 million a training step at the lecture's size), and
// take() hands out a block's draws as they are, several times faster.
// Its text form is libstdc++'s for std::mt19937_64 (the 312 state words, then
// the position in them), so checkpoints written with either load in either.
class MersenneTwister64 {
public:
    static constexpr std::size_t state_size = 312;

    explicit MersenneTwister64(std::uint64_t seed = 5489) {
        x_[0] = seed;
        for (std::size_t i = 1; i < state_size; ++i)
            x_[i] = 6364136223846793005ULL * (x_[i - 1] ^ (x_[i - 1] >> 62)) + i;
        pos_ = state_size;  // the first draw twists the seeded state
    }

    std::uint64_t operator()() {
        if (pos_ == state_size) next_block();
        return out_[pos_++];
    }
    // The next draws, at most `max` of them, and at least one if max > 0 (the
    // rest of the current block): the same numbers as calls of operator().
    std::span<const std::uint64_t> take(std::size_t max) {
        if (pos_ == state_size) next_block();
        const std::size_t n = std::min(max, state_size - pos_);
        const std::span<const std::uint64_t> draws(out_.data() + pos_, n);
        pos_ += n;
        return draws;
    }

    bool operator==(const MersenneTwister64& o) const { return x_ == o.x_ && pos_ == o.pos_; }

    friend std::ostream& operator<<(std::ostream& os, const MersenneTwister64& e) {
        const auto flags = os.flags();
        os.flags(std::ios_base::dec | std::ios_base::left);
        for (const std::uint64_t w : e.x_) os << w << ' ';
        os << e.pos_;
        os.flags(flags);
        return os;
    }
    // A position past the block is not a state the engine can be in: the
    // stream fails, as for a word that is not a number.
    friend std::istream& operator>>(std::istream& is, MersenneTwister64& e) {
        const auto flags = is.flags();
        is.flags(std::ios_base::dec | std::ios_base::skipws);
        MersenneTwister64 read;
        for (std::uint64_t& w : read.x_) is >> w;
        is >> read.pos_;
        is.flags(flags);
        if (is && read.pos_ > state_size) is.setstate(std::ios_base::failbit);
        if (!is) return is;
        read.temper();
        e = read;
        return is;
    }

private:
    // The twist: the next 312 words of state from the last 312 (word i from
    // words i, i + 1 and i + 156, the later ones already new), then each
    // tempered into a draw.
    void next_block() {
        constexpr std::size_t m = 156;
        auto twist = [](std::uint64_t a, std::uint64_t b, std::uint64_t c) {
            const std::uint64_t y = (a & 0xFFFFFFFF80000000ULL) | (b & 0x7FFFFFFFULL);
            return c ^ (y >> 1) ^ ((0 - (y & 1)) & 0xB5026F5AA96619E9ULL);
        };
        for (std::size_t i = 0; i < state_size - m; ++i) x_[i] = twist(x_[i], x_[i + 1], x_[i + m]);
        for (std::size_t i = state_size - m; i < state_size - 1; ++i)
            x_[i] = twist(x_[i], x_[i + 1], x_[i + m - state_size]);
        x_[state_size - 1] = twist(x_[state_size - 1], x_[0], x_[m - 1]);
        temper();
        pos_ = 0;
    }
    void temper() {
        for (std::size_t i = 0; i < state_size; ++i) {
            std::uint64_t z = x_[i];
            z ^= (z >> 29) & 0x5555555555555555ULL;
            z ^= (z << 17) & 0x71D67FFFEDA60000ULL;
            z ^= (z << 37) & 0xFFF7EEE000000000ULL;
            out_[i] = z ^ (z >> 43);
        }
    }

    std::array<std::uint64_t, state_size> x_;    // the state
    std::array<std::uint64_t, state_size> out_{};  // x_ tempered: the draws
    std::size_t pos_;                             // the next draw is out_[pos_]
};

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) : engine_(seed) {}

    // A uniform float in [0, 1), from the top 24 bits of one draw.
    float uniform() { return to_uniform(engine_()); }
    // Fills `u` with uniform floats: the same as u.size() calls of uniform(),
    // a block of draws at a time (several times faster).
    void fill_uniform(std::span<float> u) {
        for (std::size_t i = 0; i < u.size();) {
            const std::span<const std::uint64_t> draws = engine_.take(u.size() - i);
            for (std::size_t k = 0; k < draws.size(); ++k) u[i + k] = to_uniform(draws[k]);
            i += draws.size();
        }
    }

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
        MersenneTwister64 engine;
        bool has_spare = false;
        std::string spare;
        in >> engine >> has_spare >> spare;
        char* end = nullptr;
        const double value = in ? std::strtod(spare.c_str(), &end) : 0.0;
        if (!in || end != spare.c_str() + spare.size() || !std::isfinite(value))
            fail("{}: corrupt random-number state", source);
        // An all-zero engine draws 0 forever (a resumed run would see one batch
        // again and again); no seed leads there.
        MersenneTwister64 probe = engine;
        bool all_zero = true;
        for (std::size_t i = 0; i < 2 * MersenneTwister64::state_size && all_zero; ++i) all_zero = probe() == 0;
        if (all_zero) fail("{}: corrupt random-number state (all zero: it would draw 0 forever)", source);
        engine_ = engine, has_spare_ = has_spare, spare_ = value;
    }

private:
    // The top 24 bits of a draw, as a float in [0, 1): exact (a 24-bit
    // integer, scaled by a power of two), through int32 so that the
    // conversion is a vector instruction on any x86-64.
    static float to_uniform(std::uint64_t draw) {
        return static_cast<float>(static_cast<std::int32_t>(draw >> 40)) * 0x1.0p-24f;
    }

    MersenneTwister64 engine_;
    bool has_spare_ = false;
    double spare_ = 0.0;
};

}  // namespace nn
