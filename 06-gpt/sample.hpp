// 06-gpt: the `sample` command, text from a saved model (tooling beside the
// concept; 08-data-parallel includes it too).
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "06-gpt/generate.hpp"
#include "06-gpt/inspect.hpp"
#include "06-gpt/model.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/fileio.hpp"
#include "common/progress.hpp"
#include "common/random.hpp"
#include "common/runtime.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

// What `sample` takes from its command line.
struct SampleOptions {
    std::string checkpoint, prompt, attention_map;
    int max_new_tokens = 500, top_k = 0, num_samples = 1, threads = 1;  // one row at a time: too small to share
    float temperature = 1.0f;
    std::uint64_t seed = 1337;
    bool no_cache = false;
};

inline CLI::App* add_sample_command(CLI::App& app, SampleOptions& o) {
    CLI::App* sample = app.add_subcommand("sample", "Write text with a model saved by --out");
    nn::add_checkpoint_option(*sample, o.checkpoint);
    sample->add_option("--prompt", o.prompt, "Text to continue (default: token 0, a newline in Tiny Shakespeare)");
    sample->add_option("--max-new-tokens", o.max_new_tokens, "Characters to generate per sample")
        ->check(nn::Count(0, 1000000))->capture_default_str();
    sample->add_option("--temperature", o.temperature, "Divide the logits by this before sampling")
        ->check(nn::Positive)->capture_default_str();
    sample->add_option("--top-k", o.top_k, "Sample only among the k likeliest characters (0: all)")
        ->check(nn::Count(0, 2097152))->capture_default_str();
    sample->add_option("--seed", o.seed, "Seed for the sampling")->check(nn::Seed)->capture_default_str();
    sample->add_option("--num-samples", o.num_samples, "How many samples to write")
        ->check(nn::Count(1, 1000))->capture_default_str();
    sample->add_option("--threads", o.threads, "OpenMP threads")->check(nn::Count(1, 256))->capture_default_str();
    sample->add_option("--attention-map", o.attention_map, "Draw every head's attention weights over the prompt "
                       "(at most the model's context) into this PNG, and measure where each head looks");
    sample->add_flag("--no-cache", o.no_cache, "Recompute the whole context for every character (slow; for comparison)");
    return sample;
}

// `sample`: text from a model saved by --out, whose checkpoint `Reader` reads
// (06's CheckpointReader, or 08's).
template <typename Reader>
int sample_command(const SampleOptions& o) {
    nn::set_threads(o.threads);
    const std::filesystem::path file = nn::checkpoint_file(o.checkpoint, "best.ckpt");
    Reader reader(file);
    const auto& k = reader.info;
    const nn::Vocabulary vocab(nn::decode_utf8(k.vocabulary));
    const std::vector<int> context = vocab.prompt(o.prompt);
    if (!o.attention_map.empty()) {
        if (context.size() > static_cast<std::size_t>(k.config.block_size))
            nn::fail("--attention-map: the prompt has {} characters, more than the model's context of {}",
                     context.size(), k.config.block_size);
        nn::check_writable(o.attention_map);
    }
    nn::Rng init(0);
    GPTLanguageModel model(k.config, init);
    reader.restore(model, nullptr);
    if (!o.attention_map.empty()) write_attention_map(model, vocab, context, o.attention_map);
    fmt::print(stderr, "{}: step {}, val loss {:.4f}; {} layers, {} heads, n_embd {}, context {}{}\n", file.string(), k.step,
               k.history.empty() ? NAN : k.history.back().val, k.config.n_layer, k.config.n_head, k.config.n_embd,
               k.config.block_size, k.config.score == Score::dot ? "" : fmt::format(", score {}", kScoreNames[static_cast<std::size_t>(k.config.score)]));
    nn::Rng rng(o.seed);
    long tokens = 0;
    nn::Stopwatch clock;
    for (int s = 0; s < o.num_samples; ++s) {
        const std::vector<int> out = generate(model, context, o.max_new_tokens, rng, o.temperature, o.top_k, !o.no_cache);
        if (o.num_samples > 1) fmt::print("--- sample {} ---\n", s + 1);
        fmt::print("{}\n", vocab.decode(out));
        tokens += o.max_new_tokens;
    }
    const double seconds = clock.seconds();
    std::fflush(stdout);
    fmt::print(stderr, "{} tokens in {:.2f} s: {:.0f} tokens/s ({})\n", tokens, seconds,
               seconds > 0 ? tokens / seconds : 0.0, o.no_cache ? "no cache" : "key/value cache");
    return 0;
}
