// 06-gpt's layers against central finite differences: LayerNorm, GELU and
// ReLU, dropout with a fixed mask, attention with dropout, a whole Block and
// the whole model's loss with every switch of Config, every --score (04's scores in
// 06's attention) and the reciprocal's guard; and generation with and without the
// key/value cache.
#include <catch2/catch.hpp>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "06-gpt/checkpoint.hpp"
#include "06-gpt/complete.hpp"
#include "06-gpt/generate.hpp"
#include "06-gpt/model.hpp"
#include "06-gpt/size.hpp"
#include "common/runtime.hpp"
#include "lm_helpers.hpp"

namespace {

using test::random_matrix;

// Gradients here are of order 0.1 to 1; an error below 3e-4 is the float32
// noise of a finite difference (some entries, e.g. of the key bias, have a
// true gradient of exactly zero), so it is measured against this floor.
constexpr test::GradOptions kLayer{.floor = 3e-2};
// A Block or the whole model stacks more float32 rounding: about 2e-2 at worst.
constexpr test::GradOptions kDeep{.floor = 3e-2, .tolerance = 4e-2};
constexpr test::GradOptions kModel{.floor = 3e-2, .tolerance = 4e-2, .samples = 24};

const Score kEveryScore[] = {Score::dot,      Score::squared_dot, Score::squared_elements, Score::negative_dot,
                             Score::distance, Score::reciprocal,  Score::inverse_distance};

Config tiny_config(float dropout) {
    return Config{.vocab_size = 11, .block_size = 6, .n_embd = 8, .n_head = 2, .n_layer = 2, .dropout = dropout};
}

// Gives every parameter of the model values of order one (the GPT-2 init is
// so small that every layer is nearly linear, which a check would not see).
// Without LayerNorm nothing keeps the activations near 1, so smaller values
// keep the softmaxes and GELUs out of saturation, where a finite difference
// of step 1e-2 would measure the curvature rather than the slope.
void randomize(GPTLanguageModel& model, nn::Rng& rng) {
    const float stddev = model.config.layernorm ? 0.5f : 0.25f;
    for (nn::Parameter* p : model.parameters()) {
        rng.fill_normal(nn::as_span(p->value), 0.0f, stddev);
        if (p->value.rows() == 1) p->value.array() += 0.5f;  // gains near 1, biases off zero
    }
}

}  // namespace

TEST_CASE("06: LayerNorm normalises each row and its backward matches finite differences", "[06-gpt]") {
    nn::Rng rng(11);
    LayerNorm ln(7, true);
    ln.weight.value = random_matrix(1, 7, rng);
    ln.bias.value = random_matrix(1, 7, rng);
    nn::Matrix x = random_matrix(5, 7, rng, 2.0f), r = random_matrix(5, 7, rng);
    x.array() += 3.0f;  // a mean far from zero, which the layer removes
    ln.forward(x);
    for (int n = 0; n < 5; ++n) {  // xhat = (y - bias) / gain
        const auto xhat = (ln.y.row(n) - ln.bias.value).array() / ln.weight.value.array();
        CHECK(std::abs(xhat.mean()) < 1e-5);
        CHECK(std::abs(xhat.square().mean() - 1.0f) < 1e-3);
        CHECK(ln.mean(n) == Approx(x.row(n).mean()).epsilon(1e-6));
    }
    const nn::Matrix dx = ln.backward(r);
    auto loss = [&] { return test::project(ln.forward(x), r); };
    test::check_grad("x", loss, x, dx, kLayer);
    test::check_grad("gain", loss, ln.weight.value, ln.weight.grad, kLayer);
    test::check_grad("bias", loss, ln.bias.value, ln.bias.grad, kLayer);
    // The gradient of the input sums to zero along each row: the mean is removed.
    CHECK(dx.rowwise().sum().cwiseAbs().maxCoeff() < 1e-4);
    // Switched off (--no-layernorm): the identity, both ways.
    LayerNorm off(7, false);
    CHECK(off.forward(x) == x);
    CHECK(off.backward(r) == r);
}

TEST_CASE("06: GELU is x Phi(x), ReLU max(x, 0), and their backward matches finite differences", "[06-gpt]") {
    Nonlinearity gelu;
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
    for (Activation kind : {Activation::gelu, Activation::relu}) {
        DYNAMIC_SECTION(kActivationNames[static_cast<std::size_t>(kind)]) {
            Nonlinearity act;
            act.kind = kind;
            act.forward(x);
            if (kind == Activation::relu) CHECK(act.y == x.cwiseMax(0.0f));
            const nn::Matrix dx = act.backward(x, r);
            auto loss = [&] { return test::project(act.forward(x), r); };
            test::check_grad_kinked("x", loss, x, dx, [&] { return test::positive(x); }, kLayer);
        }
    }
}

