// Helpers for the gradient tests of the language-model layers and lessons.
#pragma once
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>
#include <string>

#include "common/gradcheck.hpp"
#include "common/layers.hpp"
#include "common/random.hpp"
#include "common/text.hpp"

namespace test {

// A finite-difference check passes below this relative error: float32
// rounding gives ~1e-3, a dropped term or a wrong sign ~1.
constexpr double kGradTolerance = 1e-2;

inline nn::Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, nn::Rng& rng, float stddev = 1.0f) {
    nn::Matrix m(rows, cols);
    rng.fill_normal(nn::as_span(m), 0.0f, stddev);
    return m;
}

// sum(y .* R) in double: a scalar loss whose gradient with respect to y is R.
inline double project(const nn::Matrix& y, const nn::Matrix& r) {
    return (y.cast<double>().array() * r.cast<double>().array()).sum();
}

// How a finite-difference check is made (see nn::check_gradient).
struct GradOptions {
    double eps = 1e-2;
    double floor = 1e-3;  // relative errors are measured against at least this
    double tolerance = kGradTolerance;
    std::size_t samples = 64;
};

// Checks `grad` against finite differences of `loss` over `value`, reporting
// the worst entry. `kinked()` as for nn::check_gradient: for layers with a
// ReLU, where at most half of the entries may be skipped.
template <typename LossFn, typename KinkFn>
    requires std::is_invocable_r_v<bool, KinkFn&>
void check_grad(const std::string& name, LossFn&& loss, nn::Matrix& value, const nn::Matrix& grad, KinkFn&& kinked,
                const GradOptions& o = {}) {
    REQUIRE(grad.rows() == value.rows());
    REQUIRE(grad.cols() == value.cols());
    const nn::GradCheck r = nn::check_gradient(loss, nn::as_span(value), nn::as_span(grad), kinked, o.eps, o.samples, o.floor);
    INFO(name << ": worst relative error " << r.max_rel_error << " at " << r.worst_index << " (analytic "
              << r.analytic << ", numeric " << r.numeric << "), " << r.skipped << " entries skipped at a kink");
    CHECK(r.max_rel_error < o.tolerance);
    CHECK(r.checked > 0);
    CHECK(r.skipped <= r.checked);
}
template <typename LossFn>
void check_grad(const std::string& name, LossFn&& loss, nn::Matrix& value, const nn::Matrix& grad,
                const GradOptions& o = {}) {
    check_grad(name, loss, value, grad, [] { return false; }, o);
}

// A batch of random tokens with random targets from a vocabulary of V.
inline nn::Batch random_batch(int B, int T, int V, nn::Rng& rng) {
    nn::Batch batch{B, T, {}, {}};
    for (int n = 0; n < B * T; ++n) {
        batch.x.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(V))));
        batch.y.push_back(static_cast<int>(rng.below(static_cast<std::uint64_t>(V))));
    }
    return batch;
}

// For layers with a ReLU: `pattern()` gives the sign of every pre-activation
// after the last forward (empty when there are none); an evaluation whose
// pattern differs from the unperturbed one crossed the kink.
template <typename LossFn, typename PatternFn>
void check_grad_kinked(const std::string& name, LossFn&& loss, nn::Matrix& value, const nn::Matrix& grad,
                       PatternFn&& pattern, const GradOptions& o = {}) {
    loss();
    const auto base = pattern();
    check_grad(name, loss, value, grad, [&] { return pattern() != base; }, o);
}

// Every parameter of a model against finite differences of `loss()`, which
// recomputes its loss on a fixed batch. `pattern()` as for check_grad_kinked.
template <typename Model, typename LossFn, typename PatternFn>
    requires std::is_invocable_v<LossFn&>
void check_model_gradients(Model& model, LossFn&& loss, PatternFn&& pattern, const GradOptions& o = {}) {
    const auto params = model.parameters();
    for (nn::Parameter* p : params) p->grad.setZero();
    loss();
    model.backward();
    for (std::size_t i = 0; i < params.size(); ++i) {
        INFO("parameter " << i << " of shape (" << params[i]->value.rows() << ", " << params[i]->value.cols() << ")");
        REQUIRE(params[i]->grad.norm() > 0);  // every parameter takes part
        check_grad_kinked("parameter " + std::to_string(i), loss, params[i]->value, params[i]->grad, pattern, o);
    }
}

template <typename Model, typename PatternFn>
void check_model_gradients(Model& model, const nn::Batch& batch, PatternFn&& pattern) {
    check_model_gradients(model, [&] { return model.loss(batch); }, pattern);
}

template <typename Model>
void check_model_gradients(Model& model, const nn::Batch& batch) {
    check_model_gradients(model, batch, [] { return std::vector<bool>{}; });
}

// How many numbers a model's parameters() hold: what a lesson's parameter_count must say.
template <typename Model>
double parameters_held(Model& model) {
    double held = 0;
    for (const nn::Parameter* p : model.parameters()) held += static_cast<double>(p->value.size());
    return held;
}

