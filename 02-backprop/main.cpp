// 02-backprop: the network learns.
//
// Trains Network([784, 30, 10]) on MNIST with mini-batch stochastic gradient
// descent, the gradients computed by backpropagation, and prints the test
// accuracy after every epoch as the book does: "Epoch 0: 9043 / 10000". With
// the book's settings (30 epochs, mini-batch 10, eta 3.0, quadratic cost) it
// reaches about 95%.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "02-backprop/network.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/metrics.hpp"
#include "common/mnist.hpp"
#include "common/progress.hpp"
#include "common/validators.hpp"

namespace {

std::string shape(const auto& m) { return fmt::format("({}, {})", m.rows(), m.cols()); }

// Network sizes must take 784 pixels in and give 10 digits out.
void check_sizes(const std::vector<int>& sizes) {
    if (sizes.size() < 2) nn::fail("--sizes needs at least two layers, got {}", sizes.size());
    if (sizes.front() != 784 || sizes.back() != 10)
        nn::fail("--sizes must start with 784 (pixels) and end with 10 (digits), got {}",
                 fmt::join(sizes, ","));
    for (int n : sizes)
        if (n < 1 || n > 100000) nn::fail("--sizes: a layer of {} neurons is not possible", n);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"02-backprop: trains a feed-forward network on MNIST with stochastic gradient "
                 "descent and backpropagation, printing the test accuracy after each epoch.",
                 "02-backprop"};
    std::string data_dir, save_path, metrics_path, evaluation = "test";
    std::vector<int> sizes{784, 30, 10};
    std::uint64_t seed = 1;
    int epochs = 30, mini_batch_size = 10, train_size = 50000;
    float eta = 3.0f, lmbda = 0.0f;
    Cost cost = Cost::quadratic;
    Init init = Init::large;
    nn::add_data_option(app, data_dir);
    app.add_option("--sizes", sizes, "Neurons per layer, input first")
        ->delimiter(',')->capture_default_str();
    app.add_option("--epochs", epochs, "Passes over the training data")
        ->check(CLI::Range(1, 100000))->capture_default_str();
    app.add_option("--batch", mini_batch_size, "Mini-batch size")
        ->check(CLI::Range(1, 50000))->capture_default_str();
    app.add_option("--eta", eta, "Learning rate")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--lambda", lmbda, "L2 regularization strength (chapter 3)")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--cost", cost, "quadratic (chapter 1) or cross-entropy (chapter 3)")
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, Cost>{{"quadratic", Cost::quadratic},
                                        {"cross-entropy", Cost::cross_entropy}}))
        ->default_str("quadratic");
    app.add_option("--init", init,
                   "Weights from N(0, 1): large (chapter 1), or N(0, 1/n_in): scaled (chapter 3)")
        ->transform(CLI::CheckedTransformer(
            std::map<std::string, Init>{{"large", Init::large}, {"scaled", Init::scaled}}))
        ->default_str("large");
    app.add_option("--train-size", train_size,
                   "Train on the first N of the 50,000 training images (for quick runs)")
        ->check(CLI::Range(1, 50000))->capture_default_str();
    app.add_option("--evaluate", evaluation,
                   "Which set to report after each epoch: test (chapter 1) or validation "
                   "(chapter 3, for choosing hyper-parameters)")
        ->check(CLI::IsMember({"test", "validation"}))->capture_default_str();
    app.add_option("--seed", seed, "Seed for the weights and the shuffling")->capture_default_str();
    app.add_option("--save", save_path, "Save the trained network here (01-mnist-mlp --load reads it)");
    app.add_option("--metrics", metrics_path,
                   "Write one JSON line per epoch here: epoch, test accuracy, seconds");
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        check_sizes(sizes);
        nn::Rng rng(seed);
        Network net(sizes, rng, cost, init);
        nn::Mnist mnist = nn::load_mnist(data_dir);
        auto& [training_data, validation_data, test_data] = mnist;
        if (train_size < training_data.size()) {
            training_data.images.conservativeResize(train_size, Eigen::NoChange);
            training_data.labels.resize(train_size);
        }
        fmt::print("MNIST from {}/mnist (the book's split)\n", data_dir);
        fmt::print("  training_data   {:>6} images: {}\n", training_data.size(),
                   shape(training_data.images));
        fmt::print("  validation_data {:>6} images: {}\n", validation_data.size(),
                   shape(validation_data.images));
        fmt::print("  test_data       {:>6} images: {}\n\n", test_data.size(),
                   shape(test_data.images));

        fmt::print("Network({}): biases from N(0, 1), weights from {}, seed {}\n",
                   fmt::join(net.sizes, ", "), init == Init::large ? "N(0, 1)" : "N(0, 1/n_in)",
                   seed);
        for (int l = 0; l + 1 < net.num_layers(); ++l)
            fmt::print("  weights[{}] {:<11} biases[{}] {}\n", l, shape(net.weights[l]), l,
                       shape(net.biases[l]));
        fmt::print("\nSGD: {} epochs, mini-batches of {}, eta {}, lambda {}, {} cost\n", epochs,
                   mini_batch_size, eta, lmbda,
                   cost == Cost::quadratic ? "quadratic" : "cross-entropy");
        fmt::print("  each step: x {} and one-hot y {} -> backprop -> nabla_w, nabla_b\n",
                   shape(nn::Matrix(mini_batch_size, 784)),
                   shape(nn::Matrix(mini_batch_size, 10)));

        const nn::Dataset& evaluation_data = evaluation == "test" ? test_data : validation_data;
        nn::MetricsLog metrics(metrics_path);
        nn::Stopwatch total, epoch_clock;
        int correct = 0;
        net.SGD(training_data, epochs, mini_batch_size, eta, lmbda, rng, [&](int epoch) {
            const double seconds = epoch_clock.seconds();  // training time of this epoch
            correct = net.evaluate(evaluation_data);
            fmt::print("Epoch {}: {} / {}  ({:.2f} s)\n", epoch, correct, evaluation_data.size(),
                       seconds);
            std::fflush(stdout);
            metrics.write(fmt::format(R"({{"epoch": {}, "{}_accuracy": {:.4f}, "seconds": {:.4f}}})",
                                      epoch, evaluation, double(correct) / evaluation_data.size(),
                                      seconds));
            epoch_clock.restart();
        });
        fmt::print("\nTrained in {:.1f} s: {} / {} {} images correct ({:.2f}%)\n",
                   total.seconds(), correct, evaluation_data.size(), evaluation,
                   100.0 * correct / evaluation_data.size());
        if (!save_path.empty()) {
            save_network(net, save_path);
            fmt::print("Saved the network to {} (01-mnist-mlp --load {} shows it)\n", save_path,
                       save_path);
        }
        return 0;
    });
}