TEST_CASE("06: Dropout zeroes about p of the values, scales the rest, and passes gradients through the mask", "[06-gpt]") {
    nn::Rng rng(13), masks(14);
    Dropout drop;
    drop.p = 0.25f;
    drop.rng = &masks;
    nn::Matrix x = random_matrix(100, 40, rng), r = random_matrix(100, 40, rng);
    auto dropped = [&] {  // forward works in place
        nn::Matrix y = x;
        drop.forward(y);
        return y;
    };
    const std::string state = masks.state();
    const nn::Matrix y = dropped();
    const double zeros = (y.array() == 0.0f).cast<double>().mean();
    CHECK(zeros == Approx(0.25).margin(0.02));
    int kept = 0;
    for (int i = 0; i < 100; ++i)
        for (int j = 0; j < 40; ++j) {
            CHECK(y(i, j) == (drop.mask.kept(i, j) ? x(i, j) * (1.0f / 0.75f) : 0.0f));
            kept += drop.mask.kept(i, j);
        }
    CHECK(kept == (y.array() != 0.0f).count());
    // The mask is drawn column by column, one uniform draw per value.
    masks.set_state(state, "a test");
    for (int j = 0; j < 40; ++j)
        for (int i = 0; i < 100; ++i) REQUIRE(drop.mask.kept(i, j) == !(masks.uniform() < 0.25f));
    // With the mask fixed (the generator rewound before every forward), the
    // backward is the derivative of the forward.
    masks.set_state(state, "a test");
    dropped();
    const nn::Matrix dx = drop.backward(r);
    auto loss = [&] {
        masks.set_state(state, "a test");
        return test::project(dropped(), r);
    };
    test::check_grad("x", loss, x, dx, kLayer);
    // Evaluation: off, the identity.
    drop.training = false;
    CHECK(dropped() == x);
}

TEST_CASE("06: DropMask::apply, by 64 x 64 tiles of transposed bits, masks as entry-by-entry lookups would", "[06-gpt]") {
    nn::Rng rng(19), masks(20);
    Dropout drop;
    drop.p = 0.3f;
    drop.rng = &masks;
    // Shapes that are not multiples of 64, a block of rows starting inside a word, and the causal form.
    for (auto [rows, cols, row0, block] : {std::array<int, 4>{130, 70, 0, 130}, {200, 64, 67, 70}, {1000, 5, 333, 129}}) {
        drop.draw_mask(rows, cols);
        for (bool causal : {false, true}) {
            const nn::Matrix w = random_matrix(block, cols, rng);
            nn::Matrix masked = w;
            drop.mask.apply(masked, row0, causal);
            for (int i = 0; i < block; ++i)
                for (int j = 0; j < cols; ++j) {
                    const float expected = causal && j > i ? w(i, j)
                                           : drop.mask.kept(row0 + i, j) ? w(i, j) * drop.mask.keep : 0.0f;
                    REQUIRE(masked(i, j) == expected);
                }
        }
    }
}

TEST_CASE("06: MultiHeadAttention backward matches finite differences, dropout included", "[06-gpt]") {
    // T 5 is one causal tile of attention.hpp, T 70 three (the last ragged).
    for (const auto& [T_, p_] : {std::pair{5, 0.0f}, {5, 0.2f}, {70, 0.0f}, {70, 0.2f}}) {
        const int T = T_;  // plain copies, for the lambda below to capture
        const float p = p_;
        DYNAMIC_SECTION("T " << T << ", dropout " << p) {
            const Config c{.vocab_size = 5, .block_size = T, .n_embd = 6, .n_head = 3, .n_layer = 1, .dropout = p};
            nn::Rng rng(15), masks(16);
            MultiHeadAttention sa(c, rng);
            sa.attn_dropout.rng = sa.resid_dropout.rng = &masks;
            for (nn::Parameter* q : {&sa.c_attn.weight, &sa.c_attn.bias, &sa.proj.weight, &sa.proj.bias})
                q->value = random_matrix(q->value.rows(), q->value.cols(), rng, 0.7f);
            const int B = 2;
            nn::Matrix x = random_matrix(B * T, 6, rng), r = random_matrix(B * T, 6, rng);
            const std::string state = masks.state();
            sa.att.keep_weights = true;  // to check causality below
            auto loss = [&] {
                masks.set_state(state, "a test");
                return test::project(sa.forward(x, B, T), r);
            };
            loss();
            // Causality: no row of the weights looks at a later position.
            for (int row = 0; row < sa.att.wei.rows(); ++row)
                CHECK(sa.att.wei.row(row).tail(T - 1 - row % T).isZero());
            const nn::Matrix dx = sa.backward(r);
            test::check_grad("x", loss, x, dx, kLayer);
            test::check_grad("c_attn.weight", loss, sa.c_attn.weight.value, sa.c_attn.weight.grad, kLayer);
            if (T == 5) {
                test::check_grad("c_attn.bias", loss, sa.c_attn.bias.value, sa.c_attn.bias.grad, kLayer);
            } else {
                // The query and value biases only: the key bias's gradient is
                // exactly 0 (it shifts a whole row of scores, which softmax
                // ignores), and over 70 positions the finite difference's
                // float noise around that 0 passes the floor.
                for (int part : {0, 2}) {  // [q | k | v], 6 entries each
                    const nn::GradCheck r = nn::check_gradient(
                        loss, nn::as_span(sa.c_attn.bias.value).subspan(6 * part, 6),
                        nn::as_span(std::as_const(sa.c_attn.bias.grad)).subspan(6 * part, 6), kLayer.eps, kLayer.samples,
                        kLayer.floor);
                    INFO("c_attn.bias part " << part << ": worst relative error " << r.max_rel_error);
                    CHECK(r.max_rel_error < kLayer.tolerance);
                }
            }
            test::check_grad("proj.weight", loss, sa.proj.weight.value, sa.proj.weight.grad, kLayer);
        }
    }
}

