// 02-backprop: the network learns.
//
// Trains Network([784, 30, 10]) on MNIST with mini-batch stochastic gradient
// descent, the gradients computed by backpropagation, and prints the test
// accuracy after every epoch as the book does: "Epoch 0: 9106 / 10000". With
// the book's settings (30 epochs, mini-batch 10, eta 3.0, quadratic cost) it
// reaches about 95%. With --monitor it also prints, after every epoch, the
// cost and the accuracy on the training data and on the evaluation data, as
// network2.py's monitor_* flags do (chapter 3's overfitting experiment).
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "02-backprop/network.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/limits.hpp"
#include "common/metrics.hpp"
#include "common/mnist.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/validators.hpp"

namespace {

// Network sizes must take 784 pixels in and give 10 digits out. `source`
// names where they came from: the --sizes flag or a loaded file. Refuses a
// network whose largest buffers cannot fit: its weights and their gradients;
// a mini-batch's activations, z and deltas at every layer; and evaluate's
// z and activation at the widest layer for all 10,000 images at once.
void check_sizes(const std::vector<int>& sizes, int mini_batch_size, const std::string& source = "--sizes") {
    if (sizes.size() < 2 || sizes.size() > 64) nn::fail("{} needs 2 to 64 layers, got {}", source, sizes.size());
    if (sizes.front() != 784 || sizes.back() != 10)
        nn::fail("{} must start with 784 (pixels) and end with 10 (digits), got {}", source,
                 fmt::join(sizes, ","));
    for (int n : sizes)
        if (n < 1 || n > 100000) nn::fail("{}: a layer of {} neurons is not possible", source, n);
    double weights = 0;
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) weights += double(sizes[l]) * double(sizes[l + 1]);
    nn::check_fits(8.0 * weights, fmt::format("{} ({:.0f} weights): its weights and their gradients", source, weights));
    double neurons = 0;
    for (int n : sizes) neurons += n;
    const double widest = *std::max_element(sizes.begin(), sizes.end());
    nn::check_fits(8.0 * weights + 12.0 * mini_batch_size * neurons + 8.0 * 10000 * widest,
                   fmt::format("{} with mini-batches of {}: its weights, their gradients, the activations of a "
                               "mini-batch and of the 10,000 images evaluated", source, mini_batch_size));
}

// Walks the first mini-batch through feedforward and backprop and prints the
// shape of everything one step of update_mini_batch touches.
void print_one_step(Network net, const nn::Dataset& training_data, int mini_batch_size) {
    const Eigen::Index m = std::min<Eigen::Index>(mini_batch_size, training_data.size());
    const nn::Matrix x = training_data.images.topRows(m);
    nn::Matrix y = nn::Matrix::Zero(m, 10);
    for (Eigen::Index i = 0; i < m; ++i) y(i, training_data.labels[i]) = 1.0f;
    std::vector<nn::Matrix> activations;
    net.feedforward(x, &activations);
    Gradients nabla;
    net.backprop(x, y, nabla);
    const std::vector<nn::Matrix>& deltas = net.deltas();  // deltas[l - 1] is layer l's delta[l]
    fmt::print("  one step of update_mini_batch, on the first mini-batch:\n");
    fmt::print("    x {}, one-hot y {}\n", nn::shape(x), nn::shape(y));
    for (int l = 1; l < net.num_layers(); ++l)
        fmt::print("    forward:  z[{}] = a[{}] weights[{}]^T + biases[{}], a[{}] = sigmoid(z[{}])  {}\n",
                   l, l - 1, l - 1, l - 1, l, l, nn::shape(activations[l]));
    for (int l = net.num_layers() - 1; l >= 1; --l)
        fmt::print("    backward: delta[{}] {:<10} -> nabla_w[{}] {:<11} nabla_b[{}] {}\n", l,
                   nn::shape(deltas[l - 1]), l - 1, nn::shape(nabla.nabla_w[l - 1]), l - 1,
                   nn::shape(nabla.nabla_b[l - 1]));
}

