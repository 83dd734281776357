// common/settings.hpp and common/checkpoint.hpp on a small table of their own:
// the flags the table builds, how two runs' settings differ, and the
// settings, history, parameters and AdamW parts of a checkpoint, written and
// read back, with what a reader refuses.
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/settings.hpp"
#include "helpers.hpp"

using Catch::Matchers::Contains;

enum class Shape { round, square };
inline constexpr std::array<const char*, 2> kShapeNames{"round", "square"};
std::span<const char* const> names_of(Shape) { return kShapeNames; }

struct ToyConfig {
    int width = 3;
    float rate = 0.5f;
    bool on = true;
    Shape shape = Shape::round;
    void validate() const {
        if (width == 7) nn::fail("--width 7 is not allowed here");
    }
};
struct ToyTrain {
    std::uint64_t seed = 1;
    void validate() const {}
};

template <typename C, typename T, typename Visit>
void for_each_setting(C& c, T& t, Visit&& visit) {
    visit("--width", c.width, "Width", nn::Bound::in(1, 10));
    visit("--rate", c.rate, "Rate", nn::Bound::positive);
    visit("--no-on", c.on, "Off", nn::Bound::none);
    visit("--shape", c.shape, "Shape", nn::Bound::none);
    visit("--seed", t.seed, "Seed", nn::Bound::seed);
}