// 05's plain form of one head of causal_attention_forward/backward: full
// (T, T) products, the future masked to -infinity, then softmax, dropout and
// their backward, entry by entry; to check the causal tiles of attention.hpp.
struct PlainHead {
    nn::Matrix out, dq, dk, dv;
    PlainHead(const nn::Matrix& q, const nn::Matrix& k, const nn::Matrix& v, const nn::Matrix& dout,
              const DropMask* mask, Eigen::Index row0, bool scaled = true) {
        const Eigen::Index T = q.rows();
        const float scale = scaled ? 1.0f / std::sqrt(static_cast<float>(q.cols())) : 1.0f;
        nn::Matrix wei = scale * q * k.transpose();
        for (Eigen::Index i = 0; i < T; ++i)
            for (Eigen::Index j = i + 1; j < T; ++j) wei(i, j) = -std::numeric_limits<float>::infinity();
        nn::softmax_rows(wei);
        nn::Matrix keep = nn::Matrix::Ones(T, T);  // dropout's factor: 0 or 1 / (1 - p)
        if (mask != nullptr)
            for (Eigen::Index i = 0; i < T; ++i)
                for (Eigen::Index j = 0; j < T; ++j) keep(i, j) = mask->kept(row0 + i, j) ? mask->keep : 0.0f;
        const nn::Matrix att = wei.cwiseProduct(keep);
        out = att * v;
        dv = att.transpose() * dout;
        const nn::Matrix dwei = (dout * v.transpose()).cwiseProduct(keep);
        nn::Matrix ds(T, T);
        for (Eigen::Index i = 0; i < T; ++i)
            ds.row(i) = wei.row(i).cwiseProduct((dwei.row(i).array() - dwei.row(i).dot(wei.row(i))).matrix());
        dq = scale * ds * k;
        dk = scale * ds.transpose() * q;
    }
};

TEST_CASE("06: attention in causal tiles computes what the full (T, T) products compute", "[06-gpt]") {
    // T 1, 5 and 32 fit in one tile, 33 spills into a second, 64 is two whole
    // tiles, 70 has a ragged third. From T 64 the (sequence, head) pairs are
    // shared between threads (B nh T^2 reaches kParallelGrain).
    for (int T : {1, 5, 32, 33, 64, 70}) {
        for (float p : {0.0f, 0.3f}) {
            DYNAMIC_SECTION("T " << T << ", dropout " << p) {
                const int B = 4, nh = 2, C = 8, hs = C / nh;
                nn::Rng rng(41);
                const nn::Matrix qkv = random_matrix(B * T, 3 * C, rng, 1.5f), dout = random_matrix(B * T, C, rng);
                Dropout drop;
                drop.p = p;
                drop.rng = &rng;
                if (p > 0) drop.draw_mask(B * nh * T, T);
                const DropMask* mask = p > 0 ? &drop.mask : nullptr;
                AttentionState state;
                nn::Matrix out, dqkv;
                causal_attention_forward(qkv, B, T, nh, mask, state, out);
                causal_attention_backward(dout, qkv, nh, mask, state, dqkv);
                for (int b = 0; b < B; ++b)
                    for (int h = 0; h < nh; ++h) {
                        auto head = [&](const nn::Matrix& m, int col) -> nn::Matrix { return m.block(b * T, col, T, hs); };
                        const PlainHead plain(head(qkv, h * hs), head(qkv, C + h * hs), head(qkv, 2 * C + h * hs),
                                              head(dout, h * hs), mask, (b * nh + h) * T);
                        INFO("sequence " << b << ", head " << h);
                        CHECK(head(out, h * hs).isApprox(plain.out, 1e-5f));
                        CHECK(head(dqkv, h * hs).isApprox(plain.dq, 1e-5f));
                        CHECK(head(dqkv, C + h * hs).isApprox(plain.dk, 1e-5f));
                        CHECK(head(dqkv, 2 * C + h * hs).isApprox(plain.dv, 1e-5f));
                    }
            }
        }
    }
}

