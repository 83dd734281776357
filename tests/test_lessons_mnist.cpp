// Runs the built MNIST lessons briefly and checks their exit status and the
// lines a learner relies on.
#include <sys/stat.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>

#include "helpers.hpp"

using Catch::Matchers::Contains;

TEST_CASE("01-mnist-mlp prints the shapes and the untrained accuracy", "[01-mnist-mlp][run]") {
    const auto r = test::run_lesson("01-mnist-mlp", "--data " + test::mnist_dir());
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("training_data    50000 images"));
    CHECK_THAT(r.output, Contains("weights[0] (30, 784)"));
    CHECK_THAT(r.output, Contains("a[2] = sigmoid(a[1] weights[1]^T + biases[1])  (1, 10)"));
    CHECK_THAT(r.output, Contains("evaluate(test_data): "));
}

TEST_CASE("02-backprop trains, saves, and 01-mnist-mlp loads what it saved", "[02-backprop][01-mnist-mlp][run]") {
    test::ScratchDir dir;
    const auto net = (dir / "net.bin").string(), metrics = (dir / "m.jsonl").string();
    const auto r = test::run_lesson(
        "02-backprop", "--data " + test::mnist_dir() + " --epochs 2 --train-size 3000 --save " +
                           net + " --metrics " + metrics);
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("Epoch 0: "));
    CHECK_THAT(r.output, Contains("Epoch 1: "));
    CHECK_THAT(r.output, Contains("Saved the network"));
    const std::string lines = [&] { std::ifstream in(metrics); return std::string(std::istreambuf_iterator<char>(in), {}); }();
    CHECK_THAT(lines, Contains(R"({"epoch": 1, "test_accuracy": 0.)"));

    const auto loaded = test::run_lesson("01-mnist-mlp", "--data " + test::mnist_dir() + " --load " + net);
    INFO(loaded.output);
    REQUIRE(loaded.status == 0);
    CHECK_THAT(loaded.output, Contains("loaded from"));
    CHECK_THAT(loaded.output, Contains("evaluate(test_data): "));
}

TEST_CASE("02-backprop --monitor prints the cost and accuracy on the training and evaluation data",
          "[02-backprop][run]") {
    test::ScratchDir dir;
    const auto metrics = (dir / "m.jsonl").string(), plot = (dir / "acc.png").string();
    const auto r = test::run_lesson("02-backprop", "--data " + test::mnist_dir() +
                                                       " --epochs 2 --train-size 500 --cost cross-entropy --eta 0.5"
                                                       " --lambda 0.1 --monitor --metrics " + metrics + " --plot " + plot);
    INFO(r.output);
    REQUIRE(r.status == 0);
    // Each epoch: the book's line, then the four quantities, the test accuracy the same as the book's line.
    const std::regex epoch(R"(Epoch (\d): (\d+) / 10000  \([0-9.]+ s\)\n)"
                           R"(  cost on training data ([0-9.]+), accuracy on training data (\d+) / 500 \([0-9.]+%\)\n)"
                           R"(  cost on test data ([0-9.]+), accuracy on test data (\d+) / 10000 \([0-9.]+%\)\n)");
    std::vector<double> training_cost;
    int epochs = 0;
    for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), epoch); it != std::sregex_iterator(); ++it) {
        const std::smatch& m = *it;
        CHECK(std::stoi(m[1]) == epochs++);
        CHECK(m[2] == m[6]);
        CHECK(std::stoi(m[4]) > 250);  // learning: better than half of the 500 training images
        CHECK(std::stod(m[5]) > 0);
        training_cost.push_back(std::stod(m[3]));
    }
    REQUIRE(epochs == 2);
    CHECK(training_cost[1] < training_cost[0]);
    CHECK(std::filesystem::file_size(plot) > 1000);
    const std::string lines = [&] { std::ifstream in(metrics); return std::string(std::istreambuf_iterator<char>(in), {}); }();
    CHECK_THAT(lines, Catch::Matches(R"(\{"epoch": 0, "test_accuracy": 0\.\d+, "training_cost": [0-9.]+, "training_accuracy": 0\.\d+, "test_cost": [0-9.]+, "seconds": [0-9.]+\}\n)"
                                     R"(\{"epoch": 1, .*\}\n)"));

    // The evaluation set is named as --evaluate says; --plot needs --monitor.
    const auto validation = test::run_lesson("02-backprop", "--data " + test::mnist_dir() +
                                                                " --epochs 1 --train-size 500 --evaluate validation --monitor");
    INFO(validation.output);
    CHECK(validation.status == 0);
    CHECK_THAT(validation.output, Contains("  cost on validation data "));
    CHECK_THAT(validation.output, Contains(", accuracy on validation data "));
    const auto unmonitored = test::run_lesson("02-backprop", "--data " + test::mnist_dir() + " --plot " + plot);
    INFO(unmonitored.output);
    CHECK(unmonitored.status == 2);
    CHECK_THAT(unmonitored.output, Contains("--plot requires --monitor"));
}

