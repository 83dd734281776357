// The workbook's checks of 06-gpt, one TEST_CASE per exercise, in the order
// of tests/exercises/06-gpt.md: shapes, then golden tensors of a tiny seeded
// example (recorded from the reference), then finite differences of
// sum(out .* G) for a random upstream gradient G. Each exercise's checks call
// that exercise's function alone, with the inputs it needs computed here, so a
// mistake shows up under its own name; block_backward's second part, with
// LayerNorm, GELU and dropout in the block, needs the other exercises too.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>

#include "06-gpt/model.hpp"
#include "tests/exercises/check.hpp"
#include "common/optim.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"
#include "tests/lm_helpers.hpp"

namespace {

using test::random_matrix;

// Small matrices: one thread, so that no parallel loop waits on the others
// (on a busy machine, 2 threads made the end-to-end run 10 times slower).
const bool kOneThread = (nn::set_threads(1), true);

// sum(y .* G) in double: a loss whose gradient with respect to y is G.
double project(const Eigen::MatrixXd& y, const nn::Matrix& G) { return (y.array() * G.cast<double>().array()).sum(); }

// The checks' own LayerNorm forward, in double: y (N, C) of x (N, C).
Eigen::MatrixXd layernorm_reference(const nn::Matrix& x, const nn::Matrix& gain, const nn::Matrix& bias) {
    const Eigen::MatrixXd xd = x.cast<double>();
    Eigen::MatrixXd y(x.rows(), x.cols());
    for (Eigen::Index n = 0; n < x.rows(); ++n) {
        const double mean = xd.row(n).mean();
        const double var = (xd.row(n).array() - mean).square().mean();
        y.row(n) = (xd.row(n).array() - mean) / std::sqrt(var + LayerNorm::eps) * gain.cast<double>().array() +
                   bias.cast<double>().array();
    }
    return y;
}

// The checks' own GELU, in double.
Eigen::MatrixXd gelu_reference(const nn::Matrix& x) {
    return x.cast<double>().unaryExpr([](double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); });
}

// A (1, N) row of a vector, for shape and golden checks.
nn::Matrix as_row(const nn::Vector& v) { return v.transpose(); }

// The mask applied to a matrix of ones: keep where kept, 0 where dropped.
nn::Matrix mask_values(const DropMask& mask) {
    nn::Matrix m = nn::Matrix::Ones(mask.rows, mask.cols);
    mask.apply(m, 0);
    return m;
}

// Every parameter of a block at values of order one, so that no layer is
// nearly linear (GPT-2's small initial weights would hide a wrong term).
void randomize(Block& block, nn::Rng& rng) {
    for (nn::Parameter* p : {&block.sa.c_attn.weight, &block.sa.c_attn.bias, &block.sa.proj.weight, &block.sa.proj.bias,
                             &block.ffwd.fc.weight, &block.ffwd.fc.bias, &block.ffwd.proj.weight, &block.ffwd.proj.bias,
                             &block.ln1.weight, &block.ln1.bias, &block.ln2.weight, &block.ln2.bias})
        p->value = random_matrix(p->value.rows(), p->value.cols(), rng, 0.6f);
    block.ln1.weight.value.array() += 1.0f;  // gains near 1
    block.ln2.weight.value.array() += 1.0f;
}

}  // namespace

TEST_CASE("LayerNorm forward on a (2, 3, 4) input (6 rows of C = 4)", "[layernorm_forward]") {
    nn::Rng rng(1);
    nn::Matrix x = random_matrix(6, 4, rng, 2.0f);
    x.array() += 3.0f;  // a mean far from zero, which the layer removes
    x.row(5) = (x.row(5).array() - 3.0f) * 0.002f + 3.0f;  // a variance near eps, where eps's place shows
    const nn::Matrix gain = random_matrix(1, 4, rng).array() + 1.0f, bias = random_matrix(1, 4, rng);
    nn::Matrix y;
    nn::Vector mean, rstd;
    layernorm_forward(x, gain, bias, LayerNorm::eps, y, mean, rstd);
    check::shape("y, the LayerNorm's output", y, 6, 4);
    check::shape("mean, one per row", as_row(mean), 1, 6);
    check::shape("rstd = 1 / sqrt(var + eps), one per row", as_row(rstd), 1, 6);
    check::golden("mean of each row", as_row(mean));
    check::golden("rstd of each row", as_row(rstd));
    check::golden("y = (x - mean) * rstd * gain + bias", y);
}

