// The project's random numbers: its Mersenne Twister against the standard
// library's std::mt19937_64 (the same stream, the same text form), and the
// block-at-a-time uniform draws against one-at-a-time ones.
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/random.hpp"

namespace {
std::string text_of(const auto& engine) {
    std::ostringstream out;
    out << engine;
    return out.str();
}
}  // namespace

TEST_CASE("MersenneTwister64 draws std::mt19937_64's stream, one at a time and a block at a time", "[random]") {
    for (const std::uint64_t seed : {0ull, 1ull, 5489ull, 42ull, 0xffffffffffffffffull}) {
        std::mt19937_64 reference(seed);
        nn::MersenneTwister64 ours(seed), blocks(seed);
        for (int i = 0; i < 5000; ++i) {
            const std::uint64_t want = reference();
            INFO("seed " << seed << ", draw " << i);
            REQUIRE(ours() == want);
        }
        // take() in uneven pieces, across the 312-draw blocks
        std::mt19937_64 again(seed);
        std::size_t drawn = 0;
        for (const std::size_t piece : {1u, 7u, 311u, 312u, 313u, 1000u, 0u, 64u}) {
            for (std::size_t left = piece; left > 0;) {
                const auto draws = blocks.take(left);
                REQUIRE(!draws.empty());
                REQUIRE(draws.size() <= left);
                for (const std::uint64_t d : draws) {
                    INFO("seed " << seed << ", draw " << drawn << " by take()");
                    REQUIRE(d == again());
                    ++drawn;
                }
                left -= draws.size();
            }
        }
        REQUIRE(blocks() == again());
    }
}

#ifdef __GLIBCXX__  // the text form is libstdc++'s: checkpoints written with std::mt19937_64 still load
TEST_CASE("MersenneTwister64's text form is std::mt19937_64's, and either reads the other's", "[random]") {
    std::mt19937_64 reference(7);
    nn::MersenneTwister64 ours(7);
    for (const int draws : {0, 1, 310, 1, 1, 500}) {  // at the start, inside a block, at its last draw, at its end
        for (int i = 0; i < draws; ++i) reference(), ours();
        INFO("after " << draws << " more draws");
        REQUIRE(text_of(ours) == text_of(reference));

        std::istringstream to_ours(text_of(reference));
        nn::MersenneTwister64 resumed;
        REQUIRE(bool(to_ours >> resumed));
        REQUIRE(resumed == ours);
        std::istringstream to_std(text_of(ours));
        std::mt19937_64 resumed_std;
        REQUIRE(bool(to_std >> resumed_std));
        for (int i = 0; i < 700; ++i) REQUIRE(resumed() == resumed_std());
    }
}
#endif

TEST_CASE("MersenneTwister64 refuses a text that is not a state, and keeps its own", "[random]") {
    nn::MersenneTwister64 engine(3);
    const nn::MersenneTwister64 before = engine;
    std::string past_end = text_of(engine);
    past_end = past_end.substr(0, past_end.rfind(' ')) + " 313";  // a position past the 312-word block
    for (const std::string& text : {past_end, std::string("1 2 3"), std::string("x")}) {
        std::istringstream in(text);
        INFO("text: " << text.substr(0, 40));
        REQUIRE_FALSE(bool(in >> engine));
        REQUIRE(engine == before);
    }
}

TEST_CASE("Rng::fill_uniform gives what as many calls of uniform() give", "[random]") {
    nn::Rng one_at_a_time(11), blocks(11);
    for (const std::size_t n : {0u, 1u, 63u, 311u, 312u, 313u, 2000u}) {
        std::vector<float> u(n);
        blocks.fill_uniform(u);
        for (std::size_t i = 0; i < n; ++i) {
            const float want = one_at_a_time.uniform();
            INFO("a fill of " << n << ", value " << i);
            REQUIRE(u[i] == want);
            REQUIRE((u[i] >= 0.0f && u[i] < 1.0f));
        }
    }
    REQUIRE(blocks.state() == one_at_a_time.state());
}