// The same step as the book takes it (--per-example): backprop_one of each
// example of the mini-batch in turn, with column vectors. Prints the shapes
// of the first example's pass.
void print_one_example(const Network& net, const nn::Dataset& training_data) {
    const nn::Matrix x = training_data.images.row(0).transpose();  // (784, 1), a column as in the book
    nn::Matrix y = nn::Matrix::Zero(10, 1);
    y(training_data.labels[0], 0) = 1.0f;
    std::vector<nn::Matrix> a{x};  // the activations, as columns
    for (std::size_t l = 0; l < net.weights.size(); ++l) {
        nn::Matrix z = net.weights[l] * a.back();
        z += net.biases[l].transpose();
        nn::Matrix out;
        sigmoid(z, out);
        a.push_back(out);
    }
    fmt::print("  one step of update_mini_batch, per example (the book's backprop(x, y)), the first:\n");
    fmt::print("    x {}, one-hot y {}\n", nn::shape(x), nn::shape(y));
    for (int l = 1; l < net.num_layers(); ++l)
        fmt::print("    forward:  z[{}] = weights[{}] a[{}] + biases[{}]: {} x {} + {}, a[{}] = sigmoid(z[{}])  {}\n",
                   l, l - 1, l - 1, l - 1, nn::shape(net.weights[l - 1]), nn::shape(a[l - 1]),
                   nn::shape(net.biases[l - 1].transpose()), l, l, nn::shape(a[l]));
    for (int l = net.num_layers() - 1; l >= 1; --l)
        fmt::print("    backward: delta[{}] {:<9} -> nabla_w[{}] = delta[{}] a[{}]^T: {} x {} = {}, nabla_b[{}] = delta[{}]\n",
                   l, nn::shape(a[l]), l - 1, l, l - 1, nn::shape(a[l]), nn::shape(a[l - 1].transpose()),
                   nn::shape(net.weights[l - 1]), l - 1, l);
    fmt::print("    (the sums over the mini-batch's examples are the matrix form's delta^T a_prev)\n");
}

// The labels of `data` as one-hot rows, (n, 10): the y that total_cost compares with.
nn::Matrix one_hot(const nn::Dataset& data) {
    nn::Matrix y = nn::Matrix::Zero(data.size(), 10);
    for (Eigen::Index i = 0; i < data.size(); ++i) y(i, data.labels[i]) = 1.0f;
    return y;
}

// --monitor: network2.py's total_cost(data, lmbda) and accuracy on the
// training data and on the evaluation data after each epoch, printed, kept
// for --plot, and returned as the JSON fields they add to the metrics line.
struct Monitor {
    const Network& net;
    const nn::Dataset& training_data;
    const nn::Dataset& evaluation_data;
    std::string evaluation;  // "test" or "validation"
    float lmbda;
    nn::Matrix training_y = one_hot(training_data), evaluation_y = one_hot(evaluation_data);
    nn::Series training_curve{"training", {}, {}}, evaluation_curve{evaluation, {}, {}};

    std::string report(int epoch, int correct) {
        const double training_cost = net.total_cost(training_data.images, training_y, lmbda);
        const double evaluation_cost = net.total_cost(evaluation_data.images, evaluation_y, lmbda);
        const int training_correct = net.evaluate(training_data);
        const double training_accuracy = double(training_correct) / training_data.size();
        const double evaluation_accuracy = double(correct) / evaluation_data.size();
        fmt::print("  cost on training data {:.4f}, accuracy on training data {} / {} ({:.2f}%)\n",
                   training_cost, training_correct, training_data.size(), 100 * training_accuracy);
        fmt::print("  cost on {} data {:.4f}, accuracy on {} data {} / {} ({:.2f}%)\n", evaluation,
                   evaluation_cost, evaluation, correct, evaluation_data.size(), 100 * evaluation_accuracy);
        training_curve.x.push_back(float(epoch)), training_curve.y.push_back(float(100 * training_accuracy));
        evaluation_curve.x.push_back(float(epoch)), evaluation_curve.y.push_back(float(100 * evaluation_accuracy));
        return fmt::format(R"(, "training_cost": {:.6f}, "training_accuracy": {:.4f}, "{}_cost": {:.6f})",
                           training_cost, training_accuracy, evaluation, evaluation_cost);
    }
    void plot(const std::string& path) const {
        nn::write_line_plot(path, "02-backprop: accuracy (%)", "epoch", {training_curve, evaluation_curve});
        fmt::print("Wrote the accuracies to {}\n", path);
    }
};

