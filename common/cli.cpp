#include "common/cli.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <new>

#include "common/error.hpp"
#include "common/validators.hpp"

namespace nn {

std::string default_data_dir() { return NN2GPT_DATA_DIR; }

void add_data_option(CLI::App& app, std::string& data_dir) {
    data_dir = default_data_dir();
    app.add_option("--data", data_dir,
                   "Data directory holding mnist/ and tinyshakespeare.txt")
        ->capture_default_str();
}

void add_training_outputs(CLI::App& app, std::string& metrics, std::string& summary, std::string& plot) {
    app.add_option("--metrics", metrics, "Write step, train_loss, val_loss, seconds as JSON lines here");
    app.add_option("--summary-json", summary, "Write the run's figures (ms per training step, peak memory, "
                   "last losses) here as one JSON line");
    app.add_option("--plot", plot, "Draw the train and val losses against the step into this PNG");
}

void add_checkpoint_option(CLI::App& app, std::string& checkpoint) {
    app.add_option("--checkpoint", checkpoint, "A directory written by --out (best.ckpt is used), or a .ckpt file")
        ->required();
}

void add_sampling_options(CLI::App& app, int& max_new_tokens, std::string& prompt, float& temperature, int& top_k) {
    app.add_option("--max-new-tokens", max_new_tokens, "Characters to generate after training")
        ->check(Count(0, 1000000))->capture_default_str();
    app.add_option("--prompt", prompt, "Text to continue (default: token 0, a newline in Tiny Shakespeare, as in the lecture)");
    app.add_option("--temperature", temperature, "Divide the logits by this before sampling")
        ->check(Positive)->capture_default_str();
    app.add_option("--top-k", top_k, "Sample only among the k likeliest characters (0: all)")
        ->check(Count(0, 2097152))->capture_default_str();
}

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {  // --help
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        fmt::print(stderr, "{}: error: {} (see --help)\n", app.get_name(), e.what());
        return 2;
    }
    return std::nullopt;
}

int guarded(const CLI::App& app, const std::function<int()>& body) {
    try {
        return body();
    } catch (const InputError& e) {
        std::fflush(stdout);
        fmt::print(stderr, "{}: error: {}\n", app.get_name(), e.what());
        return 2;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        fmt::print(stderr, "{}: error: out of memory (are the settings too large?)\n",
                   app.get_name());
        return 2;
    } catch (const std::filesystem::filesystem_error& e) {  // e.g. --out names a file
        std::fflush(stdout);
        fmt::print(stderr, "{}: error: {}\n", app.get_name(), e.what());
        return 2;
    }
}

}  // namespace nn
