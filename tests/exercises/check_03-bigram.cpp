// The checks of 03-bigram's exercises (hints: 03-bigram.md): the embedding's
// backward, softmax cross-entropy, one AdamW step and sampling by the inverse
// CDF, whose reference lives in common/ (the later lessons reuse them), and a
// short training run. Built against the reference, the learner's mine/ or a
// mutant (see CMakeLists.txt).
#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "03-bigram/model.hpp"
#include "common/optim.hpp"
#include "common/sampling.hpp"
#include "common/text.hpp"
#include "tests/exercises/check.hpp"
#include "tests/exercises/language_model_run.hpp"
#include "tests/helpers.hpp"

namespace {

nn::Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, nn::Rng& rng, float stddev = 1.0f) {
    nn::Matrix m(rows, cols);
    rng.fill_normal(nn::as_span(m), 0.0f, stddev);
    return m;
}

// sum(y .* G) in double: a loss whose gradient with respect to y is the random G.
double project(const nn::Matrix& y, const nn::Matrix& g) {
    return (y.cast<double>().array() * g.cast<double>().array()).sum();
}

nn::Matrix scalar(double x) { return nn::Matrix::Constant(1, 1, static_cast<float>(x)); }

std::string show(const std::vector<float>& v) {
    std::string s = "{";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + fmt::format("{}", v[i]);
    return s + "}";
}

}  // namespace

TEST_CASE("Embedding backward: a (5, 3) table read by 6 tokens, two of them more than once",
          "[embedding_backward]") {
    nn::Rng rng(31);
    nn::Embedding emb(5, 3, rng);  // rows 2 and 4 are never read; 1 three times, 3 twice
    const std::vector<int> tokens{1, 3, 1, 0, 3, 1};
    const nn::Matrix dy = check::upstream(6, 3);  // a random upstream gradient
    emb.forward(tokens);
    emb.backward(dy);
    check::shape("dW, the table's gradient", emb.weight.grad, 5, 3);
    check::golden("dW after one backward (row 1 read three times, row 3 twice, rows 2 and 4 never)",
                  emb.weight.grad);
    // A second backward in the same step adds to what is there: the gradient doubles.
    emb.backward(dy);
    check::golden("dW after a second backward of the same dy (gradients add up)", emb.weight.grad);

    // Finite differences of sum(table[tokens] .* dy) with respect to the table.
    emb.weight.grad.setZero();
    emb.forward(tokens);
    emb.backward(dy);
    const nn::Matrix analytic = emb.weight.grad;
    auto loss = [&] { return project(emb.forward(tokens), dy); };
    check::gradient("dW of sum(embedding(tokens) .* G), G random", loss, emb.weight.value, analytic);
}

TEST_CASE("Cross-entropy forward: (4, 5) logits, one row of extreme logits", "[cross_entropy_forward]") {
    nn::Rng rng(32);
    nn::Matrix logits = random_matrix(4, 5, rng, 3.0f);
    // Row 3 is extreme: its target's probability is exp(-2000), 0 in float.
    logits.row(3) << 1000.0f, 0.0f, -1000.0f, 10.0f, -10.0f;
    const std::vector<int> targets{2, 0, 4, 2};
    nn::CrossEntropy ce;
    const double loss = ce.forward(logits, targets);
    check::shape("probs, the softmax of the logits", ce.probs, 4, 5);
    check::golden("probs, the softmax of each row of the logits", ce.probs);
    INFO("the loss is the mean over the 4 rows of -log p[n, target[n]]; row 3's -log p is 2000, "
         "whose exp underflows: compute it as log_sum_exp(row) - row[target]");
    REQUIRE(std::isfinite(loss));
    check::golden("the loss, mean of -log p of the targets", scalar(loss));
}

TEST_CASE("Cross-entropy backward: (4, 5) logits and their targets", "[cross_entropy_backward]") {
    nn::Rng rng(33);
    nn::Matrix logits = random_matrix(4, 5, rng, 3.0f);
    const std::vector<int> targets{2, 0, 4, 2};
    // What forward keeps, set here so that this checks backward alone.
    nn::CrossEntropy ce;
    ce.probs = logits;
    nn::softmax_rows(ce.probs);
    ce.targets = targets;
    const nn::Matrix dlogits = ce.backward();
    check::shape("dlogits", dlogits, 4, 5);
    check::golden("dlogits = (probs - onehot(targets)) / N", dlogits);

    // Finite differences of the mean cross-entropy, computed here from the logits.
    auto loss = [&] {
        double sum = 0;
        for (Eigen::Index n = 0; n < logits.rows(); ++n)
            sum += nn::log_sum_exp(logits.row(n)) - logits(n, targets[static_cast<std::size_t>(n)]);
        return sum / static_cast<double>(logits.rows());
    };
    check::gradient("dlogits of the mean cross-entropy", loss, logits, dlogits);
}