// The data and the network, with their shapes, as 01 prints them.
void print_data_and_network(const std::string& data_dir, const nn::Mnist& mnist, const Network& net, Init init,
                            std::uint64_t seed) {
    const auto& [training_data, validation_data, test_data] = mnist;
    fmt::print("MNIST from {}/mnist (the book's split)\n", data_dir);
    fmt::print("  training_data   {:>6} images: {}\n", training_data.size(), nn::shape(training_data.images));
    fmt::print("  validation_data {:>6} images: {}\n", validation_data.size(), nn::shape(validation_data.images));
    fmt::print("  test_data       {:>6} images: {}\n\n", test_data.size(), nn::shape(test_data.images));
    fmt::print("Network({}): biases from N(0, 1), weights from {}, seed {}\n", fmt::join(net.sizes, ", "),
               init == Init::large ? "N(0, 1)" : "N(0, 1/n_in)", seed);
    for (int l = 0; l + 1 < net.num_layers(); ++l)
        fmt::print("  weights[{}] {:<11} biases[{}] {}\n", l, nn::shape(net.weights[l]), l, nn::shape(net.biases[l]));
}

// The command line: the book's hyper-parameters (epochs, mini-batch size,
// eta, lambda), its two costs and two initialisations, and what to print.
struct Options {
    std::string data_dir, save_path, metrics_path, plot_path, evaluation = "test", cost_name = "quadratic",
                init_name = "large";
    std::string sizes_text = "784,30,10";
    std::uint64_t seed = 1;
    int epochs = 30, mini_batch_size = 10, train_size = 50000;
    float eta = 3.0f, lmbda = 0.0f;
    bool per_example = false, monitor = false;
};