TEST_CASE("06: --no-scale: the scores are q.k, sqrt(hs) times larger, and the backward matches", "[06-gpt]") {
    const int B = 2, T = 5, nh = 2, C = 8, hs = C / nh;
    nn::Rng rng(43);
    const nn::Matrix qkv = random_matrix(B * T, 3 * C, rng, 1.5f), dout = random_matrix(B * T, C, rng);
    AttentionState scaled, unscaled;
    unscaled.scaled = false;
    scaled.keep_weights = unscaled.keep_weights = true;
    nn::Matrix out, out_unscaled, dqkv;
    causal_attention_forward(qkv, B, T, nh, nullptr, scaled, out);
    causal_attention_forward(qkv, B, T, nh, nullptr, unscaled, out_unscaled);
    causal_attention_backward(dout, qkv, nh, nullptr, unscaled, dqkv);
    CHECK((scaled.wei - unscaled.wei).cwiseAbs().maxCoeff() > 1e-2f);
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < nh; ++h) {
            auto head = [&](const nn::Matrix& m, int col) -> nn::Matrix { return m.block(b * T, col, T, hs); };
            const PlainHead plain(head(qkv, h * hs), head(qkv, C + h * hs), head(qkv, 2 * C + h * hs),
                                  head(dout, h * hs), nullptr, 0, false);
            CHECK(head(out_unscaled, h * hs).isApprox(plain.out, 1e-5f));
            CHECK(head(dqkv, h * hs).isApprox(plain.dq, 1e-5f));
            CHECK(head(dqkv, C + h * hs).isApprox(plain.dk, 1e-5f));
            // The weights are softmax(q.k) here, softmax(q.k / sqrt(hs)) there: the log-ratios of
            // a row's weights differ by the factor sqrt(hs) = 2.
            const nn::Matrix w1 = scaled.wei.middleRows((b * nh + h) * T, T), w2 = unscaled.wei.middleRows((b * nh + h) * T, T);
            for (int i = 1; i < T; ++i)
                CHECK(std::log(w2(i, 0) / w2(i, i)) == Approx(2.0 * std::log(w1(i, 0) / w1(i, i))).margin(1e-3));
        }
    // The whole model's backward with --no-scale: "the whole model's loss has the gradients ...".
    Config c;
    c.scale = false;
    nn::Rng m(44);
    CHECK_FALSE(GPTLanguageModel(c, m).blocks[0].sa.att.scaled);
}

TEST_CASE("06: --score: attention with every score of 04 matches finite differences, its weights 04's softmax", "[06-gpt]") {
    // The dot product takes attention.hpp's causal tiles, the other scores the whole (T, T)
    // score_forward and score_backward; T 33 spills into a second tile, with dropout.
    for (Score score : kEveryScore) {
        for (const auto& [T_, p_] : {std::pair{5, 0.0f}, {33, 0.2f}}) {
            const int T = T_;
            const float p = p_;
            DYNAMIC_SECTION(kScoreNames[static_cast<std::size_t>(score)] << ", T " << T << ", dropout " << p) {
                const Config c{.vocab_size = 5, .block_size = T, .n_embd = 6, .n_head = 3, .n_layer = 1, .dropout = p,
                               .score = score};
                nn::Rng rng(15), masks(16);
                MultiHeadAttention sa(c, rng);
                REQUIRE(sa.att.score == score);
                sa.attn_dropout.rng = sa.resid_dropout.rng = &masks;
                for (nn::Parameter* q : {&sa.c_attn.weight, &sa.c_attn.bias, &sa.proj.weight, &sa.proj.bias})
                    q->value = random_matrix(q->value.rows(), q->value.cols(), rng, 0.7f);
                // The scores that curve sharply: q and k near (1, 1), so that q.k stays far from reciprocal's
                // pole at 0 (a finite difference across it measures the jump, not the slope) and no score
                // saturates softmax (as test_attention's check of score_backward).
                const bool sharp = score == Score::squared_dot || score == Score::squared_elements ||
                                   score == Score::reciprocal || score == Score::inverse_distance;
                if (sharp) {
                    sa.c_attn.weight.value.topRows(12) *= 0.2f;
                    sa.c_attn.bias.value.leftCols(12).setConstant(1.0f);
                }
                const int B = 2, hs = 2;
                nn::Matrix x = random_matrix(B * T, 6, rng), r = random_matrix(B * T, 6, rng);
                const std::string state = masks.state();
                sa.att.keep_weights = true;
                auto loss = [&] {
                    masks.set_state(state, "a test");
                    return test::project(sa.forward(x, B, T), r);
                };
                loss();
                // The weights: softmax of 04's score_forward with the future at -infinity, head by head.
                const nn::Matrix& qkv = sa.c_attn.y;
                for (int b = 0; b < B; ++b)
                    for (int h = 0; h < 3; ++h) {
                        nn::Matrix s(T, T);
                        score_forward(score, qkv.block(b * T, h * hs, T, hs), qkv.block(b * T, 6 + h * hs, T, hs),
                                      1.0f / std::sqrt(2.0f), s);
                        for (int i = 0; i < T; ++i)
                            for (int j = i + 1; j < T; ++j) s(i, j) = -std::numeric_limits<float>::infinity();
                        nn::softmax_rows(s);
                        INFO("sequence " << b << ", head " << h);
                        CHECK(sa.att.wei.middleRows((b * 3 + h) * T, T).isApprox(s, 1e-5f));
                    }
                const nn::Matrix dx = sa.backward(r);
                // Their curvature still shows in a finite difference over 33 positions: kDeep's
                // tolerance (4e-2, against errors of order 1 for a wrong term).
                test::GradOptions o = kLayer;
                if (sharp) o.tolerance = kDeep.tolerance;
                test::check_grad("x", loss, x, dx, o);
                test::check_grad("c_attn.weight", loss, sa.c_attn.weight.value, sa.c_attn.weight.grad, o);
                test::check_grad("proj.weight", loss, sa.proj.weight.value, sa.proj.weight.grad, o);
            }
        }
    }
}

