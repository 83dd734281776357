// The shared layers against finite differences, AdamW against a step worked
// out by hand, and sampling against its distribution.
#include <catch2/catch.hpp>
#include <array>
#include <cmath>
#include <vector>

#include "common/gradcheck.hpp"
#include "common/layers.hpp"
#include "common/optim.hpp"
#include "common/sampling.hpp"
#include "lm_helpers.hpp"

namespace {
using test::project;
using test::random_matrix;
constexpr double kTolerance = test::kGradTolerance;
}  // namespace

TEST_CASE("check_gradient is tight enough to catch a wrong sign or a dropped term", "[layers]") {
    nn::Rng rng(1);
    nn::Matrix w = random_matrix(3, 4, rng), x = random_matrix(5, 4, rng), r = random_matrix(5, 3, rng);
    auto loss = [&] { return project(x * w.transpose(), r); };
    nn::Matrix good = r.transpose() * x;  // d/dW of sum((x W^T) .* R)
    CHECK(nn::check_gradient(loss, nn::as_span(w), nn::as_span(good)).max_rel_error < kTolerance);
    nn::Matrix flipped = -good;
    CHECK(nn::check_gradient(loss, nn::as_span(w), nn::as_span(flipped)).max_rel_error > 0.5);
    nn::Matrix partial = r.topRows(4).transpose() * x.topRows(4);  // forgets the last row
    CHECK(nn::check_gradient(loss, nn::as_span(w), nn::as_span(partial)).max_rel_error > 0.05);
}

TEST_CASE("Linear backward matches finite differences, with and without bias", "[layers]") {
    for (bool bias : {true, false}) {
        DYNAMIC_SECTION("bias " << bias) {
            nn::Rng rng(2);
            nn::Linear layer(4, 3, bias, rng);
            nn::Matrix x = random_matrix(6, 4, rng), r = random_matrix(6, 3, rng);
            layer.forward(x);
            const nn::Matrix dx = layer.backward(r);
            CHECK(dx.rows() == 6);
            CHECK(dx.cols() == 4);
            auto loss = [&] { return project(layer.forward(x), r); };
            CHECK(nn::check_gradient(loss, nn::as_span(x), std::span<const float>(dx.data(), dx.size()))
                      .max_rel_error < kTolerance);
            CHECK(nn::check_gradient(loss, nn::as_span(layer.weight.value), nn::as_span(layer.weight.grad))
                      .max_rel_error < kTolerance);
            if (bias) {
                CHECK(nn::check_gradient(loss, nn::as_span(layer.bias.value), nn::as_span(layer.bias.grad))
                          .max_rel_error < kTolerance);
            } else {
                CHECK(layer.bias.value.size() == 0);
                CHECK(layer.forward(nn::Matrix::Zero(2, 4)).isZero());
            }
            // A second backward adds to the gradients rather than replacing them.
            const nn::Matrix once = layer.weight.grad;
            layer.forward(x);
            layer.backward(r);
            CHECK(layer.weight.grad.isApprox(2 * once));
        }
    }
}

TEST_CASE("Linear gives the same bits with 1, 2, 3 and 4 threads, for shapes that split raggedly", "[layers]") {
    // 101 rows: with 3 threads a plain split would put boundaries at rows 33
    // and 67, where Eigen's kernel would take different rows 4 at a time.
    for (const auto& [N, in, out] : {std::array{101, 333, 77}, {99, 128, 199}, {130, 200, 300}, {768, 128, 65}}) {
        nn::Rng rng(3);
        nn::Linear ref(in, out, true, rng);
        const nn::Matrix x = random_matrix(N, in, rng), dy = random_matrix(N, out, rng);
        std::vector<nn::Matrix> results;  // y, dx, dW, db with 1 thread, then with each other count
        for (int threads = 1; threads <= 4; ++threads) {
            omp_set_num_threads(threads);
            nn::Linear layer = ref;
            layer.forward(x);
            layer.backward(dy);
            const nn::Matrix got[] = {layer.y, layer.dx, layer.weight.grad, layer.bias.grad};
            for (int i = 0; i < 4; ++i) {
                if (threads == 1) results.push_back(got[i]);
                INFO(N << " x " << in << " -> " << out << ", " << threads << " threads, result " << i);
                CHECK(got[i] == results[static_cast<std::size_t>(i)]);
            }
        }
        omp_set_num_threads(omp_get_num_procs());
    }
}

