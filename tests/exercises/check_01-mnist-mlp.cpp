// The checks of 01-mnist-mlp's exercises (hints: 01-mnist-mlp.md). Built
// against the reference, the learner's mine/ or a mutant (see CMakeLists.txt).
#include "01-mnist-mlp/network.hpp"
#include "common/idx.hpp"
#include "tests/exercises/check.hpp"
#include "tests/helpers.hpp"

namespace {

// A [3, 4, 2] network, the same every time.
Network tiny_network() {
    nn::Rng rng(2024);
    return Network({3, 4, 2}, rng);
}

nn::Matrix tiny_inputs() {
    nn::Matrix a(2, 3);
    a << 0.0f, 0.5f, 1.0f,  //
        0.9f, 0.1f, 0.3f;
    return a;
}

void sizes_are(const std::string& bytes, const std::vector<unsigned char>& header,
               const std::vector<std::uint32_t>& expected) {
    const std::vector<std::uint32_t> got = nn::idx_dims(header);
    if (got.size() != expected.size())
        FAIL("idx_dims of " << bytes << " gave " << got.size() << " sizes, expected " << expected.size()
                            << " (one per 4 bytes)");
    for (std::size_t d = 0; d < got.size(); ++d)
        if (got[d] != expected[d])
            FAIL("idx_dims of " << bytes << ": size " << d << " is " << got[d] << ", expected " << expected[d]
                                << " (b0 << 24 | b1 << 16 | b2 << 8 | b3: the most significant byte first)");
}

}  // namespace

TEST_CASE("idx_dims reads big-endian sizes", "[idx_dims]") {
    sizes_are("00 00 ea 60 00 00 00 1c 00 00 00 1c", {0x00, 0x00, 0xea, 0x60, 0, 0, 0, 0x1c, 0, 0, 0, 0x1c},
              {60000, 28, 28});
    sizes_are("00 00 27 10 (the test set's labels)", {0x00, 0x00, 0x27, 0x10}, {10000});
    // Every byte position matters, and a byte of 0x80 or more is not negative.
    sizes_are("01 02 03 04 ff ee dd cc", {0x01, 0x02, 0x03, 0x04, 0xff, 0xee, 0xdd, 0xcc}, {0x01020304u, 0xffeeddccu});
}

TEST_CASE("feedforward through a [3, 4, 2] network", "[feedforward]") {
    const Network net = tiny_network();
    std::vector<nn::Matrix> activations;
    const nn::Matrix output = net.feedforward(tiny_inputs(), &activations);
    check::shape("feedforward's output for 2 examples of a [3, 4, 2] network", output, 2, 2);
    if (activations.size() != 3)
        FAIL("feedforward gave " << activations.size() << " activations, expected 3: the input, then one per layer");
    check::shape("activations[0], the input a^0", activations[0], 2, 3);
    check::shape("activations[1], layer 1's a^1", activations[1], 2, 4);
    check::shape("activations[2], the output a^2", activations[2], 2, 2);
    check::golden("activations[0]: the input a^0 itself", activations[0]);
    check::golden("activations[1]: a^1 = sigmoid(a^0 w^1T + b^1)", activations[1]);
    check::golden("activations[2]: a^2 = sigmoid(a^1 w^2T + b^2)", activations[2]);
    check::golden("feedforward's output (the last activation)", output);
}

TEST_CASE("evaluate counts the images whose most active output is the label", "[evaluate]") {
    // All weights zero: every image's outputs are sigmoid(b), and the answer
    // is the output with the largest bias, here neuron 1.
    nn::Rng rng(1);
    Network net({3, 2, 3}, rng);
    for (auto& w : net.weights) w.setZero();
    net.biases.back() << -1.0f, 2.0f, 0.5f;
    nn::Dataset data;
    data.images = nn::Matrix::Random(6, 3);
    data.labels = {1, 0, 1, 1, 2, 1};
    const int correct = net.evaluate(data);
    if (correct != 4)
        FAIL("evaluate: every answer is neuron 1 (the largest bias, zero weights), and 4 of the labels "
             "{1, 0, 1, 1, 2, 1} are 1, so 4 are right; yours says "
             << correct);
    // A real network, answers that differ from image to image.
    const Network tiny = tiny_network();
    data.images = nn::Matrix(6, 3);
    data.images << 0, 0, 0, 1, 1, 1, 0.2f, 0.9f, 0.1f, 0.7f, 0.3f, 0.5f, 1, 0, 0, 0, 0, 1;
    data.labels = {0, 1, 1, 0, 1, 0};
    check::golden("evaluate: the [3, 4, 2] network's correct answers among 6 images", long{tiny.evaluate(data)});
}

TEST_CASE("MNIST read with your idx_dims, evaluated by an untrained network", "[end-to-end]") {
    const nn::Mnist mnist = nn::load_mnist(test::mnist_dir());
    check::shape("the test images (10000 images of 28 x 28 = 784 pixels)", mnist.test.images, 10000, 784);
    nn::Rng rng(1);
    const Network net({784, 30, 10}, rng);
    check::golden("evaluate: an untrained [784, 30, 10] network (seed 1) on the test set",
                  long{net.evaluate(mnist.test)});
}
