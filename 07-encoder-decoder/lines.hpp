// 07-encoder-decoder: the sentence pairs as lines of text, for a decoder-only
// model to train on (06-gpt --text), and translations written by any model
// graded as 07 grades its own (tooling beside the concept).
//
//   --write-lines DIR   DIR/train.txt, DIR/val.txt and DIR/test.txt: the pairs
//                       07 trains, validates and tests on, one line
//                       "source = target" each, in the order 07 holds them
//                       (its fixed shuffle: neighbouring lines are unrelated
//                       sentences, so a window of 06's context that reads a
//                       line and the one before learns nothing from the
//                       neighbour that a prompt would not have)
//   --grade FILE        (--task pronouns) reads "source<TAB>translation"
//                       lines, the source a held-out test sentence, and
//                       prints the table 07 prints for its own translations,
//                       through the same score_translation (probe.hpp)
#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/probe.hpp"
#include "07-encoder-decoder/pronouns.hpp"
#include "common/error.hpp"
#include "common/fileio.hpp"

inline constexpr const char* kLineSeparator = " = ";  // between the source and the target of a line

// The lines of one split: "source = target\n" per pair, the words joined by
// single spaces. InputError if a source holds the word "=", which would make
// the line ambiguous.
inline std::string pair_lines(const PairData& data, const std::vector<Example>& examples) {
    std::string out;
    for (const Example& e : examples) {
        for (int t : e.src)
            if (data.src_vocab.word(t) == "=")
                nn::fail("a source sentence holds the word '=': its pairs cannot be written as \"source = target\" lines");
        out += data.src_vocab.decode(e.src) + kLineSeparator + data.tgt_vocab.decode(e.tgt) + "\n";
    }
    return out;
}

// Writes DIR/train.txt, DIR/val.txt, DIR/test.txt (each atomically) and
// returns how many lines each holds.
inline std::array<std::size_t, 3> write_lines(const PairData& data, const std::filesystem::path& dir) {
    nn::make_directory(dir, "--write-lines");
    const std::array<std::pair<const char*, const std::vector<Example>*>, 3> splits{
        {{"train.txt", &data.train}, {"val.txt", &data.val}, {"test.txt", &data.test}}};
    for (const auto& [name, examples] : splits) nn::check_writable(dir / name);
    std::array<std::size_t, 3> counts{};
    for (std::size_t k = 0; k < splits.size(); ++k) {
        nn::write_file_atomically(dir / splits[k].first, pair_lines(data, *splits[k].second));
        counts[k] = splits[k].second->size();
    }
    return counts;
}

// What --grade read: the scores, and how many of the held-out sentences it covered.
struct Graded {
    PronounScores scores;
    int held_out = 0;  // test sentences of the grammar
};

// Reads "source<TAB>translation" lines (empty lines skipped) and scores each
// translation against its source's sentence of the grammar. InputError, with
// the line number, for a line without exactly one tab, a source that is not a
// sentence of the grammar, one that was trained on or validated on (not
// held out), or one given twice.
inline Graded grade_translations(const std::filesystem::path& path) {
    const std::vector<pronouns::Sentence> sentences = pronouns::all_sentences();
    const std::vector<Split> split = pronouns::split_of(sentences);
    std::map<std::string, std::size_t> index;
    Graded g;
    for (std::size_t i = 0; i < sentences.size(); ++i) {
        index[sentences[i].english] = i;
        g.held_out += split[i] == Split::test;
    }
    std::vector<bool> seen(sentences.size(), false);
    const std::string bytes = nn::read_file(path);
    for (const auto& [line_no, line] : nn::split_lines(bytes)) {
        if (line.empty()) continue;
        const std::size_t tab = line.find('\t');
        if (tab == std::string::npos || line.find('\t', tab + 1) != std::string::npos)
            nn::fail("{}: line {} is not \"source<TAB>translation\" (one tab)", path.string(), line_no);
        const std::string where = fmt::format("{}: line {}", path.string(), line_no);
        std::string source;  // the words joined by single spaces, as the grammar writes them
        for (const std::string& w : split_words(line.substr(0, tab), where)) source += (source.empty() ? "" : " ") + w;
        const auto it = index.find(source);
        if (it == index.end()) nn::fail("{}: '{}' is not a sentence of the pronoun grammar", where, source);
        if (split[it->second] != Split::test)
            nn::fail("{}: '{}' is not held out: 07 {} on it; grade only test sentences", where, source,
                     split[it->second] == Split::train ? "trains" : "validates");
        if (seen[it->second]) nn::fail("{}: '{}' is given twice", where, source);
        seen[it->second] = true;
        score_translation(g.scores, sentences[it->second], split_words(line.substr(tab + 1), where));
    }
    if (g.scores.all.n == 0) nn::fail("{} holds no translations", path.string());
    return g;
}