TEST_CASE("06: --score reciprocal: the guard keeps q.k = 0 finite, with no gradient through it", "[06-gpt]") {
    // One head of hs 2, every query (1, 0) times a number, every key (0, 1): q.k = 0 everywhere, held at
    // +1e-3 sqrt(hs) by the guard. Every score of a row is then the same, so the weights are the
    // causal average, and dq, dk are 0 (score_backward gives no gradient where the guard holds).
    const int T = 4, C = 2;
    nn::Rng rng(45);
    nn::Matrix qkv = nn::Matrix::Zero(T, 3 * C), dout = random_matrix(T, C, rng);
    for (int t = 0; t < T; ++t) qkv(t, 0) = 0.5f + t, qkv(t, C + 1) = 1.5f - t;
    qkv.rightCols(C) = random_matrix(T, C, rng);
    AttentionState state;
    state.score = Score::reciprocal;
    state.keep_weights = true;
    nn::Matrix out, dqkv;
    causal_attention_forward(qkv, 1, T, 1, nullptr, state, out);
    causal_attention_backward(dout, qkv, 1, nullptr, state, dqkv);
    CHECK(out.allFinite());
    CHECK(dqkv.allFinite());
    for (int i = 0; i < T; ++i) {
        for (int j = 0; j <= i; ++j) CHECK(state.wei(i, j) == Approx(1.0 / (i + 1)));
        CHECK(out.row(i).isApprox(qkv.block(0, 2 * C, i + 1, C).colwise().mean(), 1e-5f));
    }
    CHECK(dqkv.leftCols(2 * C).isZero());
    CHECK_FALSE(dqkv.rightCols(C).isZero());  // v still learns
}

TEST_CASE("06: a whole Block's backward matches finite differences, with and without residuals", "[06-gpt]") {
    for (bool residual : {true, false}) {
        DYNAMIC_SECTION("residual " << residual) {
            Config c{.vocab_size = 5, .block_size = 4, .n_embd = 8, .n_head = 2, .n_layer = 1, .dropout = 0.1f};
            c.residual = residual;
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
                masks.set_state(state, "a test");
                return test::project(block.forward(x, B, T), r);
            };
            loss();
            const nn::Matrix dx = block.backward(r);
            test::check_grad("x", loss, x, dx, kDeep);
            for (auto [name, p] : {std::pair{"ln1.weight", &block.ln1.weight}, {"ln1.bias", &block.ln1.bias},
                                   {"c_attn.weight", &block.sa.c_attn.weight}, {"ln2.weight", &block.ln2.weight},
                                   {"fc.weight", &block.ffwd.fc.weight}, {"fc.bias", &block.ffwd.fc.bias},
                                   {"mlp proj.weight", &block.ffwd.proj.weight}, {"mlp proj.bias", &block.ffwd.proj.bias}})
                test::check_grad(name, loss, p->value, p->grad, kDeep);
        }
    }
}

