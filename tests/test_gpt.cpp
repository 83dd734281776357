// 06-gpt's layers against central finite differences: LayerNorm, GELU,
// dropout with a fixed mask, attention with dropout, a whole Block and the
// whole model's loss; and generation with and without the key/value cache.
#include <catch2/catch.hpp>
#include <cmath>

#include "06-gpt/model.hpp"
#include "common/gradcheck.hpp"

namespace {

std::span<float> span_of(nn::Matrix& m) { return {m.data(), static_cast<std::size_t>(m.size())}; }
std::span<const float> cspan(const nn::Matrix& m) { return {m.data(), static_cast<std::size_t>(m.size())}; }

nn::Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, nn::Rng& rng, float stddev = 1.0f) {
    nn::Matrix m(rows, cols);
    rng.fill_normal(span_of(m), 0.0f, stddev);
    return m;
}

// sum(y .* R) in double: a scalar loss whose gradient with respect to y is R.
double project(const nn::Matrix& y, const nn::Matrix& r) {
    return (y.cast<double>().array() * r.cast<double>().array()).sum();
}

constexpr double kTolerance = 1e-2;  // float32 rounding gives ~1e-3; a wrong term gives ~1
// Gradients here are of order 0.1 to 1; an error below 3e-4 is the float32
// noise of a finite difference (some entries, e.g. of the key bias, have a
// true gradient of exactly zero), so it is measured against this floor.
constexpr double kFloor = 3e-2;
// A Block or the whole model stacks more float32 rounding: about 2e-2 at worst.
constexpr double kDeepTolerance = 4e-2;

// Checks d(loss)/d(p) for a parameter whose gradient the last backward left in p.grad.
template <typename Loss>
void check_param(const char* what, Loss&& loss, nn::Parameter& p, double tolerance = kTolerance) {
    const nn::GradCheck r = nn::check_gradient(loss, span_of(p.value), cspan(p.grad), 1e-2, 64, kFloor);
    INFO(what << ": worst at " << r.worst_index << ": analytic " << r.analytic << ", numeric " << r.numeric);
    CHECK(r.max_rel_error < tolerance);
}

Config tiny_config(float dropout) {
    return Config{.vocab_size = 11, .block_size = 6, .n_embd = 8, .n_head = 2, .n_layer = 2, .dropout = dropout};
}

// Gives every parameter of the model values of order one (the GPT-2 init is
// so small that every layer is nearly linear, which a check would not see).
void randomize(GPTLanguageModel& model, nn::Rng& rng) {
    for (nn::Parameter* p : model.parameters()) {
        rng.fill_normal(span_of(p->value), 0.0f, 0.5f);
        if (p->value.rows() == 1) p->value.array() += 0.5f;  // gains near 1, biases off zero
    }
}

}  // namespace

TEST_CASE("LayerNorm normalises each row and its backward matches finite differences", "[gpt]") {
    nn::Rng rng(11);
    LayerNorm ln(7);
    ln.weight.value = random_matrix(1, 7, rng);
    ln.bias.value = random_matrix(1, 7, rng);
    nn::Matrix x = random_matrix(5, 7, rng, 2.0f), r = random_matrix(5, 7, rng);
    x.array() += 3.0f;  // a mean far from zero, which the layer removes
    ln.forward(x);
    for (int n = 0; n < 5; ++n) {
        CHECK(std::abs(ln.xhat.row(n).mean()) < 1e-5);
        CHECK(std::abs((ln.xhat.row(n).array().square().mean()) - 1.0f) < 1e-3);
    }
    const nn::Matrix dx = ln.backward(r);
    auto loss = [&] { return project(ln.forward(x), r); };
    CHECK(nn::check_gradient(loss, span_of(x), cspan(dx), 1e-2, 64, kFloor).max_rel_error < kTolerance);
    check_param("gain", loss, ln.weight);
    check_param("bias", loss, ln.bias);
    // The gradient of the input sums to zero along each row: the mean is removed.
    CHECK(dx.rowwise().sum().cwiseAbs().maxCoeff() < 1e-4);
}

TEST_CASE("GELU is x Phi(x) and its backward matches finite differences", "[gpt]") {
    GELU gelu;
    nn::Matrix x(1, 5);
    x << -3.0f, -0.5f, 0.0f, 0.7f, 2.5f;
    const nn::Matrix& y = gelu.forward(x);
    for (int i = 0; i < 5; ++i) {
        const double v = x(0, i), expected = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
        CHECK(y(0, i) == Approx(expected).margin(1e-6));
    }
    nn::Rng rng(12);
    x = random_matrix(6, 9, rng, 2.0f);
    const nn::Matrix r = random_matrix(6, 9, rng);
    gelu.forward(x);
    const nn::Matrix dx = gelu.backward(r);
    auto loss = [&] { return project(gelu.forward(x), r); };
    CHECK(nn::check_gradient(loss, span_of(x), cspan(dx), 1e-2, 54, kFloor).max_rel_error < kTolerance);
}

