// The command line, shared by every lesson: CLI11 for parsing, and one place
// that turns bad input into a one-line message and exit status 2.
//
//   int main(int argc, char** argv) {
//       CLI::App app{"What this lesson does"};
//       ... app.add_option(...) ...
//       if (auto status = nn::parse(app, argc, argv)) return *status;
//       return nn::guarded(app, [&] { ...the lesson...; return 0; });
//   }
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>
#include <string>

namespace nn {

// The repository's data/ directory, fixed when the project is configured.
std::string default_data_dir();

// Adds --data DIR (defaulting to default_data_dir()) to `app`.
void add_data_option(CLI::App& app, std::string& data_dir);

// Adds the files a training run (06, 07, 08) writes besides checkpoints:
// --metrics (a JSON line per loss estimate), --summary-json (the run's
// figures) and --plot (the loss curves), which common/metrics.hpp and
// common/training.hpp write.
void add_training_outputs(CLI::App& app, std::string& metrics, std::string& summary, std::string& plot);

// Adds the required --checkpoint PATH of a command that reads a saved model
// (see checkpoint_file in common/checkpoint.hpp).
void add_checkpoint_option(CLI::App& app, std::string& checkpoint);

// Adds what to write after training: --max-new-tokens characters after
// --prompt, sampled at --temperature among the --top-k likeliest.
void add_sampling_options(CLI::App& app, int& max_new_tokens, std::string& prompt, float& temperature, int& top_k);

// Parses the command line. Returns nothing when the lesson should go on, or
// the exit status: 0 after --help, 2 after a bad flag (with a one-line error).
std::optional<int> parse(CLI::App& app, int argc, char** argv);

// Runs the lesson's body. InputError (a bad file, setting or prompt) becomes
// "NAME: error: MESSAGE" on stderr and exit status 2.
int guarded(const CLI::App& app, const std::function<int()>& body);

}  // namespace nn
