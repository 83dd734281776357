// 02-backprop's network: backprop against finite differences, the matrix
// form against the book's per-example loop (--per-example), SGD actually
// learning, and the saved-network format (common/network_file.hpp).
#include <catch2/catch.hpp>
#include <fstream>

#include "02-backprop/network.hpp"
#include "common/fileio.hpp"
#include "common/gradcheck.hpp"
#include "helpers.hpp"

namespace {

// A random batch: m inputs in [0, 1) and one-hot targets over `classes`.
void random_batch(nn::Rng& rng, int m, int inputs, int classes, nn::Matrix& x, nn::Matrix& y) {
    x.resize(m, inputs);
    for (float& v : nn::as_span(x)) v = rng.uniform();
    y.setZero(m, classes);
    for (int i = 0; i < m; ++i) y(i, static_cast<Eigen::Index>(rng.below(classes))) = 1.0f;
}

const nn::Mnist& mnist() {
    static const nn::Mnist data = nn::load_mnist(test::mnist_dir());
    return data;
}

nn::Dataset first(const nn::Dataset& set, int n) {
    nn::Dataset part;
    part.images = set.images.topRows(n);
    part.labels.assign(set.labels.begin(), set.labels.begin() + n);
    return part;
}

void one_hot(const nn::Dataset& set, nn::Matrix& y) {
    y.setZero(set.size(), 10);
    for (Eigen::Index i = 0; i < set.size(); ++i) y(i, set.labels[i]) = 1.0f;
}

}  // namespace

TEST_CASE("backprop matches central finite differences", "[02-backprop]") {
    for (Cost cost : {Cost::quadratic, Cost::cross_entropy}) {
        DYNAMIC_SECTION("cost " << (cost == Cost::quadratic ? "quadratic" : "cross-entropy")) {
            nn::Rng rng(7);
            Network net({6, 5, 4, 3}, rng, cost, Init::scaled);
            nn::Matrix x, y;
            random_batch(rng, 8, 6, 3, x, y);
            Gradients nabla;
            net.backprop(x, y, nabla);
            // backprop sums over the batch; total_cost averages: divide by m.
            const double m = static_cast<double>(x.rows());
            for (std::size_t l = 0; l < net.weights.size(); ++l) {
                nn::Matrix gw = nabla.nabla_w[l] / m;
                nn::RowVector gb = nabla.nabla_b[l] / m;
                auto loss = [&] { return net.total_cost(x, y, 0.0f); };
                const auto w = nn::check_gradient(loss, nn::as_span(net.weights[l]), nn::as_span(gw), 1e-2, 200);
                const auto b = nn::check_gradient(loss, nn::as_span(net.biases[l]), nn::as_span(gb), 1e-2, 200);
                INFO("layer " << l << ": worst weight " << w.analytic << " vs " << w.numeric
                              << ", worst bias " << b.analytic << " vs " << b.numeric);
                CHECK(w.max_rel_error < 1e-2);
                CHECK(b.max_rel_error < 1e-2);
            }
        }
    }
}

TEST_CASE("update_mini_batch with L2 steps down the regularized cost's gradient", "[02-backprop]") {
    // With n = m, the step w -> (1 - eta lmbda / n) w - (eta / m) nabla_w is
    // exactly -eta times the gradient of total_cost(x, y, lmbda).
    nn::Rng rng(11);
    Network net({5, 4, 3}, rng, Cost::cross_entropy, Init::large);
    nn::Matrix x, y;
    random_batch(rng, 6, 5, 3, x, y);
    const float eta = 1e-3f, lmbda = 2.0f;
    const Network before = net;
    net.update_mini_batch(x, y, eta, lmbda, x.rows());
    Network probe = before;
    for (std::size_t l = 0; l < net.weights.size(); ++l) {
        nn::Matrix step = (before.weights[l] - net.weights[l]) / eta;  // = d total_cost / dw
        auto loss = [&] { return probe.total_cost(x, y, lmbda); };
        const auto w = nn::check_gradient(loss, nn::as_span(probe.weights[l]), nn::as_span(step), 1e-2, 100);
        INFO("layer " << l << " worst " << w.analytic << " vs " << w.numeric);
        CHECK(w.max_rel_error < 2e-2);
    }
}