TEST_CASE("Dropout zeroes about p of the values, scales the rest, and passes gradients through the mask", "[gpt]") {
    nn::Rng rng(13), masks(14);
    Dropout drop;
    drop.p = 0.25f;
    drop.rng = &masks;
    nn::Matrix x = random_matrix(100, 40, rng), r = random_matrix(100, 40, rng);
    const nn::Matrix y = drop.forward(x);
    const double zeros = (y.array() == 0.0f).cast<double>().mean();
    CHECK(zeros == Approx(0.25).margin(0.02));
    const auto kept = (drop.mask.array() != 0.0f);
    CHECK((kept.select(y.array() - x.array() / 0.75f, 0.0f)).abs().maxCoeff() < 1e-5);
    // With the mask fixed (the generator rewound before every forward), the
    // backward is the derivative of the forward.
    const std::string state = masks.state();
    masks.set_state(state);
    drop.forward(x);
    const nn::Matrix dx = drop.backward(r);
    auto loss = [&] {
        masks.set_state(state);
        return project(drop.forward(x), r);
    };
    CHECK(nn::check_gradient(loss, span_of(x), cspan(dx), 1e-2, 64, kFloor).max_rel_error < kTolerance);
    // Evaluation: off, the identity.
    drop.training = false;
    CHECK(drop.forward(x) == x);
}

TEST_CASE("MultiHeadAttention backward matches finite differences, dropout included", "[gpt]") {
    for (float p : {0.0f, 0.2f}) {
        DYNAMIC_SECTION("dropout " << p) {
            const Config c{.vocab_size = 5, .block_size = 5, .n_embd = 6, .n_head = 3, .n_layer = 1, .dropout = p};
            nn::Rng rng(15), masks(16);
            MultiHeadAttention sa(c, rng);
            sa.attn_dropout.rng = sa.resid_dropout.rng = &masks;
            for (nn::Parameter* q : {&sa.c_attn.weight, &sa.c_attn.bias, &sa.proj.weight, &sa.proj.bias})
                q->value = random_matrix(q->value.rows(), q->value.cols(), rng, 0.7f);
            const int B = 2, T = 5;
            nn::Matrix x = random_matrix(B * T, 6, rng), r = random_matrix(B * T, 6, rng);
            const std::string state = masks.state();
            auto loss = [&] {
                masks.set_state(state);
                return project(sa.forward(x, B, T), r);
            };
            loss();
            // Causality: no row of the weights looks at a later position.
            for (int row = 0; row < sa.wei.rows(); ++row)
                CHECK(sa.wei.row(row).tail(T - 1 - row % T).isZero());
            const nn::Matrix dx = sa.backward(r);
            CHECK(nn::check_gradient(loss, span_of(x), cspan(dx), 1e-2, 64, kFloor).max_rel_error < kTolerance);
            check_param("c_attn.weight", loss, sa.c_attn.weight);
            check_param("c_attn.bias", loss, sa.c_attn.bias);
            check_param("proj.weight", loss, sa.proj.weight);
        }
    }
}