void add_options(CLI::App& app, Options& o) {
    nn::add_data_option(app, o.data_dir);
    app.add_option("--sizes", o.sizes_text, "Neurons per layer, input first")
        ->check(nn::CountList(1, 100000))->capture_default_str();
    app.add_option("--epochs", o.epochs, "Passes over the training data")
        ->check(nn::Count(1, 100000))->capture_default_str();
    app.add_option("--batch", o.mini_batch_size, "Mini-batch size")
        ->check(nn::Count(1, 50000))->capture_default_str();
    app.add_option("--eta", o.eta, "Learning rate")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--lambda", o.lmbda, "L2 regularization strength (chapter 3)")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--cost", o.cost_name, "quadratic (chapter 1) or cross-entropy (chapter 3)")
        ->check(CLI::IsMember({"quadratic", "cross-entropy"}))->capture_default_str();
    app.add_option("--init", o.init_name,
                   "Weights from N(0, 1): large (chapter 1), or N(0, 1/n_in): scaled (chapter 3)")
        ->check(CLI::IsMember({"large", "scaled"}))->capture_default_str();
    app.add_option("--train-size", o.train_size,
                   "Train on the first N of the 50,000 training images (for quick runs)")
        ->check(nn::Count(1, 50000))->capture_default_str();
    app.add_option("--evaluate", o.evaluation,
                   "Which set to report after each epoch: test (chapter 1) or validation "
                   "(chapter 3, for choosing hyper-parameters)")
        ->check(CLI::IsMember({"test", "validation"}))->capture_default_str();
    app.add_flag("--per-example", o.per_example,
                 "Backprop one example at a time, as the book's network.py does, instead of the "
                 "whole mini-batch as matrices (the same steps up to float rounding; slower)");
    CLI::Option* monitor_flag = app.add_flag(
        "--monitor", o.monitor,
        "After each epoch, also print the cost (with the L2 term) and the accuracy on the training "
        "data and on the evaluation data, as network2.py's monitor flags do");
    app.add_option("--plot", o.plot_path,
                   "With --monitor: draw the training and evaluation accuracy against the epoch into this PNG")
        ->needs(monitor_flag);
    app.add_option("--seed", o.seed, "Seed for the weights and the shuffling")->check(nn::Seed)->capture_default_str();
    app.add_option("--save", o.save_path, "Save the trained network here (01-mnist-mlp --load reads it)");
    app.add_option("--metrics", o.metrics_path,
                   "Write one JSON line per epoch here: epoch, test (or validation) accuracy, seconds "
                   "(with --monitor, the costs and the training accuracy too)");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"02-backprop: trains a feed-forward network on MNIST with stochastic gradient "
                 "descent and backpropagation, printing the test accuracy after each epoch.",
                 "02-backprop"};
    Options o;
    add_options(app, o);
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        // One thread: a mini-batch's products are too small to share (waking a
        // second thread costs more than it saves), and the evaluation's, shared,
        // gain 3% of a quiet run but lose 11-17% beside a busy program
        // (bench/threads).
        Eigen::setNbThreads(1);
        const std::vector<int> sizes = nn::split_counts(o.sizes_text);
        check_sizes(sizes, o.mini_batch_size);
        if (o.eta * o.lmbda >= static_cast<float>(o.train_size))
            nn::fail("--eta {} with --lambda {}: the weight decay factor 1 - eta lambda / n = {} "
                     "must stay above 0", o.eta, o.lmbda, 1.0 - double(o.eta) * o.lmbda / o.train_size);
        if (!o.save_path.empty()) nn::check_writable(o.save_path);  // now, not after training
        if (!o.plot_path.empty()) nn::check_writable(o.plot_path);
        if (!o.metrics_path.empty()) nn::check_writable(o.metrics_path);
        const Cost cost = o.cost_name == "quadratic" ? Cost::quadratic : Cost::cross_entropy;
        const Init init = o.init_name == "large" ? Init::large : Init::scaled;
        nn::Rng rng(o.seed);
        Network net(sizes, rng, cost, init);
        nn::Mnist mnist = nn::load_mnist(o.data_dir);
        auto& [training_data, validation_data, test_data] = mnist;
        if (o.train_size < training_data.size()) {
            training_data.images.conservativeResize(o.train_size, Eigen::NoChange);
            training_data.labels.resize(o.train_size);
        }
        print_data_and_network(o.data_dir, mnist, net, init, o.seed);
        fmt::print("\nSGD: {} epochs, mini-batches of {}, eta {}, lambda {}, {} cost, backprop {}\n",
                   o.epochs, o.mini_batch_size, o.eta, o.lmbda, o.cost_name,
                   o.per_example ? "per example (the book's loop)" : "over the mini-batch as matrices");
        if (o.per_example) print_one_example(net, training_data);
        else print_one_step(net, training_data, o.mini_batch_size);

        const nn::Dataset& evaluation_data = o.evaluation == "test" ? test_data : validation_data;
        nn::MetricsLog metrics(o.metrics_path);
        nn::Stopwatch total, epoch_clock;
        int correct = 0;
        std::optional<Monitor> monitoring;
        if (o.monitor) monitoring.emplace(net, training_data, evaluation_data, o.evaluation, o.lmbda);
        net.SGD(training_data, o.epochs, o.mini_batch_size, o.eta, o.lmbda, rng, [&](int epoch) {
            const double seconds = epoch_clock.seconds();  // training time of this epoch
            for (const nn::Matrix& w : net.weights)
                if (!w.allFinite())
                    nn::fail("the weights became NaN or infinite in epoch {}: --eta {} is too large", epoch, o.eta);
            correct = net.evaluate(evaluation_data);
            fmt::print("Epoch {}: {} / {}  ({:.2f} s)\n", epoch, correct, evaluation_data.size(),
                       seconds);
            const std::string monitored = monitoring ? monitoring->report(epoch, correct) : "";
            std::fflush(stdout);
            metrics.write(fmt::format(R"({{"epoch": {}, "{}_accuracy": {:.4f}{}, "seconds": {:.4f}}})",
                                      epoch, o.evaluation, double(correct) / evaluation_data.size(),
                                      monitored, seconds));
            epoch_clock.restart();
        }, o.per_example ? Backprop::per_example : Backprop::matrix);
        fmt::print("\nTrained in {:.1f} s: {} / {} {} images correct ({:.2f}%)\n",
                   total.seconds(), correct, evaluation_data.size(), o.evaluation,
                   100.0 * correct / evaluation_data.size());
        if (!o.plot_path.empty()) monitoring->plot(o.plot_path);
        if (!o.save_path.empty()) {
            save_network(net, o.save_path);
            fmt::print("Saved the network to {} (01-mnist-mlp --load {} shows it)\n", o.save_path,
                       o.save_path);
        }
        return 0;
    });
}