TEST_CASE("LayerNorm backward on a (2, 3, 4) input, against finite differences", "[layernorm_backward]") {
    nn::Rng rng(2);
    nn::Matrix x = random_matrix(6, 4, rng, 2.0f);
    x.array() += 3.0f;
    nn::Matrix gain = random_matrix(1, 4, rng).array() + 1.0f, bias = random_matrix(1, 4, rng);
    const nn::Matrix G = random_matrix(6, 4, rng);  // the upstream gradient: random, not all ones
    // The forward's row statistics, computed here (not by layernorm_forward).
    nn::Vector mean(6), rstd(6);
    for (Eigen::Index n = 0; n < 6; ++n) {
        mean(n) = x.row(n).mean();
        rstd(n) = 1.0f / std::sqrt((x.row(n).array() - mean(n)).square().mean() + LayerNorm::eps);
    }
    nn::Matrix dx, dgain = nn::Matrix::Zero(1, 4), dbias = nn::Matrix::Zero(1, 4);
    layernorm_backward(x, mean, rstd, gain, G, dx, dgain, dbias);
    check::shape("dx of layernorm_backward", dx, 6, 4);
    check::shape("dgain of layernorm_backward", dgain, 1, 4);
    check::shape("dbias of layernorm_backward", dbias, 1, 4);
    check::golden("dbias = sum over rows of dy", dbias);
    check::golden("dgain = sum over rows of dy * xhat", dgain);
    check::golden("dx of layernorm_backward", dx);
    auto loss = [&] { return project(layernorm_reference(x, gain, bias), G); };
    check::gradient("dL/dx of LayerNorm (the backward's dx)", loss, x, dx, 1e-2);
    check::gradient("dL/dgain of LayerNorm", loss, gain, dgain, 1e-2);
    check::gradient("dL/dbias of LayerNorm", loss, bias, dbias, 1e-2);
}

TEST_CASE("GELU forward on a (3, 5) input", "[gelu_forward]") {
    nn::Rng rng(3);
    const nn::Matrix x = random_matrix(3, 5, rng, 2.0f);
    nn::Matrix y;
    gelu_forward(x, y);
    check::shape("y = gelu(x)", y, 3, 5);
    check::golden("y = x Phi(x)", y);
}

TEST_CASE("GELU backward on a (4, 6) input, against finite differences", "[gelu_backward]") {
    nn::Rng rng(4);
    nn::Matrix x = random_matrix(4, 6, rng, 2.0f);
    const nn::Matrix G = random_matrix(4, 6, rng);
    nn::Matrix dx;
    gelu_backward(x, G, dx);
    check::shape("dx of gelu_backward", dx, 4, 6);
    check::golden("dx = dy * (Phi(x) + x phi(x))", dx);
    auto loss = [&] { return project(gelu_reference(x), G); };
    check::gradient("dL/dx of GELU (the backward's dx)", loss, x, dx, 1e-2);
}

TEST_CASE("A dropout mask of (40, 50) with p = 0.25", "[dropout_mask]") {
    nn::Rng rng(5);
    DropMask mask;
    const float p = 0.25f;
    draw_dropout_mask(mask, 40, 50, p, rng);
    {
        INFO("the mask's rows and cols: (" << mask.rows << ", " << mask.cols << "), expected (40, 50), with "
             << mask.bits.size() << " words of bits, expected " << (40 * 50 + 63) / 64);
        REQUIRE((mask.rows == 40 && mask.cols == 50 && mask.bits.size() == (40 * 50 + 63) / 64));
    }
    {
        INFO("the scale of the kept values, mask.keep = " << mask.keep << ", expected 1 / (1 - p) = "
             << 1.0f / (1.0f - p));
        REQUIRE(mask.keep == 1.0f / (1.0f - p));
    }
    const nn::Matrix m = mask_values(mask);
    {
        const double dropped = (m.array() == 0.0f).cast<double>().mean();
        INFO("the share of dropped values: " << dropped << ", expected about p = " << p);
        REQUIRE(std::abs(dropped - p) < 0.03);
    }
    check::golden("the mask applied to ones (0, or 1 / (1 - p) where kept)", m);
}

