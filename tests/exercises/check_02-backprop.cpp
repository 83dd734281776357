// The checks of 02-backprop's exercises (hints: 02-backprop.md). Built
// against the reference, the learner's mine/ or a mutant (see CMakeLists.txt).
// Layers are numbered as in the book: the input is layer 1, so weights[0]
// and biases[0] belong to layer 2.
#include "02-backprop/network.hpp"
#include "tests/exercises/check.hpp"
#include "tests/helpers.hpp"

namespace {

// A [3, 4, 2] network, the same every time.
Network tiny_network(Cost cost) {
    nn::Rng rng(2024);
    return Network({3, 4, 2}, rng, cost, Init::large);
}

// Two examples, as rows, and their one-hot targets.
void tiny_batch(nn::Matrix& x, nn::Matrix& y) {
    x.resize(2, 3);
    x << 0.0f, 0.5f, 1.0f,  //
        0.9f, 0.1f, 0.3f;
    y.resize(2, 2);
    y << 1.0f, 0.0f,  //
        0.0f, 1.0f;
}

std::string layer(std::size_t l) { return "layer " + std::to_string(l + 2); }

// delta of the book's layer l + 2, and its two other names: the code keeps it
// in deltas()[l], and the program prints it as delta[l + 1] (README: "Layer numbers")
std::string delta_of(std::size_t l) {
    return fmt::format("delta of layer {0}, delta^{0} (deltas()[{1}] in the code, delta[{2}] in the program's printout)",
                       l + 2, l, l + 1);
}

}  // namespace

TEST_CASE("sigmoid_prime is a (1 - a), element by element", "[sigmoid_prime]") {
    nn::Matrix a(2, 3);
    a << 0.5f, 0.1f, 0.9f,  //
        0.0f, 1.0f, 0.25f;
    const nn::Matrix got = sigmoid_prime(a);
    check::shape("sigmoid_prime of a (2, 3) activation", got, 2, 3);
    nn::Matrix expected(2, 3);
    expected << 0.25f, 0.09f, 0.09f,  //
        0.0f, 0.0f, 0.1875f;
    check::close("sigmoid_prime(a) = a (1 - a)", got, expected);
}

TEST_CASE("cost_delta is BP1 for both costs", "[cost_delta]") {
    nn::Matrix a(2, 3), y(2, 3), delta;
    a << 0.8f, 0.1f, 0.3f,  //
        0.2f, 0.6f, 0.9f;
    y << 1.0f, 0.0f, 0.0f,  //
        0.0f, 0.0f, 1.0f;
    cost_delta(Cost::cross_entropy, a, y, delta);
    check::shape("the cross-entropy delta^L for a (2, 3) output", delta, 2, 3);
    check::close("chapter 3's cross-entropy delta^L = a - y", delta, a - y);
    cost_delta(Cost::quadratic, a, y, delta);
    check::shape("the quadratic delta^L for a (2, 3) output", delta, 2, 3);
    const nn::Matrix expected = ((a - y).array() * a.array() * (1.0f - a.array())).matrix();
    check::close("BP1 for the quadratic cost: delta^L = (a - y) * sigma'(z^L), with sigma'(z) = a (1 - a)", delta,
                 expected);
}

TEST_CASE("backprop_one: BP1-BP4 for one example as column vectors", "[backprop_one]") {
    Network net = tiny_network(Cost::quadratic);
    nn::Matrix x_rows, y_rows;
    tiny_batch(x_rows, y_rows);
    const nn::Matrix x = x_rows.row(0).transpose(), y = y_rows.row(0).transpose();  // (3, 1), (2, 1)
    Gradients nabla;
    net.backprop_one(x, y, nabla);
    if (nabla.nabla_b.size() != 2 || nabla.nabla_w.size() != 2)
        FAIL("backprop_one gave " << nabla.nabla_b.size() << " nabla_b and " << nabla.nabla_w.size()
                                  << " nabla_w, expected 2 of each (layers 2 and 3)");
    for (std::size_t l = 0; l < 2; ++l) {
        check::shape("BP3: nabla_b of " + layer(l) + ", a row like biases[" + std::to_string(l) + "]",
                     nabla.nabla_b[l], 1, net.biases[l].cols());
        check::shape("BP4: nabla_w of " + layer(l) + " = delta a_prev^T, like weights[" + std::to_string(l) + "]",
                     nabla.nabla_w[l], net.weights[l].rows(), net.weights[l].cols());
    }
    check::golden("BP1 + BP3: nabla_b of layer 3, the output layer: delta^L = (a - y) * sigma'(z)", nabla.nabla_b[1]);
    check::golden("BP4: nabla_w of layer 3 = delta^3 (a^2)^T", nabla.nabla_w[1]);
    check::golden("BP2 + BP3: nabla_b of layer 2: delta^2 = ((w^3)^T delta^3) * sigma'(z^2)", nabla.nabla_b[0]);
    check::golden("BP4: nabla_w of layer 2 = delta^2 x^T", nabla.nabla_w[0]);
    const nn::Matrix xr = x.transpose(), yr = y.transpose();
    auto cost = [&] { return net.total_cost(xr, yr, 0.0f); };
    for (std::size_t l = 0; l < 2; ++l) {
        check::gradient("BP4: nabla_w of " + layer(l), cost, net.weights[l], nabla.nabla_w[l]);
        check::gradient("BP3: nabla_b of " + layer(l), cost, net.biases[l], nabla.nabla_b[l]);
    }
}