TEST_CASE("06: the whole model's loss has the gradients backward computes, with every switch", "[06-gpt]") {
    struct Case {
        const char* name;
        void (*set)(Config&);
    };
    const Case cases[] = {
        {"the full GPT", [](Config&) {}},
        {"--no-residual", [](Config& c) { c.residual = false; }},
        {"--no-layernorm", [](Config& c) { c.layernorm = false; }},
        {"--activation relu", [](Config& c) { c.activation = Activation::relu; }},
        {"--ffwd-mult 2", [](Config& c) { c.ffwd_mult = 2; }},
        {"--no-tie", [](Config& c) { c.tie = false; }},
        {"--no-scale", [](Config& c) { c.scale = false; }},
        {"--score squared-dot", [](Config& c) { c.score = Score::squared_dot; }},
        {"--score squared-elements", [](Config& c) { c.score = Score::squared_elements; }},
        {"--score negative-dot", [](Config& c) { c.score = Score::negative_dot; }},
        {"--score distance", [](Config& c) { c.score = Score::distance; }},
        // Not reciprocal: with these random weights some q.k of the model crosses 0, where 1/(q.k) jumps,
        // within a finite difference's step. Its backward is checked through the attention above, with
        // q.k kept away from 0, and on its own in test_attention.
        {"--score inverse-distance", [](Config& c) { c.score = Score::inverse_distance; }},
        {"--no-proj --ffwd-mult 1", [](Config& c) { c.projection = false, c.ffwd_mult = 1; }},
        {"the lecture's blocks alone", [](Config& c) {
             c.residual = c.layernorm = c.projection = c.tie = false;
             c.ffwd_mult = 1, c.activation = Activation::relu;
         }},
    };
    for (const Case& k : cases) {
        DYNAMIC_SECTION(k.name) {
            Config c = tiny_config(0.1f);
            k.set(c);
            nn::Rng rng(19);
            GPTLanguageModel model(c, rng);
            randomize(model, rng);
            const nn::Batch batch = test::random_batch(2, 6, 11, rng);
            const std::string state = model.dropout_rng.state();
            auto loss = [&] {
                model.dropout_rng.set_state(state, "a test");
                return model.loss(batch);
            };
            // Where a ReLU's input crosses zero, a finite difference measures the kink.
            auto pattern = [&] {
                std::vector<bool> signs;
                if (c.activation == Activation::relu)
                    for (const Block& b : model.blocks) {
                        const std::vector<bool> s = test::positive(b.ffwd.fc.y);
                        signs.insert(signs.end(), s.begin(), s.end());
                    }
                return signs;
            };
            test::check_model_gradients(model, loss, pattern, kModel);
        }
    }
}

TEST_CASE("06: between forward and backward no block keeps its LayerNorm outputs; backward computes them again", "[06-gpt]") {
    const long from = drop_layernorm_outputs_from;
    drop_layernorm_outputs_from = 0;  // as for the lecture's model: this tiny one is far below the default
    Config c = tiny_config(0.0f);
    nn::Rng rng(23);
    GPTLanguageModel model(c, rng);
    randomize(model, rng);
    const nn::Batch batch = test::random_batch(2, 6, 11, rng);
    model.loss(batch);
    // What a lone Block keeps (the tests and exercises call Block::forward alone): ln1(x), ln2(x1) ...
    std::vector<nn::Matrix> ln1, ln2;
    {
        nn::Rng again(23);
        GPTLanguageModel twin(c, again);
        randomize(twin, again);
        const nn::Matrix* h = &twin.token_embedding_table.forward(batch.x);
        nn::Matrix x = *h + twin.position_embedding_table.forward(twin.pos = model.pos);
        h = &x;
        for (Block& b : twin.blocks) {
            h = &b.forward(*h, batch.B, batch.T);
            ln1.push_back(b.ln1.y);
            ln2.push_back(b.ln2.y);
        }
    }
    for (std::size_t l = 0; l < model.blocks.size(); ++l) {
        INFO("block " << l);
        Block& b = model.blocks[l];
        CHECK(b.ln1.y.size() == 0);  // ... the model's forward frees (memory.hpp) ...
        CHECK(b.ln2.y.size() == 0);
        restore_layernorm_outputs(b);  // ... and computes again, to the same bits, for backward
        CHECK(b.ln1.y == ln1[l]);
        CHECK(b.ln2.y == ln2[l]);
        free_layernorm_outputs(b);
    }
    model.backward();  // and backward, which refills them itself, runs and frees them again
    for (const Block& b : model.blocks) CHECK(b.ln1.y.size() + b.ln2.y.size() == 0);
    std::vector<nn::Matrix> dropped;
    for (const nn::Parameter* p : model.parameters()) dropped.push_back(p->grad);
    drop_layernorm_outputs_from = from;
    for (nn::Parameter* p : model.parameters()) p->grad.setZero();
    model.loss(batch);  // below the size, they stay ...
    for (const Block& b : model.blocks) CHECK(b.ln1.y.size() + b.ln2.y.size() > 0);
    model.backward();  // ... and the gradients are the same bits either way
    for (std::size_t i = 0; i < dropped.size(); ++i) {
        INFO("parameter " << i);
        CHECK(model.parameters()[i]->grad == dropped[i]);
    }
}