TEST_CASE("Dropout backward through a fixed (30, 20) mask, against finite differences", "[dropout_backward]") {
    nn::Rng rng(6);
    DropMask mask;  // the forward's mask, drawn here (not by draw_dropout_mask)
    mask.resize(30, 20);
    mask.keep = 1.0f / (1.0f - 0.3f);
    for (std::size_t k = 0; k < 30 * 20; ++k)
        if (rng.uniform() >= 0.3f) mask.bits[k >> 6] |= std::uint64_t{1} << (k & 63);
    nn::Matrix x = random_matrix(30, 20, rng);
    const nn::Matrix G = random_matrix(30, 20, rng);
    nn::Matrix dx;
    dropout_backward(G, mask, dx);
    check::shape("dx of dropout_backward", dx, 30, 20);
    check::golden("dx = dy * mask", dx);
    auto loss = [&] {  // the forward: x * mask
        nn::Matrix y = x;
        mask.apply(y, 0);
        return project(y.cast<double>(), G);
    };
    check::gradient("dL/dx of dropout (the backward's dx)", loss, x, dx, 1e-2);
}

TEST_CASE("A Block's backward with its residuals, B = 2, T = 4, C = 8", "[block_backward]") {
    const int B = 2, T = 4;
    // 1. A block without LayerNorm (the identity), with ReLU and no dropout:
    //    its backward needs none of the other exercises.
    {
        Config c{.vocab_size = 5, .block_size = T, .n_embd = 8, .n_head = 2, .n_layer = 1, .dropout = 0.0f};
        c.layernorm = false;
        c.activation = Activation::relu;
        nn::Rng rng(7);
        Block block(c, rng);
        randomize(block, rng);
        nn::Matrix x = random_matrix(B * T, 8, rng);
        const nn::Matrix G = random_matrix(B * T, 8, rng);
        block.forward(x, B, T);
        const nn::Matrix dx = block.backward(G);
        check::shape("dx of the block (no LayerNorm)", dx, B * T, 8);
        check::golden("dx of the block (no LayerNorm): dy + what each half passes back", dx);
        check::golden("fc.weight's gradient (no LayerNorm)", block.ffwd.fc.weight.grad);
        check::golden("c_attn.weight's gradient (no LayerNorm)", block.sa.c_attn.weight.grad);
    }
    // 2. The lesson's block: LayerNorm, GELU, dropout with a fixed mask (the
    //    generator rewound before every forward), against finite differences.
    {
        Config c{.vocab_size = 5, .block_size = T, .n_embd = 8, .n_head = 2, .n_layer = 1, .dropout = 0.1f};
        nn::Rng rng(8), masks(9);
        Block block(c, rng);
        for (Dropout* d : {&block.sa.attn_dropout, &block.sa.resid_dropout, &block.ffwd.dropout}) d->rng = &masks;
        randomize(block, rng);
        nn::Matrix x = random_matrix(B * T, 8, rng);
        const nn::Matrix G = random_matrix(B * T, 8, rng);
        const std::string state = masks.state();
        auto loss = [&] {
            masks.set_state(state, "the check");
            return project(block.forward(x, B, T).cast<double>(), G);
        };
        loss();
        const nn::Matrix dx = block.backward(G);
        check::shape("dx of the block", dx, B * T, 8);
        check::golden("dx of the block (LayerNorm, GELU, dropout)", dx);
        check::gradient("dL/dx of the block (the backward's dx)", loss, x, dx, 4e-2);
        check::gradient("dL/d ln1.weight of the block", loss, block.ln1.weight.value,
                        block.ln1.weight.grad, 4e-2);
    }
}

TEST_CASE("06-gpt end to end: a 2-layer GPT with dropout learns Tiny Shakespeare in 150 steps", "[end-to-end]") {
    const nn::TextData data = nn::load_text(std::filesystem::path(test::shakespeare_dir()) / "tinyshakespeare.txt");
    const int B = 16, T = 32;
    Config c{.vocab_size = data.vocab.size(), .block_size = T, .n_embd = 32, .n_head = 4, .n_layer = 2, .dropout = 0.1f};
    nn::Rng rng(1337);
    GPTLanguageModel model(c, rng);
    nn::AdamW optimizer(model.parameters(), {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
    const int steps = 150;
    for (int step = 0; step < steps; ++step) {
        const nn::Batch batch = nn::get_batch(data, nn::Split::train, B, T, rng);
        optimizer.zero_grad();
        model.loss(batch);
        model.backward();
        nn::clip_grad_norm(model.parameters(), 1.0f);
        optimizer.step();
    }
    model.train(false);
    const nn::Losses losses = nn::estimate_loss(data, 20, B, T, [&](const nn::Batch& b) { return model.loss(b); });
    WARN("val loss after " << steps << " steps: " << losses.val << " (a uniform guess: ln " << c.vocab_size << " = "
                           << std::log(double(c.vocab_size)) << ")");
    REQUIRE(losses.val < 2.70);  // the reference: 2.63; a block without the feed-forward half's residual gradient: 2.75
}
