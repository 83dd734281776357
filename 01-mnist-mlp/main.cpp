// 01-mnist-mlp: the network before it learns.
//
// Loads MNIST, builds Network([784, 30, 10]) with random weights, and walks
// one image through feedforward, printing every shape on the way. Then it
// evaluates the untrained network on the 10,000 test images: about 10%, a
// guess. 02-backprop teaches it to reach 95%.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "01-mnist-mlp/network.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/limits.hpp"
#include "common/mnist.hpp"
#include "common/validators.hpp"

namespace {

// Prints a 28x28 image as text in a frame, darker characters for darker ink.
void draw_digit(const nn::Matrix& image_row) {
    const std::string ramp = " .:-=+*#%@", border = "    +" + std::string(56, '-') + "+";
    fmt::print("{}\n", border);
    for (int y = 0; y < 28; ++y) {
        std::string line = "    |";
        for (int x = 0; x < 28; ++x) {
            const float v = image_row(0, y * 28 + x);
            const char c = ramp[static_cast<std::size_t>(v * (ramp.size() - 1) + 0.5f)];
            line += c;
            line += c;  // two characters per pixel keep the aspect ratio
        }
        fmt::print("{}|\n", line);
    }
    fmt::print("{}\n", border);
}

// Network sizes must take 784 pixels in and give 10 digits out. `source`
// names where they came from: the --sizes flag or a loaded file.
void check_sizes(const std::vector<int>& sizes, const std::string& source = "--sizes") {
    if (sizes.size() < 2 || sizes.size() > 64) nn::fail("{} needs 2 to 64 layers, got {}", source, sizes.size());
    if (sizes.front() != 784 || sizes.back() != 10)
        nn::fail("{} must start with 784 (pixels) and end with 10 (digits), got {}", source,
                 fmt::join(sizes, ","));
    for (int n : sizes)
        if (n < 1 || n > 100000) nn::fail("{}: a layer of {} neurons is not possible", source, n);
    double weights = 0;
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) weights += double(sizes[l]) * double(sizes[l + 1]);
    nn::check_fits(4.0 * weights, fmt::format("{} ({:.0f} weights): its weights", source, weights));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"01-mnist-mlp: a feed-forward network on MNIST, before it learns. Prints the "
                 "shapes of the data, the weights and every activation of feedforward, then the "
                 "untrained network's accuracy.",
                 "01-mnist-mlp"};
    std::string data_dir, load_path;
    std::string sizes_text = "784,30,10";
    std::uint64_t seed = 1;
    int show = 0;
    nn::add_data_option(app, data_dir);
    app.add_option("--sizes", sizes_text, "Neurons per layer, input first")
        ->check(nn::CountList(1, 100000))->capture_default_str();
    app.add_option("--seed", seed, "Seed for the random weights")->check(nn::Seed)->capture_default_str();
    app.add_option("--show", show, "Which test image to draw and feed forward")
        ->check(nn::Count(0, 9999))->capture_default_str();
    app.add_option("--load", load_path,
                   "Load a network saved by 02-backprop --save instead of drawing random weights");
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        const std::vector<int> sizes = nn::split_counts(sizes_text);
        check_sizes(sizes);
        nn::Rng rng(seed);
        const Network net = load_path.empty() ? Network(sizes, rng) : load_network(load_path);
        if (!load_path.empty()) check_sizes(net.sizes, fmt::format("the network in {}", load_path));
        const nn::Mnist mnist = nn::load_mnist(data_dir);
        const auto& [training_data, validation_data, test_data] = mnist;
        fmt::print("MNIST from {}/mnist (the book's split)\n", data_dir);
        fmt::print("  training_data   {:>6} images, each a row of {} pixels in [0, 1]: {}\n",
                   training_data.size(), training_data.images.cols(), nn::shape(training_data.images));
        fmt::print("  validation_data {:>6} images: {}\n", validation_data.size(),
                   nn::shape(validation_data.images));
        fmt::print("  test_data       {:>6} images: {}\n", test_data.size(),
                   nn::shape(test_data.images));
        fmt::print("  each label is one digit 0-9\n\n");

        const nn::Matrix x = test_data.images.row(show);  // (1, 784)
        fmt::print("test_data[{}], label {}:\n", show, test_data.labels[show]);
        draw_digit(x);

        if (load_path.empty())
            fmt::print("\nNetwork({}): biases and weights drawn from N(0, 1), seed {}\n",
                       fmt::join(net.sizes, ", "), seed);
        else
            fmt::print("\nNetwork({}) loaded from {}\n", fmt::join(net.sizes, ", "), load_path);
        long parameters = 0;
        for (int l = 0; l + 1 < net.num_layers(); ++l) {
            fmt::print("  weights[{}] {:<11} biases[{}] {}\n", l, nn::shape(net.weights[l]), l,
                       nn::shape(net.biases[l]));
            parameters += net.weights[l].size() + net.biases[l].size();
        }
        fmt::print("  {} parameters\n\n", parameters);

        fmt::print("feedforward(test_data[{}]), one layer at a time:\n", show);
        std::vector<nn::Matrix> activations;
        const nn::Matrix output = net.feedforward(x, &activations);
        fmt::print("  {:<46} {}\n", "a[0] = x", nn::shape(activations[0]));
        for (int l = 1; l < net.num_layers(); ++l)
            fmt::print("  {:<46} {}\n",
                       fmt::format("a[{}] = sigmoid(a[{}] weights[{}]^T + biases[{}])", l, l - 1,
                                   l - 1, l - 1),
                       nn::shape(activations[l]));
        Eigen::Index guess;
        output.row(0).maxCoeff(&guess);
        fmt::print("  output: {:.2f}\n", fmt::join(output.row(0), " "));
        fmt::print("  the highest output is neuron {}: the network says {}, the label says {}\n\n",
                   guess, guess, test_data.labels[show]);

        const int correct = net.evaluate(test_data);
        fmt::print("evaluate(test_data): {} / {} correct ({:.1f}%)\n", correct, test_data.size(),
                   100.0 * correct / test_data.size());
        if (load_path.empty())
            fmt::print("An untrained network does no better than a guess (10%). "
                       "02-backprop makes it learn.\n");
        return 0;
    });
}