TEST_CASE("set_threads gives OpenMP the threads and Eigen none of its own", "[layers]") {
    // A parallel region whose `if` is false still runs, on a team of one
    // thread; Eigen, given threads of its own, would then open a nested
    // region for each product, with new threads every time (100x slower).
    nn::set_threads(2);
    CHECK(omp_get_max_threads() == 2);
    CHECK(Eigen::nbThreads() == 1);
    nn::set_threads(omp_get_num_procs());
    CHECK(Eigen::nbThreads() == 1);
}

TEST_CASE("Embedding backward matches finite differences, repeated tokens included", "[layers]") {
    nn::Rng rng(3);
    nn::Embedding table(5, 3, rng);
    const std::vector<int> idx{4, 0, 4, 2, 4, 1};  // token 3 unused, 4 three times
    nn::Matrix r = random_matrix(6, 3, rng);
    const nn::Matrix& y = table.forward(idx);
    CHECK(y.row(3) == table.weight.value.row(2));
    table.backward(r);
    CHECK(table.weight.grad.row(3).isZero());
    auto loss = [&] { return project(table.forward(idx), r); };
    CHECK(nn::check_gradient(loss, nn::as_span(table.weight.value), nn::as_span(table.weight.grad))
              .max_rel_error < kTolerance);
}

TEST_CASE("CrossEntropy matches -log softmax and its backward finite differences", "[layers]") {
    nn::Rng rng(4);
    nn::Matrix logits = random_matrix(6, 5, rng) * 2;
    const std::vector<int> targets{0, 4, 2, 2, 1, 3};
    nn::CrossEntropy ce;
    const double loss0 = ce.forward(logits, targets);
    double expected = 0;
    for (int n = 0; n < 6; ++n) {
        double z = 0;
        for (int v = 0; v < 5; ++v) z += std::exp(double(logits(n, v)));
        expected -= std::log(std::exp(double(logits(n, targets[n]))) / z);
    }
    CHECK(loss0 == Approx(expected / 6).epsilon(1e-6));
    CHECK(ce.probs.rowwise().sum().isOnes(1e-6f));
    const nn::Matrix dlogits = ce.backward();
    auto loss = [&] { return double(ce.forward(logits, targets)); };
    CHECK(nn::check_gradient(loss, nn::as_span(logits), std::span<const float>(dlogits.data(), dlogits.size()),
                             1e-2, 64, 1e-4)
              .max_rel_error < kTolerance);
    // Uniform logits: the loss of guessing among V = 5 is log 5.
    CHECK(ce.forward(nn::Matrix::Zero(3, 5), std::vector<int>{0, 1, 2}) == Approx(std::log(5.0)));
    // Large logits do not overflow.
    nn::Matrix big(1, 3);
    big << 1000, 0, -1000;
    CHECK(ce.forward(big, std::vector<int>{1}) == Approx(1000.0));
}

TEST_CASE("softmax_rows turns -infinity into zero weight", "[layers]") {
    nn::Matrix m(2, 3);
    m << 1, -INFINITY, 1, 0, std::log(3.0f), -INFINITY;
    nn::softmax_rows(m);
    CHECK(m(0, 0) == Approx(0.5));
    CHECK(m(0, 1) == 0.0f);
    CHECK(m(1, 1) == Approx(0.75));
    CHECK(m(1, 2) == 0.0f);
    // Rows of 8 and 16 floats go through Eigen's vectorised exp, whose exp(-inf) is 2.9e-39,
    // not 0: the causal mask of a head with T = 8 or 16, row by row.
    for (int T : {8, 16}) {
        nn::Matrix wei = nn::Matrix::Zero(T, T);
        for (int i = 0; i < T; ++i)
            for (int j = i + 1; j < T; ++j) wei(i, j) = -INFINITY;
        nn::softmax_rows(wei);
        for (int i = 0; i < T; ++i)
            for (int j = 0; j < T; ++j) {
                INFO("T = " << T << ", row " << i << ", column " << j);
                if (j <= i) CHECK(wei(i, j) == Approx(1.0 / (i + 1)));
                else CHECK(wei(i, j) == 0.0f);
            }
    }
}