TEST_CASE("matrix backprop equals the book's per-example loop (--per-example)", "[02-backprop]") {
    for (Cost cost : {Cost::quadratic, Cost::cross_entropy}) {
        DYNAMIC_SECTION("cost " << (cost == Cost::quadratic ? "quadratic" : "cross-entropy")) {
            nn::Rng rng(3);
            Network net({7, 6, 5, 4}, rng, cost);
            nn::Matrix x, y;
            random_batch(rng, 5, 7, 4, x, y);
            Gradients batch, each;
            net.backprop(x, y, batch);
            net.backprop_each(x, y, each);  // the lesson's loop of backprop_one
            for (std::size_t l = 0; l < net.weights.size(); ++l) {
                INFO("layer " << l);
                CHECK((batch.nabla_w[l] - each.nabla_w[l]).cwiseAbs().maxCoeff() < 1e-5f);
                CHECK((batch.nabla_b[l] - each.nabla_b[l]).cwiseAbs().maxCoeff() < 1e-5f);
                CHECK(batch.nabla_w[l].cwiseAbs().maxCoeff() > 1e-3f);  // not trivially zero
            }
            // One example on its own: backprop_one of a column is backprop of a row.
            Gradients one, row;
            net.backprop_one(x.row(2).transpose(), y.row(2).transpose(), one);
            net.backprop(x.row(2), y.row(2), row);
            for (std::size_t l = 0; l < net.weights.size(); ++l) {
                CHECK((one.nabla_w[l] - row.nabla_w[l]).cwiseAbs().maxCoeff() < 1e-6f);
                CHECK((one.nabla_b[l] - row.nabla_b[l]).cwiseAbs().maxCoeff() < 1e-6f);
            }
            // And a whole step of update_mini_batch lands on the same weights.
            Network other = net;
            net.update_mini_batch(x, y, 0.5f, 1.0f, 100, Backprop::matrix);
            other.update_mini_batch(x, y, 0.5f, 1.0f, 100, Backprop::per_example);
            for (std::size_t l = 0; l < net.weights.size(); ++l) {
                CHECK((net.weights[l] - other.weights[l]).cwiseAbs().maxCoeff() < 1e-6f);
                CHECK((net.biases[l] - other.biases[l]).cwiseAbs().maxCoeff() < 1e-6f);
            }
        }
    }
}

TEST_CASE("backprop_one matches central finite differences", "[02-backprop]") {
    nn::Rng rng(8);
    Network net({6, 5, 3}, rng, Cost::quadratic, Init::scaled);
    nn::Matrix x, y;
    random_batch(rng, 1, 6, 3, x, y);
    Gradients nabla;
    net.backprop_one(x.transpose(), y.transpose(), nabla);
    for (std::size_t l = 0; l < net.weights.size(); ++l) {
        auto loss = [&] { return net.total_cost(x, y, 0.0f); };
        const auto w = nn::check_gradient(loss, nn::as_span(net.weights[l]), nn::as_span(nabla.nabla_w[l]), 1e-2, 200);
        const auto b = nn::check_gradient(loss, nn::as_span(net.biases[l]), nn::as_span(nabla.nabla_b[l]), 1e-2, 200);
        INFO("layer " << l << ": worst weight " << w.analytic << " vs " << w.numeric);
        CHECK(w.max_rel_error < 1e-2);
        CHECK(b.max_rel_error < 1e-2);
    }
}

TEST_CASE("one SGD epoch on a slice of MNIST lowers the cost", "[02-backprop]") {
    const nn::Dataset slice = first(mnist().training, 1000);
    nn::Matrix y;
    one_hot(slice, y);
    nn::Rng rng(5);
    Network net({784, 30, 10}, rng);
    const double before = net.total_cost(slice.images, y, 0.0f);
    int epochs_run = 0;
    net.SGD(slice, 1, 10, 3.0f, 0.0f, rng, [&](int) { ++epochs_run; });
    const double after = net.total_cost(slice.images, y, 0.0f);
    CHECK(epochs_run == 1);
    CHECK(after < 0.8 * before);
}

TEST_CASE("training on 5,000 images passes 85% test accuracy", "[02-backprop]") {
    const nn::Dataset slice = first(mnist().training, 5000);
    nn::Rng rng(1);
    Network net({784, 30, 10}, rng);
    net.SGD(slice, 10, 10, 3.0f, 0.0f, rng, [](int) {});
    const int correct = net.evaluate(mnist().test);
    INFO("correct: " << correct << " / 10000");
    CHECK(correct > 8500);
}

