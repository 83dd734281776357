// 04-self-attention: the Head's backward for every mask and score, the whole
// model's backward for every experiment, what the masks let a position see,
// the scores' formulas, runs of the lesson (the experiments, --show-trick), and
// the memory a run needs, counted before anything is allocated.
#include <catch2/catch.hpp>

#include <fmt/core.h>

#include <algorithm>

#include "04-self-attention/model.hpp"
#include "04-self-attention/size.hpp"
#include "common/limits.hpp"
#include "lm_helpers.hpp"

namespace {
const std::vector<Mask> kMasks{Mask::causal, Mask::anticausal, Mask::none};
const std::vector<Score> kScores{Score::dot,          Score::squared_dot, Score::squared_elements,
                                 Score::negative_dot, Score::distance,    Score::reciprocal,
                                 Score::inverse_distance};
// The finite differences' options for a score. reciprocal and inverse-distance curve sharply
// (1/x near a small x) and their large scores saturate softmax: a step of 1e-2 measures their
// curvature, and at 1e-3 float rounding is 1e-5 of the loss's slope, so through softmax their
// smallest gradients are measured against a floor of 3e-2 (as distance's in test_multihead).
// Their own backward, score_backward, is checked without a floor below.
// squared-dot's smallest gradients through the whole model (2e-5) are as small as the finite
// difference's float noise: a floor of 1e-2.
test::GradOptions grad_options(Score score) {
    test::GradOptions o;
    if (score == Score::reciprocal || score == Score::inverse_distance) o.eps = 1e-3, o.floor = 3e-2;
    if (score == Score::squared_dot) o.floor = 1e-2;
    return o;
}
}  // namespace

TEST_CASE("04: Head backward matches finite differences for every mask and score", "[04-self-attention]") {
    for (Mask mask : kMasks) {
        for (Score score : kScores) {
            DYNAMIC_SECTION("mask " << int(mask) << ", score " << int(score)) {
                nn::Rng rng(21);
                const int B = 2, T = 4, C = 6, hs = 5;
                Head head(C, hs, mask, score, rng);
                nn::Matrix x = test::random_matrix(B * T, C, rng), r = test::random_matrix(B * T, hs, rng);
                head.forward(x, B, T);
                const nn::Matrix dx = head.backward(r);
                auto loss = [&] { return test::project(head.forward(x, B, T), r); };
                const test::GradOptions o = grad_options(score);
                test::check_grad("x", loss, x, dx, o);
                test::check_grad("key", loss, head.key.weight.value, head.key.weight.grad, o);
                test::check_grad("query", loss, head.query.weight.value, head.query.weight.grad, o);
                test::check_grad("value", loss, head.value.weight.value, head.value.weight.grad, o);
            }
        }
    }
}

