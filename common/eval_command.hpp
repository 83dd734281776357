// The `eval` command of a language-model lesson with checkpoints (06-gpt,
// 08-data-parallel): the mean cross-entropy of a saved model over a text, to
// compare it with another implementation, and the gradients of one batch for
// bench/gpt-parity. A template over the lesson's model and checkpoint reader.
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/progress.hpp"
#include "common/random.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

namespace nn {

struct EvalOptions {
    std::string checkpoint, text, data_dir, grad_out;
    int batch_size = 16, threads = 0;
};

inline CLI::App* add_eval_command(CLI::App& app, EvalOptions& o) {
    CLI::App* eval = app.add_subcommand("eval", "The mean cross-entropy of a saved model over a text, read in "
                                                "consecutive windows of its context: to compare it with another implementation");
    nn::add_checkpoint_option(*eval, o.checkpoint);
    eval->add_option("--text", o.text, "A UTF-8 text file (default: the validation split, the last 10% of --data's "
                                       "tinyshakespeare.txt)");
    nn::add_data_option(*eval, o.data_dir);
    eval->add_option("--batch-size", o.batch_size, "Windows per forward pass")->check(nn::Count(1, 4096))->capture_default_str();
    eval->add_option("--threads", o.threads, "OpenMP threads (0: one per idle core)")->check(nn::Count(0, 256))
        ->capture_default_str();
    eval->add_option("--grad", o.grad_out, "Instead, write the loss and the gradient of every parameter on one batch, "
                     "the first --batch-size windows of the text, to this file (for bench/gpt-parity)");
    return eval;
}

// `eval`: the mean cross-entropy of a saved model over a text. The text
// is cut into consecutive windows of block_size characters (the last one may
// be shorter); each window predicts its next characters from those before it
// in the window, so every character but the first is predicted exactly once.
template <typename Model, typename Reader>
int eval_command(const EvalOptions& o) {
    namespace fs = std::filesystem;
    nn::set_threads(o.threads == 0 ? nn::idle_cores() : o.threads);
    const fs::path file = nn::checkpoint_file(o.checkpoint, "best.ckpt");
    Reader reader(file);
    const auto& k = reader.info;
    const nn::Vocabulary vocab(nn::decode_utf8(k.vocabulary));
    std::vector<int> tokens;
    std::string what;
    if (o.text.empty()) {
        const nn::TextData data = nn::load_text(fs::path(o.data_dir) / "tinyshakespeare.txt");
        what = "the validation split of " + (fs::path(o.data_dir) / "tinyshakespeare.txt").string();
        tokens = vocab.encode(data.vocab.decode(data.val), what);
    } else {
        what = o.text;
        tokens = vocab.encode(nn::read_file(o.text, std::uint64_t{1} << 28), o.text);
    }
    if (tokens.size() < 2) nn::fail("{} has {} characters: at least 2 are needed to predict one", what, tokens.size());
    nn::Rng init(0);
    Model model(k.config, init);
    reader.restore(model, nullptr);
    model.train(false);

    const int T = k.config.block_size;
    const std::size_t predictions = tokens.size() - 1, full = predictions / static_cast<std::size_t>(T);
    double total = 0;  // the sum of the cross-entropies of every prediction
    auto run = [&](std::size_t first_window, int B, int t) {
        nn::Batch batch{B, t, std::vector<int>(static_cast<std::size_t>(B) * t), std::vector<int>(static_cast<std::size_t>(B) * t)};
        for (int b = 0; b < B; ++b) {
            const std::size_t at = (first_window + static_cast<std::size_t>(b)) * static_cast<std::size_t>(T);
            std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(at), t, batch.x.begin() + b * t);
            std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(at) + 1, t, batch.y.begin() + b * t);
        }
        total += model.loss(batch) * B * t;  // loss() is the mean over the B*t predictions
    };
    if (!o.grad_out.empty()) {  // one batch forward and backward, written in the format of fileio.hpp
        if (full < static_cast<std::size_t>(o.batch_size))
            nn::fail("--grad needs {} full windows of {} characters; {} has {}", o.batch_size, T, what, full);
        nn::check_writable(o.grad_out);
        run(0, o.batch_size, T);
        for (nn::Parameter* p : model.parameters()) p->grad.setZero();
        model.backward();
        const double loss = total / (static_cast<double>(o.batch_size) * T);
        nn::BinaryWriter w(o.grad_out, "NN2GPTGR", 1);
        w.put<double>(loss);
        const std::vector<nn::Parameter*> params = model.parameters();
        nn::put_parameters(w, params, &nn::Parameter::grad);
        w.commit();
        fmt::print("loss {:.6f} on {} windows of {}; the gradients of {} parameters written to {}\n", loss,
                   o.batch_size, T, params.size(), o.grad_out);
        return 0;
    }
    const nn::Stopwatch clock;
    for (std::size_t w = 0; w < full; w += static_cast<std::size_t>(o.batch_size))
        run(w, static_cast<int>(std::min<std::size_t>(o.batch_size, full - w)), T);
    if (const std::size_t rest = predictions - full * static_cast<std::size_t>(T); rest > 0) run(full, 1, static_cast<int>(rest));
    const double mean = total / static_cast<double>(predictions);
    fmt::print("{}: {} characters of {}, {} predictions in {} windows of at most {}\n", file.string(), tokens.size(), what,
               predictions, full + (predictions % static_cast<std::size_t>(T) != 0), T);
    fmt::print("mean cross-entropy {:.6f} (perplexity {:.4f}) in {:.2f} s\n", mean, std::exp(mean), clock.seconds());
    return 0;
}

}  // namespace nn