// The signs of a matrix's entries: where a ReLU applied to it passes its input.
inline std::vector<bool> positive(const nn::Matrix& m) {
    std::vector<bool> signs;
    for (Eigen::Index i = 0; i < m.size(); ++i) signs.push_back(m.data()[i] > 0);
    return signs;
}

}  // namespace test

// --- Running the language-model lessons ------------------------------------
#include <algorithm>
#include <fstream>
#include <regex>
#include <vector>

#include <fmt/format.h>

#include "common/fileio.hpp"
#include "common/limits.hpp"
#include "helpers.hpp"

namespace test {

// Settings small enough that a lesson runs in well under a second.
inline const std::string kTinyRun =
    "--max-iters 20 --eval-interval 10 --eval-iters 2 --max-new-tokens 40";

// The output without the lines that hold timings, which differ between runs.
inline std::string without_timings(const std::string& output) {
    std::string kept, line;
    for (char c : output) {
        line += c;
        if (c != '\n') continue;
        if (line.find("step/s") == std::string::npos && line.find("steps/s") == std::string::npos &&
            line.find("tokens/s") == std::string::npos)
            kept += line;
        line.clear();
    }
    return kept + line;
}

inline void write_text(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

// Settings that cannot fit in memory: refused before anything large is
// allocated (the run is capped at 1 GB), on one line that gives the bytes.
inline void check_refuses_what_cannot_fit(const std::string& lesson, const std::string& args,
                                          const std::string& message) {
    using Catch::Matchers::Contains;
    const RunResult r = run_command(memory_capped(std::string(NN2GPT_BIN_DIR) + "/" + lesson + " " + args));
    INFO(lesson << " " << args << "\n" << r.output);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains(message + " would need") && Contains(" bytes), more than this machine's"));
    CHECK_THAT(r.output, !Contains("out of memory"));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

// The same refusal, word for word, for settings counted at `bytes` by the
// lesson's own training_bytes: run only where they exceed this machine's
// memory (the count itself is checked by hand in the tests).
inline void check_refuses_exactly(const std::string& lesson, const std::string& args, const std::string& what,
                                  double bytes) {
    if (bytes <= static_cast<double>(nn::physical_memory())) return;
    const RunResult r = run_command(memory_capped(std::string(NN2GPT_BIN_DIR) + "/" + lesson + " " + args));
    INFO(lesson << " " << args);
    CHECK(r.status == 2);
    CHECK(r.output == fmt::format("{}: error: {} would need {:.1f} GB ({:.0f} bytes), more than this machine's "
                                  "{:.1f} GB of memory\n",
                                  lesson, what, bytes / 1e9, bytes, nn::physical_memory() / 1e9));
}

// What every language-model lesson does with bad input: one line and exit status 2.
inline void check_refuses_bad_input(const std::string& lesson) {
    using Catch::Matchers::Contains;
    ScratchDir dir;
    const std::string data = " --data " + dir.path.string();
    auto expect = [&](const std::string& args, const std::string& message) {
        const RunResult r = run_lesson(lesson, args);
        INFO(lesson << " " << args << "\n" << r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains(message));
    };
    expect(data, "tinyshakespeare.txt: No such file or directory");
    fs::create_directory(dir / "tinyshakespeare.txt");
    expect(data, "tinyshakespeare.txt: it is a directory");
    fs::remove(dir / "tinyshakespeare.txt");
    write_text(dir / "tinyshakespeare.txt", "");
    expect(data, "tinyshakespeare.txt is empty");
    write_text(dir / "tinyshakespeare.txt", "Bonjour, caf\xe9 cr\xe8me\n");
    expect(data, "tinyshakespeare.txt is not valid UTF-8: the character at byte 12 (0xe9) is incomplete");
    write_text(dir / "tinyshakespeare.txt", std::string(19, 'a') + "\n");  // val: 2 characters
    expect(data + " --block-size 8", "tinyshakespeare.txt: its validation split has 2 characters, too few for a context of 8");
    const std::string shakespeare = " --data " + shakespeare_dir() + " " + kTinyRun;
    expect(shakespeare + " --prompt 'ROMEO: 100% #1'",
           "the prompt has 4 characters outside the vocabulary: '1', '0', '%', '#'");
    expect(shakespeare + " --batch-size 0", "--batch-size: must be a whole number in [1, 4096], not 0");
    expect(shakespeare + " --eval-iters 2147483647", "--eval-iters: must be a whole number in [1, 10000], not 2147483647");
    expect(shakespeare + " --seed 18446744073709551616", "--seed: must be a whole number in [0, 2^64 - 1]");
    expect(shakespeare + " --lr -0.1", "--lr: must be greater than 0, not -0.1");
    expect(shakespeare + " --lr fast", "--lr: 'fast' is not a finite number");
    expect(shakespeare + " --lr 1e39", "--lr: '1e39' is too large");
    expect(" --data " + shakespeare_dir() + " --block-size 200000", "--block-size: must be a whole number in [1, 8192]");
    expect(shakespeare + " --metrics " + (dir / "no-such-dir" / "m.jsonl").string(),
           "no-such-dir/m.jsonl: No such file or directory");
    expect(shakespeare + " --temperature 0", "--temperature: must be greater than 0, not 0");
    expect(shakespeare + " --max-iters -1", "--max-iters: must be a whole number in [0, 1000000], not -1");
    // A text of more than 1 GiB (a sparse file: nothing is written) is refused before it is read.
    fs::resize_file(dir / "tinyshakespeare.txt", (std::uintmax_t{1} << 30) + 1);
    expect(data, "tinyshakespeare.txt: 1073741825 bytes, more than the 1073741824 this program reads");
    // A FIFO in place of the text would block forever: refused at once.
    fs::remove(dir / "tinyshakespeare.txt");
    REQUIRE(::mkfifo((dir / "tinyshakespeare.txt").c_str(), 0600) == 0);
    expect(data, "tinyshakespeare.txt: not a regular file");
    expect(shakespeare + " --no-such-flag", "no-such-flag");
}

// The default of a lesson's integer flag, as its --help shows it ("=32" at
// the end of the flag's line, "--batch-size INT:in [1, 4096]=32"): the helpers below take a lesson's shapes from
// the lesson itself, so a copy of any language-model lesson can use them.
inline int default_of(const std::string& lesson, const std::string& flag) {
    const RunResult r = run_lesson(lesson, "--help");
    REQUIRE(r.status == 0);
    std::smatch m;
    const std::regex line("\\n\\s*" + flag + " [^\\n]*=(-?[0-9]+)[ \\t]*\\n");
    INFO(lesson << " --help\n" << r.output);
    REQUIRE(std::regex_search(r.output, m, line));
    return std::stoi(m[1].str());
}

// The step of the last "step N: train loss" line, or -1.
inline int last_estimate_step(const std::string& output) {
    static const std::regex line("(^|\\n)step ([0-9]+): train loss");
    int last = -1;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
        last = std::stoi((*it)[2].str());
    return last;
}

// A short run (kTinyRun: 20 steps, estimates every 10) prints the shapes of
// the lesson's default batch (its --batch-size and --block-size), the losses
// at steps 0, 10 and the end, a sample, and writes the metrics; the same seed
// gives the same output. The last estimate is at step 19 (03-05, as the
// lecture's loop) or 20 (06 on, which also estimates after the last step).
inline std::string check_short_run(const std::string& lesson, const std::string& extra = "") {
    using Catch::Matchers::Contains;
    const int B = default_of(lesson, "--batch-size"), T = default_of(lesson, "--block-size");
    ScratchDir dir;
    const std::string args = "--data " + shakespeare_dir() + " " + kTinyRun + " --metrics " +
                             (dir / "m.jsonl").string() + " " + extra;
    const RunResult r = run_lesson(lesson, args);
    INFO(lesson << " " << args << "\n" << r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("vocabulary, V = 65"));
    CHECK_THAT(r.output, Contains("train: the first 1003854 tokens, val: the last 111540"));
    CHECK_THAT(r.output, Contains("xb = get_batch('train')") &&
                             Contains("(" + std::to_string(B) + ", " + std::to_string(T) + ")"));
    CHECK_THAT(r.output, Contains("(" + std::to_string(B * T) + ", 65)"));  // the logits, (B*T, V)
    CHECK_THAT(r.output, Contains("step 0: train loss 4.") && Contains("step 10: train loss"));
    const int last = last_estimate_step(r.output);
    CHECK((last == 19 || last == 20));
    CHECK_THAT(r.output, Contains("20 steps in") && Contains("generate(40 characters after \"\\n\")"));
    const std::string metrics = nn::read_file(dir / "m.jsonl");
    CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 3);
    CHECK_THAT(metrics, Contains(R"({"step": 10, "train_loss": )") && Contains(R"("val_loss": )") &&
                            Contains(R"("seconds": )"));
    const RunResult again = run_lesson(lesson, args);
    CHECK(without_timings(again.output) == without_timings(r.output));
    return r.output;
}

// The val loss printed on the line "step N: train loss X, val loss Y".
inline double val_loss_at(const std::string& output, int step) {
    const std::string key = "step " + std::to_string(step) + ": train loss ";
    const auto at = output.find(key);
    if (at == std::string::npos) return -1;
    const auto val = output.find("val loss ", at);
    return std::stod(output.substr(val + 9));
}

// 400 steps of the lesson on Tiny Shakespeare: the val loss starts above
// `start_above` (about ln V, a guess) and ends below `end_below`.
inline void check_learns(const std::string& lesson, double start_above, double end_below) {
    const RunResult r = run_lesson(
        lesson, "--data " + shakespeare_dir() + " --max-iters 400 --eval-interval 399 --eval-iters 20 --max-new-tokens 0");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(val_loss_at(r.output, 0) > start_above);
    CHECK(val_loss_at(r.output, 399) < end_below);
}

// --help lists every flag with its default.
inline void check_help(const std::string& lesson, const std::vector<std::string>& flags_and_defaults) {
    using Catch::Matchers::Contains;
    const RunResult r = run_lesson(lesson, "--help");
    INFO(r.output);
    CHECK(r.status == 0);
    for (const std::string& s : flags_and_defaults) CHECK_THAT(r.output, Contains(s));
}

}  // namespace test