TEST_CASE("04: --no-scale leaves out 1/sqrt(hs), and its backward matches finite differences", "[04-self-attention]") {
    const int B = 2, T = 4, C = 6, hs = 5;
    nn::Rng rng(26);
    const nn::Matrix x = test::random_matrix(B * T, C, rng);
    nn::Rng a(27), b(27);  // the same weights
    Head scaled(C, hs, Mask::causal, Score::dot, a), unscaled(C, hs, Mask::causal, Score::dot, b, false);
    CHECK(scaled.scale() == Approx(1 / std::sqrt(5.0)));
    CHECK(unscaled.scale() == 1.0f);
    scaled.forward(x, B, T);
    unscaled.forward(x, B, T);
    // The same q and k; the scores differ by sqrt(hs), and so the weights differ.
    CHECK(unscaled.s.isApprox(std::sqrt(5.0f) * scaled.s, 1e-6f));
    CHECK((unscaled.wei - scaled.wei).cwiseAbs().maxCoeff() > 1e-3f);
    for (Mask mask : kMasks) {
        for (Score score : kScores) {
            DYNAMIC_SECTION("mask " << int(mask) << ", score " << int(score)) {
                nn::Rng r(21);
                Head head(C, hs, mask, score, r, false);
                nn::Matrix in = test::random_matrix(B * T, C, r), up = test::random_matrix(B * T, hs, r);
                head.forward(in, B, T);
                const nn::Matrix dx = head.backward(up);
                auto loss = [&] { return test::project(head.forward(in, B, T), up); };
                // Unscaled, the distance score's softmax is nearly saturated: its smallest
                // gradients are measured against a floor of 3e-2, as in test_multihead.
                test::GradOptions o = grad_options(score);
                if (score == Score::distance) o.floor = 3e-2;
                test::check_grad("x", loss, in, dx, o);
                test::check_grad("key", loss, head.key.weight.value, head.key.weight.grad, o);
                test::check_grad("query", loss, head.query.weight.value, head.query.weight.grad, o);
                test::check_grad("value", loss, head.value.weight.value, head.value.weight.grad, o);
            }
        }
    }
    nn::Rng m(23);
    BigramLanguageModel model({.vocab_size = 7, .block_size = 5, .n_embd = 6, .scale = false}, m);
    CHECK_FALSE(model.sa_head.scaled);
    test::check_model_gradients(model, test::random_batch(3, 5, 7, m));
}

TEST_CASE("04: the mask decides which positions a query sees", "[04-self-attention]") {
    nn::Rng rng(22);
    const int T = 5, C = 4;
    for (Mask mask : kMasks) {
        Head head(C, 3, mask, Score::dot, rng);
        nn::Matrix x = test::random_matrix(T, C, rng);
        const nn::Matrix out = head.forward(x, 1, T);
        const nn::Matrix wei = head.wei;
        CHECK(wei.rowwise().sum().isOnes(1e-5f));
        for (int i = 0; i < T; ++i)
            for (int j = 0; j < T; ++j) {
                if (masked(mask, i, j)) CHECK(wei(i, j) == 0.0f);
                else CHECK(wei(i, j) > 0.0f);
            }
        // Change the input at position 2: which outputs change?
        x.row(2) += nn::RowVector::Ones(C);
        const nn::Matrix changed = head.forward(x, 1, T);
        for (int i = 0; i < T; ++i) {
            const bool sees_2 = !masked(mask, i, 2);
            const bool changed_i = (changed.row(i) - out.row(i)).norm() > 1e-6f;
            CHECK(changed_i == sees_2);
        }
    }
}

TEST_CASE("04: the model's backward matches finite differences for every experiment", "[04-self-attention]") {
    struct Case { Position position; Mask mask; Score score; };
    for (Case c : {Case{Position::learned, Mask::causal, Score::dot},
                   Case{Position::sinusoidal, Mask::causal, Score::dot},
                   Case{Position::learned, Mask::anticausal, Score::dot},
                   Case{Position::learned, Mask::none, Score::dot},
                   Case{Position::learned, Mask::causal, Score::squared_dot},
                   Case{Position::learned, Mask::causal, Score::squared_elements},
                   Case{Position::learned, Mask::causal, Score::negative_dot},
                   Case{Position::learned, Mask::causal, Score::distance},
                   Case{Position::learned, Mask::causal, Score::reciprocal},
                   Case{Position::learned, Mask::causal, Score::inverse_distance}}) {
        DYNAMIC_SECTION("position " << int(c.position) << ", mask " << int(c.mask) << ", score " << int(c.score)) {
            nn::Rng rng(23);
            BigramLanguageModel model({.vocab_size = 7, .block_size = 5, .n_embd = 6,
                                       .position = c.position, .mask = c.mask, .score = c.score},
                                      rng);
            CHECK(model.parameters().size() == (c.position == Position::learned ? 7u : 6u));
            const test::GradOptions o = grad_options(c.score);
            const nn::Batch batch = test::random_batch(3, 5, 7, rng), shorter = test::random_batch(2, 3, 7, rng);
            auto none = [] { return std::vector<bool>{}; };
            test::check_model_gradients(model, [&] { return model.loss(batch); }, none, o);
            // A shorter context than block_size works too.
            test::check_model_gradients(model, [&] { return model.loss(shorter); }, none, o);
        }
    }
}

