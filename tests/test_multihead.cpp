// 05-multihead: MultiHeadAttention (concatenation included) for every mask
// and score, FeedForward and the whole model against finite differences, and
// runs of the lesson (04's experiments included), and the memory a run needs,
// counted before anything is allocated.
#include <catch2/catch.hpp>

#include <fmt/core.h>

#include "05-multihead/model.hpp"
#include "05-multihead/size.hpp"
#include "common/limits.hpp"
#include "lm_helpers.hpp"

namespace {
const std::vector<Mask> kMasks{Mask::causal, Mask::anticausal, Mask::none};
const std::vector<Score> kScores{Score::dot, Score::squared_dot, Score::squared_elements,
                                 Score::negative_dot, Score::distance};
}  // namespace

TEST_CASE("05: MultiHeadAttention concatenates its heads and projects them", "[05-multihead]") {
    nn::Rng rng(31);
    const int B = 2, T = 4, C = 6, nh = 3, hs = 2;
    MultiHeadAttention mha(C, nh, hs, Mask::causal, Score::dot, rng);
    const nn::Matrix x = test::random_matrix(B * T, C, rng);
    const nn::Matrix out = mha.forward(x, B, T);
    REQUIRE(mha.cat.cols() == nh * hs);
    for (int h = 0; h < nh; ++h) CHECK(mha.cat.middleCols(h * hs, hs) == mha.heads[h].out);
    CHECK(out.isApprox((mha.cat * mha.proj.weight.value.transpose()).rowwise() + mha.proj.bias.value.row(0)));
}

TEST_CASE("05: MultiHeadAttention backward matches finite differences for every mask and score", "[05-multihead]") {
    for (Mask mask : kMasks) {
        for (Score score : kScores) {
            DYNAMIC_SECTION("mask " << int(mask) << ", score " << int(score)) {
                nn::Rng rng(32);
                const int B = 2, T = 4, C = 6, nh = 3, hs = 2;
                MultiHeadAttention mha(C, nh, hs, mask, score, rng);
                nn::Matrix x = test::random_matrix(B * T, C, rng), r = test::random_matrix(B * T, C, rng);
                mha.forward(x, B, T);
                const nn::Matrix dx = mha.backward(r);
                auto loss = [&] { return test::project(mha.forward(x, B, T), r); };
                // With the distance score the finite difference of a key weight is off by up to
                // 7e-5 (curvature at the step of 1e-2, float rounding at smaller steps), 3% of the
                // smallest entries (1e-3): measure them against a floor of 3e-2, as test_gpt does.
                const test::GradOptions o{.floor = score == Score::distance ? 3e-2 : 1e-3};
                test::check_grad("x", loss, x, dx, o);
                test::check_grad("proj.weight", loss, mha.proj.weight.value, mha.proj.weight.grad, o);
                test::check_grad("proj.bias", loss, mha.proj.bias.value, mha.proj.bias.grad, o);
                for (int h = 0; h < nh; ++h) {
                    INFO("head " << h);
                    Head& head = mha.heads[h];
                    test::check_grad("key", loss, head.key.weight.value, head.key.weight.grad, o);
                    test::check_grad("query", loss, head.query.weight.value, head.query.weight.grad, o);
                    test::check_grad("value", loss, head.value.weight.value, head.value.weight.grad, o);
                }
            }
        }
    }
}