TEST_CASE("06: the tied lm head's gradient reaches the token table; the untied one is its own", "[06-gpt]") {
    nn::Rng rng(22);
    GPTLanguageModel tied(tiny_config(0.0f), rng);
    CHECK_FALSE(tied.lm_head.has_value());
    const nn::Batch batch = test::random_batch(2, 6, 11, rng);
    for (nn::Parameter* p : tied.parameters()) p->grad.setZero();
    tied.loss(batch);
    tied.backward();
    // Only 2 x 6 of the 11 rows are read as embeddings, so rows that no input
    // token used get their gradient from the lm head alone.
    std::vector<bool> used(11, false);
    for (int t : batch.x) used[static_cast<std::size_t>(t)] = true;
    for (int v = 0; v < 11; ++v)
        if (!used[static_cast<std::size_t>(v)]) CHECK(tied.token_embedding_table.weight.grad.row(v).norm() > 0);
    Config c = tiny_config(0.0f);
    c.tie = false;
    GPTLanguageModel untied(c, rng);
    REQUIRE(untied.lm_head.has_value());
    CHECK(untied.parameters().size() == tied.parameters().size() + 1);
    CHECK(untied.parameters().back() == &untied.lm_head->weight);
}

// Generation with the key/value cache against recomputing the window: the
// same tokens, and the same logits position by position.
static void check_cache_matches_window(const Config& c) {
    nn::Rng rng(20);
    GPTLanguageModel model(c, rng);
    randomize(model, rng);
    // 40 new tokens with a window of 6: the cache is rebuilt many times.
    nn::Rng a(5), b(5);
    const std::vector<int> prompt{1, 2, 3};
    const std::vector<int> cached = generate(model, prompt, 40, a, 1.0f, 0, true);
    const std::vector<int> uncached = generate(model, prompt, 40, b, 1.0f, 0, false);
    CHECK(cached == uncached);
    CHECK(cached.size() == 43);
    KVCache cache;
    const std::vector<int> window{4, 0, 9, 2, 7, 7};
    const nn::Matrix whole = model.forward(window, 1, 6);
    for (int t = 0; t < 6; ++t) {
        const nn::Matrix one = forward_cached(model, window[static_cast<std::size_t>(t)], cache);
        CHECK((one.row(0) - whole.row(t)).cwiseAbs().maxCoeff() < 1e-4);
    }
}

TEST_CASE("06: generation with the key/value cache gives the same tokens as recomputing the window", "[06-gpt]") {
    for (bool full : {true, false}) {
        DYNAMIC_SECTION((full ? "the full GPT" : "every switch off")) {
            Config c = tiny_config(0.0f);
            if (!full) {
                c.residual = c.layernorm = c.projection = c.tie = false;
                c.ffwd_mult = 1, c.activation = Activation::relu;
            }
            check_cache_matches_window(c);
        }
    }
}

TEST_CASE("06: complete_greedy writes the likeliest character each time, and stops at the stop character, "
          "the limit or the end of the context", "[06-gpt]") {
    Config c = tiny_config(0.0f);
    nn::Rng rng(21);
    GPTLanguageModel model(c, rng);
    randomize(model, rng);
    const int T = c.block_size;
    // The greedy continuation recomputed from the whole sequence each time: the argmax of its last row.
    auto argmax_of = [&](const std::vector<int>& seq) {
        const nn::Matrix logits = model.forward(seq, 1, static_cast<int>(seq.size()));
        Eigen::Index best = 0;
        logits.row(logits.rows() - 1).maxCoeff(&best);
        return static_cast<int>(best);
    };
    const std::vector<int> prompt{3, 1};
    std::vector<int> seq = prompt, expected;
    while (static_cast<int>(seq.size()) <= T) {  // T characters in, the (T+1)-th predicted
        expected.push_back(argmax_of(seq));
        seq.push_back(expected.back());
    }
    const int never = c.vocab_size;  // no token: runs to the end of the context
    CHECK(complete_greedy(model, prompt, never, 100) == expected);  // T - 1 characters: then the context is full
    CHECK(expected.size() == static_cast<std::size_t>(T) - 1);
    CHECK(complete_greedy(model, prompt, never, 2) == std::vector<int>(expected.begin(), expected.begin() + 2));
    // Stopping at the first occurrence of the stop character, which is not returned.
    const int stop = expected[2];
    const auto first = std::find(expected.begin(), expected.end(), stop);
    CHECK(complete_greedy(model, prompt, stop, 100) == std::vector<int>(expected.begin(), first));
    CHECK(complete_greedy(model, prompt, expected[0], 100).empty());
    // Deterministic: the same again.
    CHECK(complete_greedy(model, prompt, never, 100) == expected);
    CHECK_THROWS_WITH(complete_greedy(model, std::vector<int>(static_cast<std::size_t>(T) + 1, 0), never, 5),
                      Catch::Matchers::Contains("more than the model's context"));
    CHECK_THROWS_WITH(complete_greedy(model, std::vector<int>{}, never, 5), Catch::Matchers::Contains("at least one character"));
}