TEST_CASE("04: each score is the formula it names", "[04-self-attention]") {
    nn::Rng rng(25);
    const int T = 3, hs = 4;
    const float scale = 0.5f;  // 1 / sqrt(hs)
    const nn::Matrix q = test::random_matrix(T, hs, rng), k = test::random_matrix(T, hs, rng);
    // s_ij written out for one (i, j), term by term.
    auto expected = [&](Score score, int i, int j) -> double {
        double dot = 0, squares = 0, distance = 0;
        for (int c = 0; c < hs; ++c) {
            dot += q(i, c) * k(j, c);
            squares += q(i, c) * q(i, c) * k(j, c) * k(j, c);
            distance += (q(i, c) - k(j, c)) * (q(i, c) - k(j, c));
        }
        switch (score) {
            case Score::dot: return scale * dot;
            case Score::squared_dot: return scale * dot * dot / std::sqrt(2.0 * hs + 4);
            case Score::squared_elements: return scale * squares / std::sqrt(6.0);
            case Score::negative_dot: return -scale * dot;
            case Score::distance: return -scale * distance / std::sqrt(6.0);
            case Score::reciprocal: return scale * 0.6745 * 0.6745 * hs / dot;
            case Score::inverse_distance: return scale * (1 + 2.0 * hs) * (1 + 2.0 * hs) / std::sqrt(6.0) / (1 + distance);
        }
        return 0;
    };
    for (Score score : kScores) {
        nn::Matrix s(T, T);
        score_forward(score, q, k, scale, s);
        for (int i = 0; i < T; ++i)
            for (int j = 0; j < T; ++j) {
                INFO("score " << int(score) << " at " << i << ", " << j);
                CHECK(s(i, j) == Approx(expected(score, i, j)).epsilon(1e-4).margin(1e-5));
            }
    }
    // reciprocal's guard: q.k = 0 becomes +1e-3 sqrt(hs), and its gradient there is 0.
    nn::Matrix q0 = q, s(T, T), dq(T, hs), dk(T, hs);
    q0.row(0).setZero();
    score_forward(Score::reciprocal, q0, k, scale, s);
    CHECK(s(0, 1) == Approx(scale * 0.6745 * 0.6745 * hs / (kReciprocalGuard * 2.0)));
    nn::Matrix ds = nn::Matrix::Zero(T, T);
    ds(0, 1) = 1;
    score_backward(Score::reciprocal, q0, k, scale, ds, dq, dk);
    CHECK(dq.isZero());
    CHECK(dk.isZero());
}

TEST_CASE("04: score_backward matches finite differences of score_forward for every score", "[04-self-attention]") {
    // loss = sum_ij r_ij s_ij, so d(loss)/d(s) = r; q and k keep |q.k| away from reciprocal's pole.
    const int T = 4, hs = 3;
    nn::Rng rng(29);
    for (Score score : kScores) {
        for (float scale : {1 / std::sqrt(3.0f), 1.0f}) {
            DYNAMIC_SECTION("score " << int(score) << ", scale " << scale) {
                nn::Matrix q = test::random_matrix(T, hs, rng), k = test::random_matrix(T, hs, rng);
                const nn::Matrix r = test::random_matrix(T, T, rng);
                if (score == Score::reciprocal) {  // q, k near u = (1.2, 1.2, 1.2): q.k near 4.3, far from 0
                    const nn::RowVector u = nn::RowVector::Constant(hs, 1.2f);
                    q = (0.2f * q).rowwise() + u;
                    k = (0.2f * k).rowwise() + u;
                }
                nn::Matrix s(T, T), dq(T, hs), dk(T, hs);
                score_backward(score, q, k, scale, r, dq, dk);
                auto loss = [&] {
                    score_forward(score, q, k, scale, s);
                    return static_cast<double>((s.cast<double>().array() * r.cast<double>().array()).sum());
                };
                // inverse-distance's scores here reach 20 (its constant, (1 + 2 hs)^2 / sqrt(6), is
                // sized for hs 32): float rounding of the loss is 1e-5 of a step, so a floor of 3e-2.
                const test::GradOptions o{.floor = score == Score::inverse_distance ? 3e-2 : 1e-3};
                test::check_grad("q", loss, q, dq, o);
                test::check_grad("k", loss, k, dk, o);
            }
        }
    }
}