namespace {

// Parses `args` with the flags the table builds; throws what CLI11 throws.
void parse(ToyConfig& c, ToyTrain& t, std::vector<std::string> args) {
    CLI::App app{"toy"};
    nn::add_settings(app, c, t);
    std::vector<const char*> argv{"toy"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
}

// A file holding the settings part with `width` stored as given.
void write_settings(const std::filesystem::path& path, std::int32_t width, std::uint8_t on, std::int32_t shape) {
    nn::BinaryWriter w(path, "NN2GTOYS", 1);
    w.put<std::int32_t>(width);
    w.put<float>(0.5f);
    w.put<std::uint8_t>(on);
    w.put<std::int32_t>(shape);
    w.put<std::uint64_t>(1);
    w.commit();
}

}  // namespace

TEST_CASE("add_settings: one flag per setting of the table, with its bound", "[settings]") {
    ToyConfig c;
    ToyTrain t;
    parse(c, t, {"--width", "5", "--rate", "0.25", "--no-on", "--shape", "square", "--seed", "9"});
    CHECK(c.width == 5);
    CHECK(c.rate == 0.25f);
    CHECK_FALSE(c.on);
    CHECK(c.shape == Shape::square);
    CHECK(t.seed == 9);
    ToyConfig d;
    CHECK_THROWS_AS(parse(d, t, {"--width", "11"}), CLI::ValidationError);
    CHECK_THROWS_AS(parse(d, t, {"--rate", "0"}), CLI::ValidationError);
    CHECK_THROWS_AS(parse(d, t, {"--shape", "triangle"}), CLI::ValidationError);
    CHECK(d.width == 3);
}

TEST_CASE("setting_text and settings_diff: how two runs' settings differ, flag by flag", "[settings]") {
    CHECK(nn::setting_text(true) == "on");
    CHECK(nn::setting_text(Shape::square) == "square");
    CHECK(nn::setting_text(0.25f) == "0.25");
    const ToyConfig saved;
    const ToyTrain train;
    CHECK(nn::settings_diff(saved, train, saved, train).empty());
    ToyConfig now;
    now.width = 5;
    now.shape = Shape::square;
    CHECK(nn::settings_diff(saved, train, now, train) == "--width 3 (this run: 5), --shape round (this run: square)");
}

TEST_CASE("put_settings and get_settings round-trip, and a reader refuses what the command line refuses",
          "[settings][checkpoint]") {
    test::ScratchDir dir;
    const ToyConfig c{.width = 4, .rate = 0.125f, .on = false, .shape = Shape::square};
    const ToyTrain t{.seed = 77};
    {
        nn::BinaryWriter w(dir / "ok.bin", "NN2GTOYS", 1);
        nn::put_settings(w, c, t);
        w.commit();
    }
    nn::BinaryReader r(dir / "ok.bin", "NN2GTOYS", 1);
    ToyConfig c2;
    ToyTrain t2;
    nn::get_settings(r, c2, t2, "ok.bin");
    r.expect_end();
    CHECK(c2.width == 4);
    CHECK(c2.rate == 0.125f);
    CHECK_FALSE(c2.on);
    CHECK(c2.shape == Shape::square);
    CHECK(t2.seed == 77);

    auto refusal = [&](std::int32_t width, std::uint8_t on, std::int32_t shape) {
        write_settings(dir / "bad.bin", width, on, shape);
        nn::BinaryReader bad(dir / "bad.bin", "NN2GTOYS", 1);
        ToyConfig c3;
        ToyTrain t3;
        try {
            nn::get_settings(bad, c3, t3, "bad.bin");
        } catch (const nn::InputError& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    CHECK(refusal(11, 1, 0) == "bad.bin: holds --width 11, which the command line refuses");
    CHECK(refusal(7, 1, 0) == "bad.bin: holds settings this program refuses: --width 7 is not allowed here");
    CHECK(refusal(3, 2, 0) == "bad.bin: corrupt setting --no-on");
    CHECK(refusal(3, 1, 2) == "bad.bin: corrupt setting --shape");
    CHECK(refusal(3, 1, 1) == "(accepted)");
}

TEST_CASE("put/get of the history, the parameters and AdamW's moments round-trip", "[checkpoint]") {
    test::ScratchDir dir;
    nn::Parameter a, b;
    a.resize(2, 3);
    b.resize(1, 4);
    a.value << 1, 2, 3, 4, 5, 6;
    b.value << -1, -2, -3, -4;
    const std::vector<nn::Parameter*> params{&a, &b};
    nn::AdamW optimizer(params, {});
    for (nn::Parameter* p : params) p->grad.setConstant(0.5f);
    optimizer.step();
    const std::vector<nn::EvalRecord> history{{0, 4.5f, 4.25f, 0.5}, {10, 2.5f, 2.75f, 3.0}};
    {
        nn::BinaryWriter w(dir / "ck.bin", "NN2GTOYC", 1);
        nn::put_history(w, history);
        nn::put_parameters(w, params);
        nn::put_moments(w, optimizer);
        w.commit();
    }
    nn::Parameter a2, b2;
    a2.resize(2, 3);
    b2.resize(1, 4);
    const std::vector<nn::Parameter*> params2{&a2, &b2};
    nn::AdamW optimizer2(params2, {});
    nn::BinaryReader r(dir / "ck.bin", "NN2GTOYC", 1);
    const std::vector<nn::EvalRecord> history2 = nn::get_history(r, "ck.bin");
    REQUIRE(history2.size() == 2);
    CHECK(history2[1].step == 10);
    CHECK(history2[1].val == 2.75f);
    CHECK(history2[1].seconds == 3.0);
    nn::get_parameters(r, params2, "ck.bin");
    CHECK(a2.value == a.value);
    CHECK(b2.value == b.value);
    nn::get_moments(r, &optimizer2, params2.size(), 1, "ck.bin");
    r.expect_end();
    CHECK(optimizer2.steps_taken() == 1);
    CHECK(optimizer2.first_moments()[1] == optimizer.first_moments()[1]);
    CHECK(optimizer2.second_moments()[0] == optimizer.second_moments()[0]);

    // A model of other shapes, or an optimizer step after the checkpoint's step, is refused.
    nn::BinaryReader again(dir / "ck.bin", "NN2GTOYC", 1);
    nn::get_history(again, "ck.bin");
    nn::Parameter wrong;
    wrong.resize(3, 2);
    REQUIRE_THROWS_WITH(nn::get_parameters(again, {&wrong, &b2}, "ck.bin"),
                        "ck.bin: parameter 0 is (2, 3), the model's (3, 2)");
    nn::BinaryReader third(dir / "ck.bin", "NN2GTOYC", 1);
    nn::get_history(third, "ck.bin");
    nn::get_parameters(third, params2, "ck.bin");
    REQUIRE_THROWS_WITH(nn::get_moments(third, nullptr, params2.size(), 0, "ck.bin"),
                        "ck.bin: corrupt optimizer step 1");
}