TEST_CASE("the saved-network format round-trips and refuses damaged files", "[02-backprop]") {
    test::ScratchDir dir;
    const auto path = (dir / "net.bin").string();
    nn::Rng rng(2);
    const Network net({784, 16, 10}, rng);
    save_network(net, path);
    const Network loaded = load_network(path);
    REQUIRE(loaded.sizes == net.sizes);
    for (std::size_t l = 0; l < net.weights.size(); ++l) {
        CHECK(loaded.weights[l] == net.weights[l]);
        CHECK(loaded.biases[l] == net.biases[l]);
    }

    std::string bytes = nn::read_file(path);
    auto rewrite = [&](const std::string& b) { std::ofstream(path, std::ios::binary | std::ios::trunc) << b; };
    SECTION("truncated") {
        rewrite(bytes.substr(0, bytes.size() / 2));
        REQUIRE_THROWS_WITH(load_network(path), Catch::Contains("truncated"));
    }
    SECTION("corrupted") {
        bytes[bytes.size() / 2] ^= 0x01;
        rewrite(bytes);
        REQUIRE_THROWS_WITH(load_network(path), Catch::Contains("checksum mismatch"));
    }
    SECTION("not a network") {
        rewrite("hello, world, this is not a network file at all");
        REQUIRE_THROWS_WITH(load_network(path), Catch::Contains("wrong magic"));
    }
    SECTION("sizes that do not match the values, refused before allocating them") {
        nn::BinaryWriter out(path, nn::kNetworkMagic, nn::kNetworkVersion);  // a valid container whose sizes promise 157 million floats
        for (std::uint32_t n : {3u, 784u, 200000u, 10u}) out.put<std::uint32_t>(n);
        out.commit();
        REQUIRE_THROWS_WITH(load_network(path),
                            Catch::Contains("holds 0 bytes of values where a network of sizes 784,200000,10 needs 636000072"));
    }
}

TEST_CASE("the README's worked [2, 2, 1] example, number by number", "[02-backprop]") {
    // 02-backprop/README.md, "A worked example, every number": the table's values.
    nn::Rng unused(0);
    Network net({2, 2, 1}, unused, Cost::quadratic);
    net.weights[0] << 0.5f, -0.5f, 0.25f, 1.0f;
    net.biases[0] << 0.0f, 0.5f;
    net.weights[1] << 1.0f, -1.0f;
    net.biases[1] << 0.5f;
    nn::Matrix x(2, 1), y(1, 1);
    x << 1.0f, 0.5f;
    y << 1.0f;
    Gradients one;
    net.backprop_one(x, y, one);
    using Catch::Matchers::WithinAbs;
    CHECK_THAT(one.nabla_b[1](0), WithinAbs(-0.105166, 1e-6));  // BP1, BP3: delta^3
    CHECK_THAT(one.nabla_b[0](0), WithinAbs(-0.025885, 1e-6));  // BP2: delta^2
    CHECK_THAT(one.nabla_b[0](1), WithinAbs(0.018205, 1e-6));
    CHECK_THAT(one.nabla_w[1](0, 0), WithinAbs(-0.059122, 1e-6));  // BP4
    CHECK_THAT(one.nabla_w[1](0, 1), WithinAbs(-0.081746, 1e-6));
    CHECK_THAT(one.nabla_w[0](0, 1), WithinAbs(-0.012943, 1e-6));
    CHECK_THAT(one.nabla_w[0](1, 1), WithinAbs(0.009102, 1e-6));
    CHECK_THAT(net.total_cost(x.transpose(), y, 0.0f), WithinAbs(0.092131, 1e-6));
    // The batch of two (the second example x = (0, 1), y = 0): delta^T a is the sum.
    nn::Matrix xs(2, 2), ys(2, 1);
    xs << 1.0f, 0.5f, 0.0f, 1.0f;
    ys << 1.0f, 0.0f;
    Gradients batch;
    net.backprop(xs, ys, batch);
    CHECK_THAT(net.deltas()[1](1, 0), WithinAbs(0.128631, 1e-6));
    CHECK_THAT(batch.nabla_w[1](0, 0), WithinAbs(-0.010559, 1e-6));
    CHECK_THAT(batch.nabla_w[1](0, 1), WithinAbs(0.023420, 1e-6));
}