TEST_CASE("04: every score starts with the dot product's spread", "[04-self-attention]") {
    // For q, k of N(0, 1) entries, hs = 32: the standard deviation of s_ij over the keys j of a
    // row, averaged over rows (root mean square), is 1 for every score (the scaled dot's, exactly
    // 1 in expectation); for reciprocal, which has no finite variance, the median of |s| is the
    // dot product's, 0.6745.
    const int T = 256, hs = 32;
    const float scale = 1 / std::sqrt(32.0f);
    nn::Rng rng(28);
    nn::Matrix q(T, hs), k(T, hs), s(T, T);
    rng.fill_normal(nn::as_span(q));
    rng.fill_normal(nn::as_span(k));
    auto spread = [&] {  // sqrt(mean over rows of the variance over the row)
        double v = 0;
        for (int i = 0; i < T; ++i) v += (s.row(i).array() - s.row(i).mean()).square().mean() / T;
        return std::sqrt(v);
    };
    auto median_abs = [&] {
        std::vector<float> a(s.data(), s.data() + s.size());
        for (float& x : a) x = std::abs(x);
        std::nth_element(a.begin(), a.begin() + a.size() / 2, a.end());
        return a[a.size() / 2];
    };
    score_forward(Score::dot, q, k, scale, s);
    const double dot_spread = spread(), dot_median = median_abs();
    CHECK(dot_spread == Approx(1).epsilon(0.05));
    for (Score score : kScores) {
        INFO("score " << int(score));
        score_forward(score, q, k, scale, s);
        // inverse-distance's constant is first order in the spread of |q - k|^2 (README): 11% high.
        if (score == Score::reciprocal) CHECK(median_abs() == Approx(dot_median).epsilon(0.1));
        else CHECK(spread() == Approx(dot_spread).epsilon(score == Score::inverse_distance ? 0.15 : 0.1));
    }
}

TEST_CASE("04: the sinusoidal table and the context limit", "[04-self-attention]") {
    const nn::Matrix pe = sinusoidal_table(8, 6);
    CHECK(pe(0, 0) == 0.0f);
    CHECK(pe(0, 1) == 1.0f);
    CHECK(pe(3, 0) == Approx(std::sin(3.0)));
    CHECK(pe(3, 1) == Approx(std::cos(3.0)));
    CHECK(pe(5, 4) == Approx(std::sin(5.0 / std::pow(10000.0, 4.0 / 6))));
    CHECK(pe(5, 5) == Approx(std::cos(5.0 / std::pow(10000.0, 4.0 / 6))));

    nn::Rng rng(24);
    BigramLanguageModel model({.vocab_size = 7, .block_size = 4, .n_embd = 6}, rng);
    REQUIRE_THROWS_WITH(model.forward(std::vector<int>(5, 1), 1, 5),
                        Catch::Matchers::Contains("a context of 5 characters is longer than the 4"));
    // generate crops its context to block_size.
    const std::vector<int> out = model.generate(std::vector<int>(9, 2), 6, rng);
    CHECK(out.size() == 15);
}