TEST_CASE("06: generation with the key/value cache gives the same tokens with every --score", "[06-gpt]") {
    for (Score score : kEveryScore) {
        DYNAMIC_SECTION(kScoreNames[static_cast<std::size_t>(score)]) {
            Config c = tiny_config(0.0f);
            c.score = score;
            check_cache_matches_window(c);
        }
    }
}

TEST_CASE("06: the model refuses a context longer than it was built for, and settings that cannot work", "[06-gpt]") {
    nn::Rng rng(21);
    GPTLanguageModel model(tiny_config(0.0f), rng);
    const std::vector<int> idx(7, 1);
    REQUIRE_THROWS_AS(model.forward(idx, 1, 7), nn::InputError);
    Config bad = tiny_config(0.0f);
    bad.n_head = 3;
    REQUIRE_THROWS_WITH(GPTLanguageModel(bad, rng), Catch::Contains("multiple of --n-head"));
    bad = tiny_config(0.0f);
    bad.projection = false;  // with --ffwd-mult 4
    REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("--no-proj needs --ffwd-mult 1"));
}

TEST_CASE("06: --init gpt2 draws GPT-2's small weights, --init pytorch keeps PyTorch's defaults", "[06-gpt]") {
    Config c{.vocab_size = 65, .block_size = 64, .n_embd = 64, .n_head = 4, .n_layer = 2};
    auto stddev = [](const nn::Matrix& m) { return std::sqrt((m.array() - m.mean()).square().mean()); };
    nn::Rng a(23), b(23);
    GPTLanguageModel gpt2(c, a);
    c.init = Init::pytorch;
    GPTLanguageModel pytorch(c, b);
    CHECK(stddev(gpt2.token_embedding_table.weight.value) == Approx(0.02).epsilon(0.1));
    CHECK(stddev(gpt2.blocks[0].sa.proj.weight.value) == Approx(0.02 / std::sqrt(4.0)).epsilon(0.1));
    CHECK(gpt2.blocks[0].ffwd.fc.bias.value.isZero());
    CHECK(stddev(pytorch.token_embedding_table.weight.value) == Approx(1.0).epsilon(0.1));  // nn.Embedding: N(0, 1)
    // nn.Linear: U(-1/sqrt(in), 1/sqrt(in)), whose standard deviation is 1/sqrt(3 in)
    CHECK(stddev(pytorch.blocks[0].ffwd.fc.weight.value) == Approx(1.0 / std::sqrt(3.0 * 64)).epsilon(0.1));
    CHECK_FALSE(pytorch.blocks[0].ffwd.fc.bias.value.isZero());
}

TEST_CASE("06: parameter_count, which checkpoints check before building a model, counts what parameters() holds",
          "[06-gpt]") {
    for (const Config& c : {Config{}, Config{.vocab_size = 11, .block_size = 5, .n_embd = 12, .n_head = 3, .n_layer = 2},
                            Config{.n_embd = 8, .n_head = 2, .n_layer = 3, .layernorm = false, .tie = false},
                            Config{.n_embd = 8, .n_head = 2, .projection = false, .ffwd_mult = 1},
                            Config{.n_embd = 8, .n_head = 2, .n_layer = 1, .ffwd_mult = 3}}) {
        nn::Rng rng(1);
        GPTLanguageModel model(c, rng);
        CHECK(parameter_count(c) == test::parameters_held(model));
    }
}

TEST_CASE("06: --threads 0 takes every core for a step as large as the lecture preset's, one per idle core below",
          "[06-gpt]") {
    const Config lecture{.vocab_size = 65, .block_size = 256, .n_embd = 384, .n_head = 6, .n_layer = 6};
    const Config small{.vocab_size = 65};  // the default model
    // 6 flops per weight per position, and attention's 12 T^2 C per sequence and block
    CHECK(step_flops(lecture, 64) == Approx(6.0 * 10770816 * 64 * 256 + 12.0 * 6 * 64 * 256 * 256 * 384));
    CHECK(step_flops(lecture, 64) > 1.1e12);
    CHECK(nn::auto_threads(step_flops(lecture, 64)) == omp_get_num_procs());
    CHECK(nn::auto_threads(step_flops(lecture, 32)) == omp_get_num_procs());
    CHECK(step_flops(lecture, 16) < nn::kEveryCoreFlops);  // measured a tie beside a busy loop: counts idle cores
    CHECK(step_flops(small, 12) < 1e10);
    const int threads = nn::auto_threads(step_flops(small, 12));
    CHECK(threads >= 1);
    CHECK(threads <= omp_get_num_procs());
}