TEST_CASE("02-backprop --per-example trains like the matrix form", "[02-backprop][run]") {
    // Same seed: the same initial weights and shuffles; only the order of the
    // float additions differs, so the accuracies agree to a few images.
    const std::string args = "--data " + test::mnist_dir() + " --epochs 1 --train-size 3000";
    const auto matrix = test::run_lesson("02-backprop", args);
    const auto each = test::run_lesson("02-backprop", args + " --per-example");
    INFO(matrix.output << "\n" << each.output);
    REQUIRE(matrix.status == 0);
    REQUIRE(each.status == 0);
    CHECK_THAT(matrix.output, Contains("backprop over the mini-batch as matrices"));
    CHECK_THAT(each.output, Contains("backprop per example (the book's loop)"));
    auto correct = [](const std::string& out) {
        const auto at = out.find("Epoch 0: ");
        REQUIRE(at != std::string::npos);
        return std::stoi(out.substr(at + 9));
    };
    const int a = correct(matrix.output), b = correct(each.output);
    CHECK(a > 5000);
    CHECK(std::abs(a - b) <= 20);
}

TEST_CASE("the MNIST lessons refuse bad input with exit status 2", "[01-mnist-mlp][02-backprop][run]") {
    test::ScratchDir dir;
    struct Case { const char* lesson; std::string args; const char* message; };
    std::ofstream(dir / "junk.bin") << "junk";
    const std::vector<Case> cases{
        {"01-mnist-mlp", "--data " + dir.path.string(), "no such file"},
        {"01-mnist-mlp", "--load " + (dir / "junk.bin").string(), "wrong magic"},
        {"01-mnist-mlp", "--sizes 784,30,9", "must start with 784"},
        {"01-mnist-mlp", "--seed -1", "--seed: must be a whole number in [0, 2^64 - 1], not -1"},
        {"01-mnist-mlp", "--seed 18446744073709551616", "--seed: must be a whole number in [0, 2^64 - 1]"},
        {"01-mnist-mlp", "--sizes 784,,10", "--sizes: '784,,10': each number must be a whole number in [1, 100000], not an empty value"},
        {"01-mnist-mlp", "--sizes 784,100000,100000,100000,10", "would need 80.3 GB"},
        {"02-backprop", "--sizes 784,100000,100000,100000,10", "its weights and their gradients would need 160.6 GB"},
        {"02-backprop", "--sizes 784,100000,10 --batch 50000",
         "the activations of a mini-batch and of the 10,000 images evaluated would need 69.1 GB"},
        {"02-backprop", "--batch 0", "--batch: must be a whole number in [1, 50000], not 0"},
        {"02-backprop", "--epochs 0", "--epochs: must be a whole number in [1, 100000], not 0"},
        {"01-mnist-mlp", "--show 10000", "--show: must be a whole number in [0, 9999], not 10000"},
        {"02-backprop", "--cost hinge", "--cost"},
        {"02-backprop", "--eta -1", "--eta: must be greater than 0, not -1"},
        {"02-backprop", "--eta inf", "--eta: 'inf' is not a finite number"},
        {"02-backprop", "--eta 1e39", "--eta: '1e39' is too large"},
        {"02-backprop", "--eta 1e6 --lambda 5", "the weight decay factor 1 - eta lambda / n = -99"},
        {"02-backprop", "--eta 3e38 --cost cross-entropy --train-size 1000 --epochs 1",
         "the weights became NaN or infinite in epoch 0"},
        {"02-backprop", "--save " + (dir / "no-such-dir" / "net.bin").string(),
         "no-such-dir/net.bin: No such file or directory"},
        {"02-backprop", "--metrics " + (dir / "no-such-dir" / "m.jsonl").string(),
         "no-such-dir/m.jsonl: No such file or directory"},
        {"02-backprop", "--cost 1", "--cost"},
        {"02-backprop", "--lambda -0.5", "--lambda: must be 0 or more"},
        {"02-backprop", "--no-such-flag", "no-such-flag"},
    };
    const std::string data = test::mnist_dir();
    for (const Case& c : cases) {
        // Every run reads the test data, so a refusal is the one asked for, not "no such file".
        const std::string args = c.args.starts_with("--data ") ? c.args : "--data " + data + " " + c.args;
        const auto r = test::run_lesson(c.lesson, args);
        INFO(c.lesson << " " << args << "\n" << r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains(c.message));
        CHECK_THAT(r.output, Contains("error:"));
        CHECK_THAT(r.output, !Contains("Trained in"));  // refused before training, not after
        if (!std::string_view(c.message).ends_with("in epoch 0"))  // the one refusal that training itself finds
            CHECK_THAT(r.output, !Contains("SGD:"));  // the others: before telling the data and the network
    }
}