TEST_CASE("04: the sinusoidal table turns by a rotation from one position to the next", "[04-self-attention]") {
    // PE(pos + k) = R(k w_i) PE(pos) in every pair of channels (2i, 2i+1), w_i = 10000^(-2i/C).
    for (int C : {32, 64}) {
        const int T = 64;
        const nn::Matrix pe = sinusoidal_table(T, C);
        double worst = 0;
        for (int i = 0; 2 * i + 1 < C; ++i) {
            const double w = std::pow(10000.0, -2.0 * i / C);
            for (int pos = 0; pos < T; ++pos)
                for (int k = 0; pos + k < T; ++k) {
                    const double c = std::cos(k * w), s = std::sin(k * w);
                    const double x = pe(pos, 2 * i), y = pe(pos, 2 * i + 1);
                    worst = std::max({worst, std::abs(c * x + s * y - pe(pos + k, 2 * i)),
                                      std::abs(-s * x + c * y - pe(pos + k, 2 * i + 1))});
                }
        }
        INFO("C = " << C);
        CHECK(worst < 1e-5);  // float rounding of the table
        // And not by chance: a wrong frequency breaks it.
        const double w1 = std::pow(10000.0, -2.0 / C) * 1.01;
        CHECK(std::abs(std::cos(10 * w1) * pe(3, 2) + std::sin(10 * w1) * pe(3, 3) - pe(13, 2)) > 1e-4);
    }
}