TEST_CASE("AdamW: three steps of a (2, 3) parameter with weight decay and a (1, 3) one without",
          "[adamw_step]") {
    nn::Rng rng(34);
    nn::Parameter a, b;
    a.value = random_matrix(2, 3, rng);
    b.value = random_matrix(1, 3, rng);
    b.decay = false;
    nn::AdamW opt({&a, &b}, {.lr = 0.1f, .weight_decay = 0.5f});
    const nn::Matrix b0 = b.value;

    a.grad = random_matrix(2, 3, rng);
    b.grad = random_matrix(1, 3, rng);
    opt.step();
    INFO("the step count t after one step");
    REQUIRE(opt.steps_taken() == 1);
    check::golden("m of a after step 1 (m = beta1 m + (1 - beta1) g)", opt.first_moments()[0]);
    check::golden("v of a after step 1 (v = beta2 v + (1 - beta2) g^2)", opt.second_moments()[0], 1e-4, 1e-10);
    // With the bias correction, m / (1 - beta1) = g and v / (1 - beta2) = g^2 at t = 1:
    // every entry of a parameter without weight decay moves by lr (times the sign of -g).
    for (Eigen::Index j = 0; j < 3; ++j) {
        const double moved = std::abs(b.value(0, j) - b0(0, j));
        INFO("step 1 of the parameter without weight decay: entry " << j << " moved by " << moved
             << ", expected lr = 0.1 (bias correction: m / (1 - beta1^1) = g, v / (1 - beta2^1) = g^2)");
        REQUIRE(std::abs(moved - 0.1) < 1e-4);
    }
    check::golden("a after step 1 (decoupled weight decay, then the Adam update)", a.value);
    check::golden("b after step 1 (no weight decay)", b.value);

    for (int t = 2; t <= 3; ++t) {
        a.grad = random_matrix(2, 3, rng);
        b.grad = random_matrix(1, 3, rng);
        opt.step();
    }
    check::golden("a after step 3", a.value);
    check::golden("b after step 3", b.value);
}

TEST_CASE("inverse_cdf: fixed draws, then the frequencies of 60000 draws", "[inverse_cdf]") {
    auto draw = [](std::vector<float> probs, float u, int expected, const std::string& why) {
        const int got = nn::inverse_cdf(probs, u);
        INFO("inverse_cdf(probs = " << show(probs) << ", u = " << u << ") returned " << got << ", expected "
             << expected << ": " << why);
        REQUIRE(got == expected);
    };
    const std::vector<float> p{0.1f, 0.2f, 0.3f, 0.4f};
    draw(p, 0.0f, 0, "u = 0 is in token 0's interval [0, 0.1)");
    draw(p, 0.05f, 0, "0.05 is in [0, 0.1)");
    draw(p, 0.15f, 1, "0.15 is in [0.1, 0.3)");
    draw(p, 0.35f, 2, "0.35 is in [0.3, 0.6)");
    draw(p, 0.65f, 3, "0.65 is in [0.6, 1)");
    draw(p, 0.999f, 3, "0.999 is in [0.6, 1)");
    draw({0.0f, 0.5f, 0.0f, 0.5f}, 0.0f, 1, "a token of probability 0 is never drawn, not even for u = 0");
    draw({0.0f, 0.5f, 0.0f, 0.5f}, 0.5f, 3, "a token of probability 0 is never drawn");
    draw({0.3f, 0.3f, 0.3f, 0.0f}, 0.95f, 2,
         "when rounding leaves the sum below u, the last token of probability above 0");

    // Drawn with uniform u, index i comes out with frequency probs[i], within 5 standard deviations.
    const std::vector<float> q{0.05f, 0.25f, 0.0f, 0.1f, 0.4f, 0.2f};
    const int n = 60000;
    std::vector<int> counts(q.size(), 0);
    nn::Rng rng(35);
    for (int k = 0; k < n; ++k) ++counts[static_cast<std::size_t>(nn::inverse_cdf(q, rng.uniform()))];
    for (std::size_t i = 0; i < q.size(); ++i) {
        const double f = counts[i] / static_cast<double>(n);
        const double sigma = std::sqrt(q[i] * (1.0 - q[i]) / n);
        INFO("over " << n << " uniform draws, index " << i << " came out with frequency " << f << ", expected "
             << q[i]);
        REQUIRE(std::abs(f - q[i]) <= 5 * sigma);
    }
}

TEST_CASE("03-bigram: 1500 steps of training reach a validation loss below 2.55", "[end-to-end]") {
    const nn::Losses losses = check::train_language_model(
        [](int vocab_size, nn::Rng& rng) { return BigramLanguageModel(vocab_size, rng); }, 1500, 1e-2f);
    WARN("after 1500 steps: train loss " << losses.train << ", val loss " << losses.val
         << " (the lesson reaches 2.50 here; a uniform guess is ln 65 = 4.17)");
    REQUIRE(std::isfinite(losses.val));
    REQUIRE(losses.val < 2.55);
}