TEST_CASE("AdamW takes the step worked out by hand", "[optim]") {
    nn::Parameter p, q;
    p.resize(1, 1);
    q.resize(1, 1);
    q.decay = false;  // e.g. a bias in 06: no weight decay
    p.value(0, 0) = q.value(0, 0) = 1.0f;
    nn::AdamW opt({&p, &q}, {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f});

    // Step 1, g = 0.5: decay 1 -> 0.99; m = 0.05, v = 0.00025; m^ = 0.5, v^ = 0.25;
    // p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.89.
    p.grad(0, 0) = q.grad(0, 0) = 0.5f;
    opt.step();
    CHECK(p.value(0, 0) == Approx(0.89).epsilon(1e-6));
    CHECK(q.value(0, 0) == Approx(0.90).epsilon(1e-6));

    // Step 2, g = -0.25: decay 0.89 -> 0.8811; m = 0.02, v = 0.00031225;
    // m^ = 0.02 / 0.19, v^ = 0.00031225 / 0.001999; p = 0.8811 - 0.1 m^ / (sqrt(v^) + eps).
    opt.zero_grad();
    CHECK(p.grad(0, 0) == 0.0f);
    p.grad(0, 0) = q.grad(0, 0) = -0.25f;
    opt.step();
    const double m_hat = 0.02 / 0.19, v_hat = 0.00031225 / 0.001999;
    CHECK(p.value(0, 0) == Approx(0.8811 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8)).epsilon(1e-5));
    CHECK(q.value(0, 0) == Approx(0.90 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8)).epsilon(1e-5));
    CHECK(opt.steps_taken() == 2);
}

TEST_CASE("clip_grad_norm scales all gradients together", "[optim]") {
    nn::Parameter a, b;
    a.resize(1, 1);
    b.resize(1, 2);
    a.grad << 3;
    b.grad << 0, 4;
    CHECK(nn::clip_grad_norm({&a, &b}, 10.0f) == Approx(5.0));
    CHECK(a.grad(0, 0) == 3.0f);  // under the limit: unchanged
    CHECK(nn::clip_grad_norm({&a, &b}, 1.0f) == Approx(5.0));
    CHECK(a.grad(0, 0) == Approx(0.6));
    CHECK(b.grad(0, 1) == Approx(0.8));
}

TEST_CASE("sampling follows the distribution, temperature and top-k", "[sampling]") {
    nn::Rng rng(5);
    const std::vector<float> probs{0.2f, 0.0f, 0.8f};
    int counts[3] = {0, 0, 0};
    for (int k = 0; k < 20000; ++k) ++counts[nn::multinomial(probs, rng)];
    CHECK(counts[1] == 0);
    CHECK(counts[2] / 20000.0 == Approx(0.8).margin(0.015));

    const std::vector<float> logits{1.0f, 3.0f, 2.0f, -1.0f};
    for (int k = 0; k < 200; ++k) CHECK(nn::sample(logits, rng, 1.0f, 1) == 1);
    int seen[4] = {0, 0, 0, 0};
    for (int k = 0; k < 2000; ++k) ++seen[nn::sample(logits, rng, 1.0f, 2)];
    CHECK(seen[0] == 0);
    CHECK(seen[3] == 0);
    CHECK(seen[2] > 300);  // p = 1 / (1 + e) ~ 0.27 of the top two
    int argmax = 0;
    for (int k = 0; k < 2000; ++k) argmax += nn::sample(logits, rng, 0.05f) == 1;
    CHECK(argmax > 1990);
    nn::Rng r1(9), r2(9);
    for (int k = 0; k < 50; ++k) CHECK(nn::sample(logits, r1) == nn::sample(logits, r2));
}

TEST_CASE("log_sum_exp is log(sum(exp)) of a row, without overflow, in float rows and double ones", "[layers]") {
    nn::Matrix z(2, 4);
    z << 0.5f, -1.0f, 2.0f, 0.25f,  //
        1000.0f, 999.0f, -1000.0f, 0.0f;
    const double direct = std::log(std::exp(0.5) + std::exp(-1.0) + std::exp(2.0) + std::exp(0.25));
    CHECK(nn::log_sum_exp(z.row(0)) == Approx(direct).epsilon(1e-6));
    CHECK(nn::log_sum_exp(z.row(0).cast<double>()) == Approx(direct).epsilon(1e-12));
    // exp(1000) overflows even a double: the max is taken out first.
    const double big = 1000.0 + std::log(1.0 + std::exp(-1.0));
    CHECK(nn::log_sum_exp(z.row(1)) == Approx(big).epsilon(1e-6));
    CHECK(nn::log_sum_exp(z.row(1).cast<double>()) == Approx(big).epsilon(1e-12));
    // -log softmax(z)_v = lse - z_v: the probabilities sum to 1.
    double total = 0;
    for (int v = 0; v < 4; ++v) total += std::exp(double(z(0, v)) - nn::log_sum_exp(z.row(0).cast<double>()));
    CHECK(total == Approx(1.0).epsilon(1e-12));
}