TEST_CASE("04: --plot-positions draws the table and checks its rotations, without training", "[04-self-attention][run]") {
    test::ScratchDir dir;
    const std::string png = (dir / "pe.png").string();
    const test::RunResult r = test::run_lesson("04-self-attention", "--plot-positions " + png + " --block-size 64 --n-embd 64");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(nn::read_file(png).substr(1, 3) == "PNG");
    CHECK_THAT(r.output, Catch::Matchers::Contains("in each of the 32 (sin, cos) pairs") &&
                             Catch::Matchers::Contains("2 pi 10000^(62/64) = 47117 in channels 62, 63") &&
                             !Catch::Matchers::Contains("step 0"));
    const auto at = r.output.find("largest error over pos, k and i ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(r.output.substr(at + 32)) < 1e-5);
}

TEST_CASE("04: a short run of each experiment, and the attention map", "[04-self-attention][run]") {
    test::ScratchDir dir;
    const std::string png = (dir / "map.png").string();
    const std::string output = test::check_short_run(
        "04-self-attention", "--attention-map " + png + " --position sinusoidal --score squared-dot --loss-per-position");
    CHECK_THAT(output, Catch::Matchers::Contains("(sinusoidal)") &&
                           Catch::Matchers::Contains("s = (q k^T)^2 / sqrt(2 hs + 4) / sqrt(hs)") &&
                           Catch::Matchers::Contains("the squared-dot score") &&
                           Catch::Matchers::Contains("causal mask, each row sums to 1") &&
                           Catch::Matchers::Contains("val loss at each position t = 0..7: "));
    // The backward's shapes, for B = 32, T = 8, C = hs = 32, V = 65; no gradient for the fixed table.
    for (const char* line : {"dlogits                                      (256, 65)",
                             "dwei = dout v^T                              (256, 8)  (B*T, T)",
                             "dv = wei^T dout                              (256, 32)  (B*T, hs)",
                             "dq, dk                                       (256, 32)  (B*T, hs) each: the squared-dot score's backward",
                             "d Wk, d Wq, d Wv                             (32, 32)  (hs, C) each",
                             "dx = dk Wk + dq Wq + dv Wv                   (256, 32)  (B*T, C)",
                             "d token_embedding_table                      (65, 32)  (V, C)",
                             "d position_embedding_table                   none"})
        CHECK_THAT(output, Catch::Matchers::Contains(line));
    const std::string bytes = nn::read_file(png);
    CHECK(bytes.substr(1, 3) == "PNG");
    for (const char* mask : {"anticausal", "none"})
        CHECK(test::run_lesson("04-self-attention", "--data " + test::shakespeare_dir() + " " + test::kTinyRun +
                                                        " --mask " + mask).status == 0);
    // Each score prints its own formula.
    for (const auto& [score, formula] : std::vector<std::pair<std::string, std::string>>{
             {"squared-elements", "s = q^2 (k^2)^T / sqrt(6) / sqrt(hs)"},
             {"negative-dot", "s = -q k^T / sqrt(hs)"},
             {"distance", "s = -|q_i - k_j|^2 / sqrt(6) / sqrt(hs)"},
             {"reciprocal", "s = 0.455 hs / (q k^T) / sqrt(hs)"},
             {"inverse-distance", "s = (1 + 2 hs)^2 / sqrt(6) / (1 + |q_i - k_j|^2) / sqrt(hs)"}}) {
        const test::RunResult r = test::run_lesson(
            "04-self-attention", "--data " + test::shakespeare_dir() + " " + test::kTinyRun + " --score " + score);
        INFO(score << "\n" << r.output);
        CHECK(r.status == 0);
        CHECK_THAT(r.output, Catch::Matchers::Contains(formula) && Catch::Matchers::Contains("the " + score + " score"));
        CHECK_THAT(r.output, !Catch::Matchers::Contains("s = q k^T / sqrt(hs)"));  // not the dot product's
    }
    test::check_learns("04-self-attention", 4.0, 3.2);
}

TEST_CASE("04: --show-trick prints three equal ways to average the past", "[04-self-attention][run]") {
    using Catch::Matchers::Contains;
    const test::RunResult r = test::run_lesson("04-self-attention", "--show-trick");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("1. a loop, xbow[t] = mean(x[0..t])") &&
                             Contains("2. wei = tril(ones(T, T)) / its row sums") &&
                             Contains("3. wei = softmax(zeros(T, T) with -inf above the diagonal)"));
    // Each version prints the same weights: row t holds 1/(t+1) on columns 0..t.
    const std::string row1 = "     1.0000  0.0000  0.0000  0.0000  0.0000  0.0000  0.0000  0.0000\n";
    const std::string row2 = "     0.5000  0.5000  0.0000  0.0000  0.0000  0.0000  0.0000  0.0000\n";
    const std::string row8 = "     0.1250  0.1250  0.1250  0.1250  0.1250  0.1250  0.1250  0.1250\n";
    for (const std::string& row : {row1, row2, row8}) {
        std::size_t count = 0;
        for (auto at = r.output.find(row); at != std::string::npos; at = r.output.find(row, at + 1)) ++count;
        CHECK(count == 3);
    }
    // The three results agree to float rounding.
    const auto at = r.output.find("largest absolute difference of the results: |xbow - xbow2| ");
    REQUIRE(at != std::string::npos);
    const std::string rest = r.output.substr(at);
    const double d2 = std::stod(rest.substr(rest.find("xbow2| ") + 7));
    const double d3 = std::stod(rest.substr(rest.find("xbow3| ") + 7));
    CHECK(d2 < 1e-6);
    CHECK(d3 < 1e-6);
    CHECK_THAT(r.output, !Contains("step 0"));  // no training
}