TEST_CASE("05: --no-scale leaves out 1/sqrt(hs) in every head, and the backward still matches", "[05-multihead]") {
    const int B = 2, T = 4, C = 6, nh = 3, hs = 2;
    nn::Rng rng(33);
    nn::Matrix x = test::random_matrix(B * T, C, rng), r = test::random_matrix(B * T, C, rng);
    nn::Rng a(34), b(34);  // the same weights
    MultiHeadAttention scaled(C, nh, hs, Mask::causal, Score::dot, a);
    MultiHeadAttention unscaled(C, nh, hs, Mask::causal, Score::dot, b, false);
    scaled.forward(x, B, T);
    unscaled.forward(x, B, T);
    for (int h = 0; h < nh; ++h) CHECK(unscaled.heads[h].s.isApprox(std::sqrt(2.0f) * scaled.heads[h].s, 1e-6f));
    unscaled.forward(x, B, T);
    const nn::Matrix dx = unscaled.backward(r);
    auto loss = [&] { return test::project(unscaled.forward(x, B, T), r); };
    test::check_grad("x", loss, x, dx);
    for (Head& head : unscaled.heads) {
        test::check_grad("key", loss, head.key.weight.value, head.key.weight.grad);
        test::check_grad("query", loss, head.query.weight.value, head.query.weight.grad);
    }
    nn::Rng m(35);
    // The model hands --no-scale to every head. (Its whole backward is not checked here: without the
    // scale a step of 1e-2 in a key weight flips more of the feed-forward ReLU's signs than the
    // check may skip; the attention's backward, above, is what --no-scale changes.)
    BigramLanguageModel model({.vocab_size = 7, .block_size = 5, .n_embd = 6, .n_head = 3, .scale = false}, m);
    for (const Head& head : model.sa_heads.heads) CHECK_FALSE(head.scaled);
}

TEST_CASE("05: FeedForward backward matches finite differences", "[05-multihead]") {
    nn::Rng rng(33);
    FeedForward ffwd(5, rng);
    nn::Matrix x = test::random_matrix(6, 5, rng), r = test::random_matrix(6, 5, rng);
    const nn::Matrix out = ffwd.forward(x);
    CHECK(out.minCoeff() == 0.0f);  // the ReLU cut some
    CHECK(out.maxCoeff() > 0.0f);
    const nn::Matrix dx = ffwd.backward(r);
    auto loss = [&] { return test::project(ffwd.forward(x), r); };
    auto relu_pattern = [&] { return test::positive(ffwd.fc.y); };
    test::check_grad_kinked("x", loss, x, dx, relu_pattern);
    test::check_grad_kinked("fc.weight", loss, ffwd.fc.weight.value, ffwd.fc.weight.grad, relu_pattern);
    test::check_grad_kinked("fc.bias", loss, ffwd.fc.bias.value, ffwd.fc.bias.grad, relu_pattern);
}

TEST_CASE("05: the model's backward matches finite differences", "[05-multihead]") {
    struct Case { Position position; Score score; };
    for (Case c : {Case{Position::learned, Score::dot}, Case{Position::sinusoidal, Score::dot},
                   Case{Position::learned, Score::distance}}) {
        DYNAMIC_SECTION("position " << int(c.position) << ", score " << int(c.score)) {
            nn::Rng rng(34);
            BigramLanguageModel model({.vocab_size = 7, .block_size = 5, .n_embd = 6, .n_head = 3,
                                       .position = c.position, .score = c.score},
                                      rng);
            for (const Head& head : model.sa_heads.heads) CHECK(head.score == c.score);
            CHECK(model.parameters().size() == (c.position == Position::learned ? 17u : 16u));
            test::check_model_gradients(model, test::random_batch(3, 5, 7, rng),
                                        [&] { return test::positive(model.ffwd.fc.y); });
        }
    }
}

TEST_CASE("05: n_embd must split evenly into heads", "[05-multihead]") {
    nn::Rng rng(35);
    REQUIRE_THROWS_WITH(BigramLanguageModel({.vocab_size = 7, .n_embd = 30, .n_head = 4}, rng),
                        Catch::Matchers::Contains("n_embd = 30 cannot be split evenly into 4 heads"));
}

