// 07-encoder-decoder: an experiment (--train-max-len N). Train only on the
// pairs that fit in the first N positions, and test on the held-out pairs
// split by length: those that fit, and those that need later positions.
// Encoder and decoder add rows of the same position table, so a pair needs
// as many positions as its source has words, or its target words + 1 (the
// decoder reads <bos> y_1 .. y_n), whichever is more. Trained this way, a
// learned table's rows N and beyond never get a gradient and keep their
// random start; the sinusoids are defined at every position. Does either
// read (and write) a sentence longer than any it was trained on?
#pragma once
#include <algorithm>
#include <map>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/core.h>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/model.hpp"
#include "common/error.hpp"

// The positions a pair takes, on the side that needs more.
inline int positions_needed(const Example& e) {
    return std::max(static_cast<int>(e.src.size()), static_cast<int>(e.tgt.size()) + 1);
}

// How many pairs (of every split) need each number of positions.
inline std::map<int, int> length_histogram(const PairData& data) {
    std::map<int, int> count;
    for (const auto* split : {&data.train, &data.val, &data.test})
        for (const Example& e : *split) ++count[positions_needed(e)];
    return count;
}

// Keeps in the train and val splits only the pairs of at most n positions;
// the test split stays as it is. InputError unless 1 <= n < max_len and a
// training pair and a validation pair remain.
inline void keep_short_pairs(PairData& data, int n, int max_len) {
    if (n < 1 || n >= max_len)
        nn::fail("--train-max-len {} must be from 1 to --max-len - 1 = {}: the positions training may use", n,
                 max_len - 1);
    int shortest = max_len;
    for (auto* split : {&data.train, &data.val}) {
        for (const Example& e : *split) shortest = std::min(shortest, positions_needed(e));
        std::erase_if(*split, [n](const Example& e) { return positions_needed(e) > n; });
    }
    if (data.train.empty() || data.val.empty())
        nn::fail("--train-max-len {} leaves no {} pair: the shortest needs {} positions", n,
                 data.train.empty() ? "training" : "validation", shortest);
}

// The test pairs of one length group, translated: exact matches, and words
// right at their place (of the reference's words).
struct LengthScores {
    int pairs = 0, exact = 0;
    long words = 0, words_right = 0;
    int unseen = 0;  // pairs whose source holds a word no training pair has
};
struct ByLength {
    LengthScores within, beyond;  // at most n positions, more
};

// Scores the translations `out` of `test` by length: within n positions or beyond.
inline ByLength score_by_length(const std::vector<Example>& train, const std::vector<Example>& test,
                                const std::vector<std::vector<int>>& out, int n) {
    std::unordered_set<int> trained;
    for (const Example& e : train) trained.insert(e.src.begin(), e.src.end());
    ByLength by;
    for (std::size_t i = 0; i < test.size(); ++i) {
        const Example& e = test[i];
        LengthScores& s = positions_needed(e) <= n ? by.within : by.beyond;
        ++s.pairs;
        if (out[i] == e.tgt) ++s.exact;
        for (std::size_t t = 0; t < e.tgt.size(); ++t) {
            ++s.words;
            if (t < out[i].size() && out[i][t] == e.tgt[t]) ++s.words_right;
        }
        if (std::any_of(e.src.begin(), e.src.end(), [&](int w) { return !trained.contains(w); })) ++s.unseen;
    }
    return by;
}

// "7: 717, 8: 25796, ..."
inline std::string histogram_text(const std::map<int, int>& count) {
    std::string out;
    for (const auto& [positions, pairs] : count) out += fmt::format("{}{}: {}", out.empty() ? "" : ", ", positions, pairs);
    return out;
}

// One line per group: "exact match within 9 positions: 2650 / 2650 (100.00%), words in place 100.00%"
inline void print_by_length(const ByLength& by, int n) {
    for (const auto& [name, s] : {std::pair{"within", by.within}, std::pair{"beyond", by.beyond}}) {
        if (s.pairs == 0) {
            fmt::print("exact match {} {} positions: no test pair\n", name, n);
            continue;
        }
        fmt::print("exact match {} {} positions: {} / {} ({:.2f}%), words in place {:.2f}%{}\n", name, n, s.exact,
                   s.pairs, 100.0 * s.exact / s.pairs, 100.0 * static_cast<double>(s.words_right) / s.words,
                   s.unseen == 0 ? "" : fmt::format("; {} of these sources hold a word no training pair has", s.unseen));
    }
}

// Where the translation stops (the decoder's <eos> decision) set apart: the
// test pairs beyond n positions with teacher forcing, the decoder reading
// the reference <bos> y_1 .. y_k, so that position t predicts y_(t+1) after
// the right words, and taking the likeliest word other than <eos> (and the
// other specials). Training wrote words 1 to n-1 at most (at positions 0 to
// n-2; position n-1 only ever wrote <eos>). Counts the words right among
// words 1 to n-1, and among word n and after.
struct ForcedScores {
    long before = 0, before_right = 0, after = 0, after_right = 0;
};
inline ForcedScores forced_beyond(Transformer& model, const std::vector<Example>& test, int n) {
    model.train(false);
    std::vector<const Example*> beyond;
    for (const Example& e : test)
        if (positions_needed(e) > n) beyond.push_back(&e);
    ForcedScores s;
    constexpr std::size_t kChunk = 256;
    const auto words = static_cast<Eigen::Index>(kSpecials.size());
    for (std::size_t i = 0; i < beyond.size(); i += kChunk) {
        const std::span<const Example* const> part(beyond.data() + i, std::min(kChunk, beyond.size() - i));
        const Batch batch = make_batch(part);
        model.encode(batch.src, batch.src_len, batch.B, batch.Ts);
        const nn::Matrix& logits = model.decode(batch.tgt_in, batch.Tt);  // (B*Tt, Vt)
        for (int b = 0; b < batch.B; ++b) {
            const std::vector<int>& tgt = part[static_cast<std::size_t>(b)]->tgt;
            for (int t = 0; t < static_cast<int>(tgt.size()); ++t) {
                Eigen::Index best;
                logits.row(b * batch.Tt + t).tail(logits.cols() - words).maxCoeff(&best);
                const bool right = best + words == tgt[static_cast<std::size_t>(t)];
                (t < n - 1 ? s.before : s.after) += 1;
                (t < n - 1 ? s.before_right : s.after_right) += right ? 1 : 0;
            }
        }
    }
    return s;
}

// The line print_forced prints: each group's share of words right and its
// count, or "none" for a group without words (a pair can be beyond n
// positions by its source alone, its target shorter than n - 1 words).
inline std::string forced_text(const ForcedScores& s, int n) {
    auto share = [](long right, long words) {
        return fmt::format("{:.2f}% ({} words)", 100.0 * static_cast<double>(right) / static_cast<double>(words), words);
    };
    return fmt::format("teacher-forced, <eos> left out, the pairs beyond {} positions: words 1-{} {}, word {} and after {}",
                       n, n - 1, s.before == 0 ? "none" : "right " + share(s.before_right, s.before), n,
                       s.after == 0 ? "none" : share(s.after_right, s.after));
}

inline void print_forced(const ForcedScores& s, int n) {
    if (s.before + s.after == 0) return;
    fmt::print("{}\n", forced_text(s, n));
}
