// 07-encoder-decoder: the run's tooling beside the concept, as 06-gpt/run.hpp:
// the options of a run that are not settings of the model or of training (the
// task, outputs, threads, the experiments' flags), the memory check, the
// sentence pairs to train on and what they are, and the two commands that
// stand in for training (--grade, --write-lines).
#pragma once
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "07-encoder-decoder/checkpoint.hpp"  // parameter_count
#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/dates.hpp"
#include "07-encoder-decoder/digits.hpp"
#include "07-encoder-decoder/extrapolation.hpp"
#include "07-encoder-decoder/lines.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/probe.hpp"
#include "07-encoder-decoder/pronouns.hpp"
#include "common/cli.hpp"
#include "common/error.hpp"
#include "common/limits.hpp"
#include "common/validators.hpp"

// What a run does besides training (not part of a checkpoint).
struct RunOptions {
    std::string task = "dates";  // the built-in sentence pairs: dates.hpp or pronouns.hpp
    std::string pairs_path, metrics_path, summary_path, plot_path, positions_path, out_dir;
    std::string ablate_head;  // "LAYER.HEAD": zeroed when translating the test set
    std::string lines_dir, grade_path;  // --write-lines, --grade (lines.hpp)
    int threads = 0, beam = 0, show = 5;  // threads 0: one per idle core
    int train_max_len = 0;  // 0: train on every pair; N: only on those of at most N positions (extrapolation.hpp)
};

// --ablate-head's heads, separated by commas: "2.3" (encoder layer 2, head 3,
// both from 1), "self:2.3" (the decoder's self-attention), "cross:2.3"
// (cross-attention); "2.*": every head of that layer. Checked against the model later.
inline std::vector<HeadId> parse_heads(const std::string& text, int n_head) {
    std::vector<HeadId> out;
    for (std::size_t start = 0; start <= text.size();) {
        std::size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string rest = text.substr(start, end - start);
        start = end + 1;
        HeadId id{Heads::encoder, 0, 0};
        for (const auto& [prefix, where] : {std::pair{"self:", Heads::decoder_self}, std::pair{"cross:", Heads::cross}})
            if (rest.starts_with(prefix)) rest.erase(0, std::string(prefix).size()), id.where = where;
        char dot = 0, extra = 0;
        const bool all = rest.ends_with(".*");
        if (all) rest.replace(rest.size() - 1, 1, "1");
        if (std::sscanf(rest.c_str(), "%d%c%d%c", &id.layer, &dot, &id.head, &extra) != 3 || dot != '.' ||
            id.layer < 1 || id.head < 1)
            nn::fail("--ablate-head takes LAYER.HEAD from 1 (2.3: encoder layer 2, head 3; 2.*: all its heads), "
                     "self:LAYER.HEAD (the decoder's self-attention) or cross:LAYER.HEAD, separated by commas; not '{}'",
                     text);
        --id.layer, --id.head;
        for (int h = all ? 0 : id.head; h <= (all ? n_head - 1 : id.head); ++h) out.push_back({id.where, id.layer, h});
    }
    return out;
}

// The heads' names, "2.1,2.2".
inline std::string head_names(const std::vector<HeadId>& heads) {
    std::string out;
    for (const HeadId& id : heads) out += (out.empty() ? "" : ",") + id.name();
    return out;
}

// Refuses settings whose model cannot fit in this machine's memory, before
// anything is allocated: at the least, the parameters with their gradients and
// Adam's two moments, and, for a batch of B pairs of up to T words (the data's
// longest sentence, with <bos> or <eos>: a batch is padded to its longest),
// what each layer keeps at each of the B*T positions (the sums, LayerNorms,
// q, k, v, outputs and their gradients, about 40C, and the feed-forward's
// 6 d_ff), the attention weights and their gradients over up to T keys in
// each of its (at most 3) attentions, and the logits, their softmax and its
// gradient (3 Vt).
inline void check_fits(const Config& c, int B, int T) {
    const double params = parameter_count(c), BT = double(B) * T;
    const double layer = 40.0 * c.d_model + 6.0 * c.d_ff + 3 * 2.0 * c.n_head * T;
    const double activations = BT * (2 * c.n_layer * layer + 3.0 * c.tgt_vocab_size);
    nn::check_fits(4.0 * (4 * params + activations),
                   fmt::format("a model of {:.0f} parameters trained on batches of {} pairs of up to {} words", params,
                               B, T));
}