TEST_CASE("A whole Block's backward matches finite differences", "[gpt]") {
    const Config c{.vocab_size = 5, .block_size = 4, .n_embd = 8, .n_head = 2, .n_layer = 1, .dropout = 0.1f};
    nn::Rng rng(17), masks(18);
    Block block(c, rng);
    for (Dropout* d : {&block.sa.attn_dropout, &block.sa.resid_dropout, &block.ffwd.dropout}) d->rng = &masks;
    for (nn::Parameter* q : {&block.sa.c_attn.weight, &block.sa.c_attn.bias, &block.sa.proj.weight,
                             &block.ffwd.fc.weight, &block.ffwd.fc.bias, &block.ffwd.proj.weight,
                             &block.ln1.weight, &block.ln2.bias})
        q->value = random_matrix(q->value.rows(), q->value.cols(), rng, 0.6f);
    const int B = 2, T = 4;
    nn::Matrix x = random_matrix(B * T, 8, rng), r = random_matrix(B * T, 8, rng);
    const std::string state = masks.state();
    auto loss = [&] {
        masks.set_state(state);
        return project(block.forward(x, B, T), r);
    };
    loss();
    const nn::Matrix dx = block.backward(r);
    CHECK(nn::check_gradient(loss, span_of(x), cspan(dx), 1e-2, 64, kFloor).max_rel_error < kDeepTolerance);
    check_param("ln1.weight", loss, block.ln1.weight, kDeepTolerance);
    check_param("ln1.bias", loss, block.ln1.bias, kDeepTolerance);
    check_param("c_attn.weight", loss, block.sa.c_attn.weight, kDeepTolerance);
    check_param("ln2.weight", loss, block.ln2.weight, kDeepTolerance);
    check_param("fc.weight", loss, block.ffwd.fc.weight, kDeepTolerance);
    check_param("fc.bias", loss, block.ffwd.fc.bias, kDeepTolerance);
    check_param("mlp proj.weight", loss, block.ffwd.proj.weight, kDeepTolerance);
    check_param("mlp proj.bias", loss, block.ffwd.proj.bias, kDeepTolerance);
}

TEST_CASE("The whole model's loss has the gradients backward computes, tied embedding included", "[gpt]") {
    nn::Rng rng(19);
    GPTLanguageModel model(tiny_config(0.1f), rng);
    randomize(model, rng);
    const int B = 2, T = 6;
    nn::Batch batch{B, T, {}, {}};
    for (int i = 0; i < B * T; ++i) {
        batch.x.push_back(static_cast<int>(rng.below(11)));
        batch.y.push_back(static_cast<int>(rng.below(11)));
    }
    const std::string state = model.dropout_rng.state();
    auto loss = [&] {
        model.dropout_rng.set_state(state);
        return static_cast<double>(model.loss(batch));
    };
    for (nn::Parameter* p : model.parameters()) p->grad.setZero();
    loss();
    model.backward();
    // Check a sample of every parameter.
    const std::vector<nn::Parameter*> params = model.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
        INFO("parameter " << i << " of shape (" << params[i]->value.rows() << ", " << params[i]->value.cols() << ")");
        const nn::GradCheck r = nn::check_gradient(loss, span_of(params[i]->value), cspan(params[i]->grad), 1e-2, 24, kFloor);
        INFO("worst at " << r.worst_index << ": analytic " << r.analytic << ", numeric " << r.numeric);
        CHECK(r.max_rel_error < kDeepTolerance);
    }
    // The token table is also the lm head: its gradient has both parts, so
    // zeroing either one (a forgotten tie) must fail the check above. Here,
    // just that the lm head part is really there.
    nn::Parameter& wte = model.token_embedding_table.weight;
    const nn::Matrix both = wte.grad;
    wte.grad.setZero();
    model.token_embedding_table.backward(nn::Matrix::Zero(B * T, 8));
    CHECK_FALSE(both.isZero());
}

TEST_CASE("Generation with the key/value cache gives the same tokens as recomputing the window", "[gpt]") {
    nn::Rng rng(20);
    GPTLanguageModel model(tiny_config(0.0f), rng);
    randomize(model, rng);
    // 40 new tokens with a window of 6: the cache is rebuilt many times.
    nn::Rng a(5), b(5);
    const std::vector<int> prompt{1, 2, 3};
    const std::vector<int> cached = model.generate(prompt, 40, a, 1.0f, 0, true);
    const std::vector<int> uncached = model.generate(prompt, 40, b, 1.0f, 0, false);
    CHECK(cached == uncached);
    CHECK(cached.size() == 43);
    // And the logits themselves agree, position by position.
    KVCache cache;
    const std::vector<int> window{4, 0, 9, 2, 7, 7};
    const nn::Matrix full = model.forward(window, 1, 6);
    for (int t = 0; t < 6; ++t) {
        const nn::Matrix one = model.forward_cached(window[static_cast<std::size_t>(t)], cache);
        CHECK((one.row(0) - full.row(t)).cwiseAbs().maxCoeff() < 1e-4);
    }
}

TEST_CASE("The model refuses a context longer than it was built for", "[gpt]") {
    nn::Rng rng(21);
    GPTLanguageModel model(tiny_config(0.0f), rng);
    const std::vector<int> idx(7, 1);
    REQUIRE_THROWS_AS(model.forward(idx, 1, 7), nn::InputError);
    Config bad = tiny_config(0.0f);
    bad.n_head = 3;
    REQUIRE_THROWS_AS(GPTLanguageModel(bad, rng), nn::InputError);
}
