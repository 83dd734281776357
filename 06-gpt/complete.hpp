// 06-gpt: the `complete` command, each line of a file completed greedily by
// a saved model (tooling beside the concept). A model trained with --text on
// lines "english = spanish" (07-encoder-decoder --write-lines) is asked to
// translate the way a nanoGPT user would ask: the line up to and including
// " = ", then the likeliest character, again and again, until a newline.
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "06-gpt/generate.hpp"
#include "06-gpt/model.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/fileio.hpp"
#include "common/progress.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

// What `complete` takes from its command line.
struct CompleteOptions {
    std::string checkpoint, prompts, separator = " = ";
    int max_new_tokens = 200, threads = 1;  // one row at a time: too small to share
};

inline CLI::App* add_complete_command(CLI::App& app, CompleteOptions& o) {
    CLI::App* complete = app.add_subcommand("complete", "Complete each line of a file greedily with a model saved by "
                                                        "--out, e.g. translate \"english = \" lines");
    nn::add_checkpoint_option(*complete, o.checkpoint);
    complete->add_option("--prompts", o.prompts, "A UTF-8 file of lines; each line up to and including --separator "
                         "(or the whole line, then the separator, if it has none) is a prompt. Prints "
                         "\"text before the separator<TAB>completion\" per line")->required();
    complete->add_option("--separator", o.separator, "Where a line's prompt ends")->capture_default_str();
    complete->add_option("--max-new-tokens", o.max_new_tokens, "The most characters to write per line (also "
                         "stopped by a newline, or when the model's context is full)")
        ->check(nn::Count(1, 1000000))->capture_default_str();
    complete->add_option("--threads", o.threads, "OpenMP threads")->check(nn::Count(1, 256))->capture_default_str();
    return complete;
}

// `complete`: every non-empty line of --prompts, in order. The context of a
// line starts with a newline when the vocabulary has one (in a text of lines,
// every line but the first follows one), then the prompt.
template <typename Reader>
int complete_command(const CompleteOptions& o) {
    nn::set_threads(o.threads);
    if (o.separator.empty()) nn::fail("--separator is empty: give the text that ends a prompt, e.g. \" = \"");
    const std::filesystem::path file = nn::checkpoint_file(o.checkpoint, "best.ckpt");
    Reader reader(file);
    const auto& k = reader.info;
    const nn::Vocabulary vocab(nn::decode_utf8(k.vocabulary));
    const std::u32string chars = nn::decode_utf8(k.vocabulary);
    const int stop = static_cast<int>(std::find(chars.begin(), chars.end(), U'\n') - chars.begin());  // size(): none
    const std::string bytes = nn::read_file(o.prompts, std::uint64_t{1} << 28);
    struct Prompt {
        std::string source;
        std::vector<int> context;
    };
    std::vector<Prompt> prompts;  // all read and checked before the model is built
    for (const auto& [line_no, line] : nn::split_lines(bytes)) {
        if (line.empty()) continue;
        const std::size_t at = line.find(o.separator);
        Prompt p{line.substr(0, at), {}};
        if (stop < vocab.size()) p.context.push_back(stop);
        const std::vector<int> text = vocab.encode(p.source + o.separator, fmt::format("{}: line {}", o.prompts, line_no));
        p.context.insert(p.context.end(), text.begin(), text.end());
        if (p.context.size() > static_cast<std::size_t>(k.config.block_size))
            nn::fail("{}: line {}: the prompt has {} characters, more than the model's context of {}", o.prompts,
                     line_no, p.context.size(), k.config.block_size);
        prompts.push_back(std::move(p));
    }
    if (prompts.empty()) nn::fail("{} holds no lines to complete", o.prompts);
    nn::Rng init(0);
    GPTLanguageModel model(k.config, init);
    reader.restore(model, nullptr);
    const nn::Stopwatch clock;
    nn::Progress progress("line", static_cast<int>(prompts.size()));
    for (std::size_t i = 0; i < prompts.size(); ++i) {
        const std::vector<int> out = complete_greedy(model, prompts[i].context, stop, o.max_new_tokens);
        progress.clear();
        fmt::print("{}\t{}\n", prompts[i].source, vocab.decode(out));
        progress.update(static_cast<int>(i + 1));
    }
    progress.clear();
    std::fflush(stdout);
    fmt::print(stderr, "{} lines completed greedily in {:.1f} s with {}\n", prompts.size(), clock.seconds(), file.string());
    return 0;
}