TEST_CASE("04: --show-trick averages what --mask lets a position see", "[04-self-attention][run]") {
    using Catch::Matchers::Contains;
    auto count = [](const std::string& text, const std::string& row) {
        std::size_t n = 0;
        for (auto at = text.find(row); at != std::string::npos; at = text.find(row, at + 1)) ++n;
        return n;
    };
    const std::string eighths = "     0.1250  0.1250  0.1250  0.1250  0.1250  0.1250  0.1250  0.1250\n";
    // anticausal: row t holds 1/(T-t) on columns t..T-1, in each of the three versions.
    test::RunResult r = test::run_lesson("04-self-attention", "--show-trick --mask anticausal");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("1. a loop, xbow[t] = mean(x[t..T-1])") &&
                             Contains("2. wei = triu(ones(T, T)) / its row sums") &&
                             Contains("3. wei = softmax(zeros(T, T) with -inf below the diagonal)"));
    CHECK(count(r.output, eighths) == 3);  // row 0 sees all 8
    CHECK(count(r.output, "     0.0000  0.1429  0.1429  0.1429  0.1429  0.1429  0.1429  0.1429\n") == 3);
    CHECK(count(r.output, "     0.0000  0.0000  0.0000  0.0000  0.0000  0.0000  0.0000  1.0000\n") == 3);
    CHECK(count(r.output, "     0.5000  0.5000  0.0000") == 0);  // not the causal weights
    CHECK_THAT(r.output, Contains("|wei1 - wei2| 0, |wei1 - wei3| 0"));
    // none: every row is 1/8 everywhere.
    r = test::run_lesson("04-self-attention", "--show-trick --mask none");
    REQUIRE(r.status == 0);
    CHECK(count(r.output, eighths) == 3 * 8);
    CHECK_THAT(r.output, Contains("3. wei = softmax(zeros(T, T)); xbow3 = wei @ x"));
}

TEST_CASE("04: --direction backward predicts the previous character; the anticausal mask is its honest one",
          "[04-self-attention][run]") {
    using Catch::Matchers::Contains;
    const std::string base = "--data " + test::shakespeare_dir() + " --max-iters 400 --eval-interval 399 --eval-iters 20 "
                             "--max-new-tokens 20 --prompt 'KING' --direction backward";
    const test::RunResult honest = test::run_lesson("04-self-attention", base + " --mask anticausal");
    INFO(honest.output);
    REQUIRE(honest.status == 0);
    CHECK_THAT(honest.output, Contains("the previous characters: text[i_b : i_b+8]") &&
                                  Contains("generate backward(20 characters before \"KING\"):"));
    // The generated text ends with the prompt: it grew to the left.
    const auto at = honest.output.find("before \"KING\"):\n");
    REQUIRE(at != std::string::npos);
    const std::string text = honest.output.substr(at + 16);
    CHECK(text.substr(20, 5) == "KING\n");  // 20 new characters, all ASCII in Tiny Shakespeare
    // It learns like the forward model (under 3.2 after 400 steps); with the causal mask, position
    // t sees x[t-1], its own target, and copies it: far lower.
    CHECK(test::val_loss_at(honest.output, 399) < 3.2);
    CHECK(test::val_loss_at(honest.output, 399) > 2.0);
    const test::RunResult cheat = test::run_lesson("04-self-attention", base + " --mask causal");
    REQUIRE(cheat.status == 0);
    CHECK(test::val_loss_at(cheat.output, 399) < test::val_loss_at(honest.output, 399) - 0.5);
}

TEST_CASE("04: --help lists every flag with its default", "[04-self-attention][run]") {
    test::check_help("04-self-attention",
                     {"--batch-size", "32", "--block-size", "8", "--n-embd", "--max-iters", "5000",
                      "--eval-interval", "500", "--eval-iters", "200", "--lr", "0.001", "--weight-decay",
                      "--seed", "1337", "--max-new-tokens", "--prompt", "--temperature", "--top-k",
                      "--metrics", "--data", "--position", "learned", "--mask", "causal", "--score",
                      "dot", "squared-elements", "negative-dot", "distance", "--attention-map",
                      "--map-text", "To be or", "--show-trick", "--loss-per-position"});
}

TEST_CASE("04: parameter_count counts what parameters() holds", "[04-self-attention]") {
    for (const Config& c : {Config{}, Config{.vocab_size = 7, .block_size = 5, .n_embd = 6},
                            Config{.vocab_size = 11, .block_size = 4, .n_embd = 8, .position = Position::sinusoidal}}) {
        nn::Rng rng(36);
        BigramLanguageModel model(c, rng);
        CHECK(parameter_count(c) == test::parameters_held(model));
    }
}