TEST_CASE("05: a short run, and the attention map of every head", "[05-multihead][run]") {
    test::ScratchDir dir;
    const std::string png = (dir / "map.png").string();
    const std::string output = test::check_short_run("05-multihead", "--attention-map " + png);
    CHECK_THAT(output, Catch::Matchers::Contains("in each of the 4 heads") &&
                           Catch::Matchers::Contains("(256, 8)  (B*T, hs) each") &&
                           Catch::Matchers::Contains("s = q k^T / sqrt(hs)"));
    // The backward's shapes: nh = 4 heads of hs = 8 over C = 32.
    for (const char* line : {"dcat = da Wproj                              (256, 32)  (B*T, nh*hs)",
                             "  dwei = dout v^T                            (256, 8)  (B*T, T)",
                             "  dq, dk                                     (256, 8)  (B*T, hs) each: the dot score's backward",
                             "  d Wk, d Wq, d Wv                           (8, 32)  (hs, C) each",
                             "dx = dx_1 + ... + dx_nh                      (256, 32)  (B*T, C)",
                             "d position_embedding_table                   (8, 32)  (T, C)"})
        CHECK_THAT(output, Catch::Matchers::Contains(line));
    CHECK(nn::read_file(png).substr(1, 3) == "PNG");
    test::check_learns("05-multihead", 4.0, 3.2);
}

TEST_CASE("05: 04's experiments run here too", "[05-multihead][run]") {
    using Catch::Matchers::Contains;
    const std::string base = "--data " + test::shakespeare_dir() + " " + test::kTinyRun;
    test::RunResult r = test::run_lesson("05-multihead", base + " --loss-per-position");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("val loss at each position t = 0..7: "));
    for (const char* score : {"squared-dot", "squared-elements", "negative-dot", "distance"}) {
        r = test::run_lesson("05-multihead", base + " --score " + score);
        INFO(score << "\n" << r.output);
        CHECK(r.status == 0);
        CHECK_THAT(r.output, Contains(std::string("the ") + score + " score") && Contains("causal mask, each row sums to 1"));
    }
    // --show-trick is 04's, unchanged: the same output, with every mask.
    const test::RunResult trick = test::run_lesson("05-multihead", "--show-trick");
    REQUIRE(trick.status == 0);
    CHECK_THAT(trick.output, Contains("3. wei = softmax(zeros(T, T) with -inf above the diagonal)"));
    CHECK(trick.output == test::run_lesson("04-self-attention", "--show-trick").output);
    for (const char* mask : {"anticausal", "none"})
        CHECK(test::run_lesson("05-multihead", std::string("--show-trick --mask ") + mask).output ==
              test::run_lesson("04-self-attention", std::string("--show-trick --mask ") + mask).output);
}

TEST_CASE("05: --help lists every flag with its default", "[05-multihead][run]") {
    test::check_help("05-multihead",
                     {"--batch-size", "32", "--block-size", "8", "--n-embd", "--n-head", "4",
                      "--max-iters", "5000", "--eval-interval", "500", "--eval-iters", "200", "--lr",
                      "0.001", "--weight-decay", "--seed", "1337", "--max-new-tokens", "--prompt",
                      "--temperature", "--top-k", "--metrics", "--data", "--position", "--mask",
                      "--score", "dot", "squared-elements", "negative-dot", "distance", "--attention-map",
                      "--map-text", "--show-trick", "--loss-per-position"});
}

TEST_CASE("05: parameter_count counts what parameters() holds", "[05-multihead]") {
    for (const Config& c : {Config{}, Config{.vocab_size = 7, .block_size = 5, .n_embd = 6, .n_head = 3},
                            Config{.vocab_size = 11, .block_size = 4, .n_embd = 8, .n_head = 8,
                                   .position = Position::sinusoidal}}) {
        nn::Rng rng(36);
        BigramLanguageModel model(c, rng);
        CHECK(parameter_count(c) == test::parameters_held(model));
    }
}