TEST_CASE("a crafted IDX header is checked against the file's size before anything is allocated",
          "[01-mnist-mlp][run]") {
    const std::string mnist = test::mnist_dir() + "/mnist";
    test::ScratchDir dir;
    std::filesystem::create_directory(dir / "mnist");
    for (const char* name : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
        const std::filesystem::path plain = mnist + "/" + name, gz = plain.string() + ".gz";
        const bool is_plain = std::filesystem::exists(plain);
        std::filesystem::create_symlink(is_plain ? plain : gz, dir / "mnist" / (is_plain ? plain : gz).filename());
    }
    // A 60 KB label file whose header claims 4,294,967,295 labels.
    std::string labels = {0, 0, 8, 1, '\xff', '\xff', '\xff', '\xff'};
    labels += std::string(60000, '\0');
    auto run = [&] {
        const auto r = test::run_command(
            test::memory_capped(std::string(NN2GPT_BIN_DIR) + "/01-mnist-mlp --data " + dir.path.string()));
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, !Contains("out of memory"));
        return r.output;
    };
    SECTION("plain") {
        std::ofstream(dir / "mnist" / "train-labels-idx1-ubyte", std::ios::binary) << labels;
        CHECK_THAT(run(), Contains("truncated, 60000 data bytes where the header says 4294967295"));
    }
    SECTION("gzip: read in pieces, so memory grows only with the data that is there") {
        gzFile gz = gzopen((dir / "mnist" / "train-labels-idx1-ubyte.gz").c_str(), "wb");
        REQUIRE(gz != nullptr);
        gzwrite(gz, labels.data(), static_cast<unsigned>(labels.size()));
        gzclose(gz);
        CHECK_THAT(run(), Contains("truncated, 60000 data bytes where the header says 4294967295"));
    }
    SECTION("a FIFO in place of the file is refused at once, not waited on") {
        REQUIRE(::mkfifo((dir / "mnist" / "train-labels-idx1-ubyte").c_str(), 0600) == 0);
        CHECK_THAT(run(), Contains("not a regular file"));
    }
}

TEST_CASE("--help lists every flag", "[01-mnist-mlp][02-backprop][run]") {
    for (const char* lesson : {"01-mnist-mlp", "02-backprop"}) {
        const auto r = test::run_lesson(lesson, "--help");
        INFO(r.output);
        CHECK(r.status == 0);
        CHECK_THAT(r.output, Contains("--data"));
        CHECK_THAT(r.output, Contains("--seed"));
    }
}