TEST_CASE("04: activation_floats counts the matrices the model keeps after a forward and backward pass",
          "[04-self-attention]") {
    const int B = 3;
    const Config c{.vocab_size = 7, .block_size = 5, .n_embd = 6};
    nn::Rng rng(37);
    BigramLanguageModel model(c, rng);
    model.loss(test::random_batch(B, c.block_size, c.vocab_size, rng));
    model.backward();
    auto n = [](const nn::Matrix& m) { return static_cast<double>(m.size()); };
    const Head& h = model.sa_head;
    const double held = n(model.token_embedding_table.y) + n(model.position_embedding_table.y) + n(model.x) +
                        n(h.key.y) + n(h.query.y) + n(h.value.y) + n(h.out) + n(h.dq) + n(h.dk) + n(h.dv) + n(h.s) +
                        n(h.wei) + n(h.dwei) + n(h.dx) + n(h.key.dx) + n(h.query.dx) + n(h.value.dx) +
                        n(model.lm_head.y) + n(model.lm_head.dx) + n(model.criterion.probs) +
                        n(model.criterion.dlogits);
    CHECK(activation_floats(c, B) == held);
}

TEST_CASE("04: training_bytes of the default run, by hand", "[04-self-attention]") {
    // V = 65, T = 8, C = 32, B = 32: 7553 parameters (65*32 + 8*32 + 3*32^2 + 32*65 + 65), 4 floats
    // each; for each of the 256 positions 15C + 3T + 3V = 480 + 24 + 195 activations, and main's 4C
    // copies and 6 integers: 4 bytes * (30212 + 256 * 699 + 256 * 134).
    CHECK(parameter_count(Config{.vocab_size = 65}) == 7553);
    CHECK(training_bytes(Config{.vocab_size = 65}, 32) == 4.0 * (30212 + 256 * 699 + 256 * 134));
    // A sinusoidal table is not trained: its value and gradient, but no moments.
    CHECK(training_bytes(Config{.vocab_size = 65, .position = Position::sinusoidal}, 32) ==
          training_bytes(Config{.vocab_size = 65}, 32) - 4.0 * 2 * 8 * 32);
}

TEST_CASE("04: a model that cannot fit is refused before it is built, with the bytes it needs", "[04-self-attention][run]") {
    const std::string data = "--data " + test::shakespeare_dir();
    // C = 16384: 8.1e8 parameters (12.9 GB with their gradients and moments) and, over B*T = 32768
    // positions, (B*T, C) matrices of 2.1 GB each, where the attention weights are 1 MB.
    const Config big{.vocab_size = 65, .block_size = 8, .n_embd = 16384};
    const double bytes = training_bytes(big, 4096);
    CHECK(bytes == Approx(5.375e10).epsilon(1e-3));
    test::check_refuses_exactly("04-self-attention", data + " --n-embd 16384 --batch-size 4096 --max-iters 1",
                                fmt::format("a model of {:.0f} parameters trained on batches of 4096 x 8 characters",
                                            parameter_count(big)),
                                bytes);
    // 3.4 TB, more than any machine: the attention weights of B = 4096 sequences of T = 8192.
    test::check_refuses_what_cannot_fit("04-self-attention", data + " --batch-size 4096 --block-size 8192",
                                        "a model of 269441 parameters trained on batches of 4096 x 8192 characters");
}

TEST_CASE("04: bad input is one line and exit status 2", "[04-self-attention][run]") {
    test::check_refuses_bad_input("04-self-attention");
    using Catch::Matchers::Contains;
    const std::string base = "--data " + test::shakespeare_dir() + " " + test::kTinyRun;
    test::RunResult r = test::run_lesson("04-self-attention", base + " --attention-map x.png --map-text 'To be, or not'");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("--map-text has more characters than the context of 8"));
    r = test::run_lesson("04-self-attention", base + " --mask diagonal");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("--mask"));
}