TEST_CASE("05: activation_floats counts the matrices the model keeps after a forward and backward pass",
          "[05-multihead]") {
    const int B = 3;
    const Config c{.vocab_size = 7, .block_size = 5, .n_embd = 6, .n_head = 3};
    nn::Rng rng(37);
    BigramLanguageModel model(c, rng);
    model.loss(test::random_batch(B, c.block_size, c.vocab_size, rng));
    model.backward();
    auto n = [](const nn::Matrix& m) { return static_cast<double>(m.size()); };
    double held = n(model.token_embedding_table.y) + n(model.position_embedding_table.y) + n(model.x);
    for (const Head& h : model.sa_heads.heads)
        held += n(h.key.y) + n(h.query.y) + n(h.value.y) + n(h.out) + n(h.dq) + n(h.dk) + n(h.dv) + n(h.s) +
                n(h.wei) + n(h.dwei) + n(h.dx) + n(h.key.dx) + n(h.query.dx) + n(h.value.dx);
    for (const nn::Matrix& d : model.sa_heads.dhead) held += n(d);
    held += n(model.sa_heads.cat) + n(model.sa_heads.proj.y) + n(model.sa_heads.proj.dx) + n(model.sa_heads.dx);
    held += n(model.ffwd.fc.y) + n(model.ffwd.out) + n(model.ffwd.dy) + n(model.ffwd.fc.dx);
    held += n(model.lm_head.y) + n(model.lm_head.dx) + n(model.criterion.probs) + n(model.criterion.dlogits);
    CHECK(activation_floats(c, B) == held);
}

TEST_CASE("05: training_bytes of the default run, by hand", "[05-multihead]") {
    // V = 65, T = 8, C = 32, nh = 4, B = 32: 9665 parameters (65*32 + 8*32 + 3*32^2 + 2*(32^2 + 32) +
    // 32*65 + 65), 4 floats each; for each of the 256 positions 20C + nh (4C + 3T) + 3V = 640 + 608 + 195
    // activations, and main's 4C copies and 6 integers: 4 bytes * (38660 + 256 * 1443 + 256 * 134).
    CHECK(parameter_count(Config{.vocab_size = 65}) == 9665);
    CHECK(training_bytes(Config{.vocab_size = 65}, 32) == 4.0 * (38660 + 256 * 1443 + 256 * 134));
    // A sinusoidal table is not trained: its value and gradient, but no moments.
    CHECK(training_bytes(Config{.vocab_size = 65, .position = Position::sinusoidal}, 32) ==
          training_bytes(Config{.vocab_size = 65}, 32) - 4.0 * 2 * 8 * 32);
}

TEST_CASE("05: a model that cannot fit is refused before it is built, with the bytes it needs", "[05-multihead][run]") {
    const std::string data = "--data " + test::shakespeare_dir();
    // 1024 heads over C = 16384: 1.3e9 parameters (21.5 GB with their gradients and moments) and
    // four (B*T, C) matrices in each head (69 GB), where the attention weights are 8 MB.
    const Config big{.vocab_size = 65, .block_size = 8, .n_embd = 16384, .n_head = 1024};
    const double bytes = training_bytes(big, 32);
    CHECK(bytes == Approx(9.066e10).epsilon(1e-3));
    test::check_refuses_exactly("05-multihead", data + " --n-head 1024 --n-embd 16384 --max-iters 1",
                                fmt::format("a model of {:.0f} parameters (1024 heads) trained on batches of 32 x 8 "
                                            "characters", parameter_count(big)),
                                bytes);
    // 13 TB, more than any machine: the attention weights of B = 4096 sequences of T = 8192.
    test::check_refuses_what_cannot_fit("05-multihead", data + " --batch-size 4096 --block-size 8192",
                                        "a model of 271553 parameters (4 heads) trained on batches of 4096 x 8192 characters");
}

TEST_CASE("05: bad input is one line and exit status 2", "[05-multihead][run]") {
    test::check_refuses_bad_input("05-multihead");
    // Refused before the data is read: one line, whatever --data says.
    for (const std::string& data : {test::shakespeare_dir(), std::string("/nonexistent")}) {
        test::RunResult r = test::run_lesson("05-multihead", "--data " + data + " " + test::kTinyRun + " --n-embd 30");
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK(r.output == "05-multihead: error: n_embd = 30 cannot be split evenly into 4 heads "
                          "(--n-embd must be a multiple of --n-head)\n");
        r = test::run_lesson("05-multihead", "--data " + data + " " + test::kTinyRun + " --n-head 5");
        CHECK(r.status == 2);
        CHECK(r.output == "05-multihead: error: n_embd = 32 cannot be split evenly into 5 heads "
                          "(--n-embd must be a multiple of --n-head)\n");
    }
}
