// 07-encoder-decoder: the `translate` command, one sentence from a saved
// model, how sure the model is of it, and its attention maps (tooling beside
// the concept, as 06-gpt/sample.hpp).
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "07-encoder-decoder/checkpoint.hpp"
#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/decode.hpp"
#include "07-encoder-decoder/maps.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/probe.hpp"
#include "07-encoder-decoder/run.hpp"
#include "common/checkpoint.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/random.hpp"
#include "common/runtime.hpp"
#include "common/validators.hpp"

struct TranslateOptions {
    std::string checkpoint, text, map_path, encoder_map_path, ablate_head, explain;
    int beam = 0, threads = 1;
    bool verbose = false;
};

// Below this mean log-probability per word (a geometric mean probability of
// e^-0.2 = 0.82), translate warns that the model is unsure of what it wrote.
// Trained with label smoothing 0.1, the model gives a word it is sure of
// p = 0.9 at most (log -0.105): on 400 test dates the default run's model
// averaged -0.099 to -0.109; "march first", outside its grammar, -0.32.
inline constexpr double kLowConfidence = -0.2;

inline CLI::App* add_translate_command(CLI::App& app, TranslateOptions& o) {
    CLI::App* translate = app.add_subcommand("translate", "Translate one sentence with a model saved by --out");
    nn::add_checkpoint_option(*translate, o.checkpoint);
    translate->add_option("--text", o.text, "The sentence to translate, e.g. \"november twenty-eighth two thousand twenty-six\"")
        ->required();
    translate->add_option("--beam", o.beam, "Beam search with this many beams (0 or 1: greedy)")
        ->check(nn::Count(0, 64))->capture_default_str();
    translate->add_option("--cross-attention-map", o.map_path,
                          "Draw each decoder layer's cross-attention (averaged over heads) into this PNG");
    translate->add_option("--encoder-attention-map", o.encoder_map_path,
                          "Draw the encoder's self-attention, every layer (rows) and head (columns), into this PNG");
    translate->add_option("--ablate-head", o.ablate_head, "Zero these heads' output, an experiment: LAYER.HEAD from 1 "
                          "(the encoder's), self:LAYER.HEAD or cross:LAYER.HEAD; LAYER.* for a whole layer; several "
                          "separated by commas");
    translate->add_option("--explain", o.explain, "Print how the encoder's self-attention weighs the source words for "
                          "this word of --text (the scores q.k/sqrt(hs) and their softmax, every layer and head), and "
                          "the decoder's cross-attention when it writes the last word");
    translate->add_option("--threads", o.threads, "OpenMP threads")->check(nn::Count(1, 256))->capture_default_str();
    translate->add_flag("--verbose", o.verbose,
                        "Also print on stderr each word written with its probability, and their mean log-probability");
    return translate;
}

// 07-encoder-decoder translate: one sentence, from a saved model.
inline int translate_command(const TranslateOptions& o) {
    nn::set_threads(o.threads);
    const std::filesystem::path file = checkpoint_file(o.checkpoint, "best.ckpt");
    CheckpointReader reader(file);
    const Checkpoint& k = reader.info;
    const std::vector<std::string> words = split_words(o.text, "--text");
    if (words.empty()) nn::fail("--text is empty: give a sentence to translate");
    refuse_specials(words, "--text");
    if (static_cast<int>(words.size()) > k.config.max_len - 1)
        nn::fail("--text has {} words, more than the {} this model takes (--max-len {})", words.size(),
                 k.config.max_len - 1, k.config.max_len);
    // The maps' files are checked before the work, as every output is.
    if (!o.map_path.empty()) nn::check_writable(o.map_path);
    if (!o.encoder_map_path.empty()) nn::check_writable(o.encoder_map_path);
    const Example source{k.src_vocab.encode(words, "--text"), {}};
    const auto explained = std::find(words.begin(), words.end(), o.explain);  // its first occurrence
    if (!o.explain.empty() && explained == words.end())
        nn::fail("--explain '{}' is not a word of --text", o.explain);
    nn::Rng init(0);
    Transformer model(k.config, init);
    reader.restore(model);
    if (!o.ablate_head.empty()) model.ablate(parse_heads(o.ablate_head, k.config.n_head));
    const Example* sources[] = {&source};
    const std::vector<int> out = beam_decode(model, sources, o.beam).front();
    fmt::print("{}\n", k.tgt_vocab.decode(out));
    std::fflush(stdout);

    // How sure the model is of what it wrote: the decoder reads <bos> and the
    // translation (teacher forcing on its own words), and row t of the logits
    // gives the probability of the word written at t, then of <eos>, if the
    // sentence ended rather than reaching the most words it may have.
    const int src_len = static_cast<int>(source.src.size());
    std::vector<int> tgt_in{kBos};
    tgt_in.insert(tgt_in.end(), out.begin(), out.end());
    model.encode(source.src, std::vector<int>{src_len}, 1, src_len);
    const nn::Matrix& logits = model.decode(tgt_in, static_cast<int>(tgt_in.size()));
    const bool ended = static_cast<int>(out.size()) < max_words(k.config, src_len);
    double sum = 0;
    int count = 0;
    for (std::size_t t = 0; t < out.size() + (ended ? 1 : 0); ++t) {
        const int word = t < out.size() ? out[t] : kEos;
        const auto row = logits.row(static_cast<Eigen::Index>(t));
        const double logp = static_cast<double>(row(word)) - nn::log_sum_exp(row);
        sum += logp, ++count;
        if (o.verbose) fmt::print(stderr, "  {:<14} p {:.4f}\n", k.tgt_vocab.word(word), std::exp(logp));
    }
    const double mean = sum / count;
    if (o.verbose)
        fmt::print(stderr, "mean log-probability {:.4f} over {} (a warning below {})\n", mean,
                   out.empty() ? std::string("<eos> alone")
                               : fmt::format("{} word{}{}", out.size(), out.size() == 1 ? "" : "s",
                                             ended ? " and <eos>" : " (no <eos>: the most words it may write)"),
                   kLowConfidence);
    if (out.empty())
        fmt::print(stderr, "07-encoder-decoder: warning: the translation is empty: the model wrote <eos> first "
                           "(p {:.4f}); the sentence is probably outside what it was trained on\n", std::exp(mean));
    else if (mean < kLowConfidence)
        fmt::print(stderr, "07-encoder-decoder: warning: low confidence: mean log-probability {:.4f} per word, below {}; "
                           "the sentence is probably outside what the model was trained on\n", mean, kLowConfidence);
    if (!o.map_path.empty()) plot_cross_attention(model, k.src_vocab, k.tgt_vocab, source.src, out, o.map_path);
    if (!o.encoder_map_path.empty()) plot_encoder_attention(model, k.src_vocab, source.src, o.encoder_map_path);
    if (!o.explain.empty())
        explain_word(model, k.src_vocab, k.tgt_vocab, source.src, out, static_cast<int>(explained - words.begin()));
    return 0;
}