inline void add_run_options(CLI::App& app, RunOptions& o) {
    app.add_option("--task", o.task, "The built-in sentence pairs: dates (dates.hpp), or pronouns, where \"it\" "
                   "refers to a food or a container and the Spanish adjective agrees with it (pronouns.hpp), or digits, "
                   "strings of 1 to 15 digits read out word by word, for --train-max-len (digits.hpp)")
        ->check(CLI::IsMember({"dates", "pronouns", "digits"}))->capture_default_str();
    app.add_option("--pairs", o.pairs_path, "Train on the sentence pairs of this tab-separated file "
                   "(source<TAB>target per line) instead of the dates");
    app.add_option("--beam", o.beam, "Also translate the test set with beam search of this many beams (0: greedy only)")
        ->check(nn::Count(0, 64))->capture_default_str();
    app.add_option("--show", o.show, "Test sentences to print with their translations")
        ->check(nn::Count(0, 100000))->capture_default_str();
    nn::add_training_outputs(app, o.metrics_path, o.summary_path, o.plot_path);
    app.add_option("--plot-positions", o.positions_path, "Draw the positional-encoding table (position x dimension) into this PNG");
    app.add_option("--threads", o.threads, "OpenMP threads (0: one per core left idle by other programs)")
        ->check(nn::Count(0, 256))
        ->capture_default_str();
    app.add_option("--out", o.out_dir, "Save checkpoints here: best.ckpt (lowest val loss) and last.ckpt");
    app.add_option("--ablate-head", o.ablate_head, "Zero these heads' output when translating the test set after "
                   "training, an experiment: LAYER.HEAD from 1 (the encoder's), self:LAYER.HEAD (the decoder's "
                   "self-attention) or cross:LAYER.HEAD; LAYER.* for all of a layer's heads; several separated by commas");
    app.add_option("--train-max-len", o.train_max_len, "An experiment: train (and validate) only on the pairs of at "
                   "most this many positions (source words, or target words + 1), and score the test set apart for "
                   "the pairs within and beyond it (extrapolation.hpp)")
        ->check(nn::Count(1, 4096));
    app.add_option("--write-lines", o.lines_dir, "Instead of training, write the pairs of the train, val and test "
                   "splits to DIR/train.txt, val.txt, test.txt, one \"source = target\" line each (for 06-gpt --text)");
    app.add_option("--grade", o.grade_path, "Instead of training (--task pronouns), grade the translations of a file "
                   "of \"source<TAB>translation\" lines, the sources held-out test sentences: exact match and agreement");
}

// The run's sentence pairs, split, with their vocabularies: the built-in
// task's (the dates, the pronoun sentences or the digit strings), or those of
// --pairs' file. `sentences`: the pronoun task's, or none.
inline PairData load_pairs(const RunOptions& run, int max_len, const std::vector<pronouns::Sentence>& sentences) {
    if (!run.pairs_path.empty()) return make_pair_data(read_pairs(run.pairs_path), max_len, run.pairs_path);
    if (run.task == "pronouns")
        return make_pair_data(pronouns::sentence_pairs(sentences), max_len, "the pronoun sentences",
                              pronouns::split_of(sentences));
    if (run.task == "digits") return make_pair_data(digits::digit_pairs(), max_len, "the digit strings");
    return make_pair_data(dates::date_pairs(), max_len, "the dates");
}

// The most positions a pair of the data takes: its source's words, or its
// target's and <bos> (or <eos>).
inline int longest_pair(const PairData& data) {
    int longest = 0;
    for (const auto* split : {&data.train, &data.val, &data.test})
        for (const Example& e : *split) longest = std::max({longest, int(e.src.size()), int(e.tgt.size()) + 1});
    return longest;
}

// What the data is: its `n_pairs` pairs and one of them, the vocabularies,
// with --train-max-len the positions the pairs need (`lengths`), and the splits.
inline void print_data(const PairData& data, const Config& config, const RunOptions& run, std::size_t n_pairs,
                const std::map<int, int>& lengths) {
    fmt::print("{}: {} sentence pairs, e.g.\n  {}\n  -> {}\n",
               !run.pairs_path.empty()  ? run.pairs_path
               : run.task == "pronouns" ? "\"it\" and two nouns"
               : run.task == "digits"   ? "strings of 1 to 15 digits"
                                        : "dates from 1900 to 2099",
               n_pairs, data.test_text.front().first, data.test_text.front().second);
    fmt::print("  vocabularies: {} source words, {} target words (with <pad>, <bos>, <eos>)\n", config.src_vocab_size,
               config.tgt_vocab_size);
    if (run.train_max_len > 0)
        fmt::print("  positions a pair needs (source words, or target words + 1): pairs\n    {}\n"
                   "  --train-max-len {}: train and val only on pairs of at most {} positions\n",
                   histogram_text(lengths), run.train_max_len, run.train_max_len);
    if (run.task == "pronouns")
        fmt::print("  train: {} pairs, val: {}, test: {} (every sentence of 20 held-out noun pairs and of 20 "
                   "held-out noun-adjective combinations; none of them is trained on)\n\n",
                   data.train.size(), data.val.size(), data.test.size());
    else
        fmt::print("  train: {} pairs, val: {}, test: {} (a fixed shuffle; no test sentence is trained on)\n\n",
                   data.train.size(), data.val.size(), data.test.size());
}

// --grade, instead of training: grades a file of translations of the
// pronoun task's held-out test sentences (lines.hpp).
inline int grade_command(const RunOptions& run) {
    if (run.task != "pronouns") nn::fail("--grade grades the pronoun task's translations: give --task pronouns");
    const Graded g = grade_translations(run.grade_path);
    fmt::print("{}: {} of the {} held-out test sentences\n", run.grade_path, g.scores.all.n, g.held_out);
    print_pronoun_scores(g.scores);
    return 0;
}

// --write-lines, instead of training: the splits' pairs as "source = target"
// lines, for 06-gpt --text (lines.hpp).
inline int write_lines_command(const PairData& data, const std::string& dir) {
    const auto n = write_lines(data, dir);
    fmt::print("wrote {} training, {} validation and {} test pairs as \"source = target\" lines to {}/"
               "train.txt, val.txt, test.txt\n", n[0], n[1], n[2], dir);
    return 0;
}