TEST_CASE("backprop: BP1-BP4 over a mini-batch of 2, as matrices", "[backprop]") {
    Network net = tiny_network(Cost::quadratic);
    nn::Matrix x, y;
    tiny_batch(x, y);
    Gradients nabla;
    net.backprop(x, y, nabla);
    if (net.zs().size() != 2 || net.activations().size() != 3 || net.deltas().size() != 2)
        FAIL("backprop kept " << net.zs().size() << " zs, " << net.activations().size() << " activations, "
                              << net.deltas().size() << " deltas; expected 2, 3 and 2");
    for (std::size_t l = 0; l < 2; ++l) {
        const Eigen::Index n = net.weights[l].rows();
        check::shape("z of " + layer(l) + " (zs()[" + std::to_string(l) + "]) = a w^T + b, one row per example",
                     net.zs()[l], 2, n);
        check::shape(delta_of(l) + ", one row per example",
                     net.deltas()[l], 2, n);
        check::shape("BP3: nabla_b of " + layer(l) + ", a row like biases[" + std::to_string(l) + "]",
                     nabla.nabla_b[l], 1, n);
        check::shape("BP4: nabla_w of " + layer(l) + " = delta^T a_prev, like weights[" + std::to_string(l) + "]",
                     nabla.nabla_w[l], n, net.weights[l].cols());
    }
    check::golden("z of layer 2 (zs()[0]) = x w^T + b", net.zs()[0]);
    check::golden("a of layer 2 (activations()[1]) = sigma(z)", net.activations()[1]);
    check::golden("z of layer 3 (zs()[1]) = a^2 w^T + b", net.zs()[1]);
    check::golden("a of layer 3, the output (activations()[2])", net.activations()[2]);
    check::golden("BP1: " + delta_of(1) + " = (a - y) * sigma'(z), the output layer's error", net.deltas()[1]);
    check::golden("BP2: " + delta_of(0) + " = (delta^3 w^3) * sigma'(z^2)", net.deltas()[0]);
    check::golden("BP3: nabla_b of layer 3 = the sum of delta^3's rows", nabla.nabla_b[1]);
    check::golden("BP4: nabla_w of layer 3 = (delta^3)^T a^2, summed over the batch", nabla.nabla_w[1]);
    check::golden("BP3: nabla_b of layer 2 = the sum of delta^2's rows", nabla.nabla_b[0]);
    check::golden("BP4: nabla_w of layer 2 = (delta^2)^T x, summed over the batch", nabla.nabla_w[0]);
    for (Cost c : {Cost::quadratic, Cost::cross_entropy}) {
        const std::string name = c == Cost::quadratic ? "quadratic" : "cross-entropy";
        Network probe = tiny_network(c);
        probe.backprop(x, y, nabla);
        // The cost summed over the batch, as backprop's gradients are.
        auto cost = [&] { return cost_fn(c, probe.feedforward(x), y); };
        for (std::size_t l = 0; l < 2; ++l) {
            check::gradient("BP4 (" + name + " cost): nabla_w of " + layer(l), cost, probe.weights[l],
                            nabla.nabla_w[l]);
            check::gradient("BP3 (" + name + " cost): nabla_b of " + layer(l), cost, probe.biases[l],
                            nabla.nabla_b[l]);
        }
    }
}

TEST_CASE("update_mini_batch takes one step down your gradient", "[update_mini_batch]") {
    nn::Rng rng(5);
    Network net({3, 4, 2}, rng, Cost::cross_entropy, Init::large);
    nn::Matrix x(3, 3), y(3, 2);
    x << 0.1f, 0.2f, 0.3f, 0.9f, 0.8f, 0.7f, 0.5f, 0.0f, 1.0f;
    y << 1, 0, 0, 1, 1, 0;
    const float eta = 0.5f, lmbda = 2.0f;
    const Eigen::Index n = 10;  // the training set's size
    // The step is checked against your own backprop's gradient, so that this
    // exercise is checked on its own.
    Network before = net;
    Gradients nabla;
    before.backprop(x, y, nabla);
    net.update_mini_batch(x, y, eta, lmbda, n);
    const float m = 3.0f, decay = 1.0f - eta * lmbda / float(n);
    for (std::size_t l = 0; l < 2; ++l) {
        const nn::Matrix w = decay * before.weights[l] - (eta / m) * nabla.nabla_w[l];
        const nn::Matrix b = before.biases[l] - (eta / m) * nabla.nabla_b[l];
        check::close("weights of " + layer(l) + " after the step: w -> (1 - eta lmbda / n) w - (eta / m) nabla_w "
                     "(eta 0.5, lmbda 2, n 10, m 3)",
                     net.weights[l], w);
        check::close("biases of " + layer(l) + " after the step: b -> b - (eta / m) nabla_b (eta 0.5, m 3)",
                     net.biases[l], b);
    }
}

TEST_CASE("one epoch of the book's SGD reaches 90% on the test set", "[end-to-end]") {
    const nn::Mnist mnist = nn::load_mnist(test::mnist_dir());
    nn::Rng rng(1);
    Network net({784, 30, 10}, rng, Cost::quadratic, Init::large);
    net.SGD(mnist.training, 1, 10, 3.0f, 0.0f, rng, [](int) {});
    const int correct = net.evaluate(mnist.test);
    WARN("after one epoch ([784, 30, 10], mini-batch 10, eta 3.0, the quadratic cost): " << correct << " / 10000");
    CHECK(correct >= 9000);
}
