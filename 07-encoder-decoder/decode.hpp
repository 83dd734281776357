// 07-encoder-decoder: decoding, writing the translation one word at a time.
//
// Training feeds the decoder the right target words (teacher forcing): one
// forward pass predicts every position at once. A translation has no right
// words to feed; the decoder reads its own. The encoder runs once; then, from
// <bos>, the decoder runs on the words written so far and its last position
// predicts the next word, until <eos> or max_len tokens.
//   greedy: take the likeliest word each time.
//   beam search (K): keep the K likeliest partial translations (by the sum of
//     their words' log probabilities), extend each by every word, keep the K
//     best of those; a translation that ends with <eos> is finished, and the
//     search stops when no unfinished one can beat the best finished one
//     (a log probability only falls as words are added). Greedy is K = 1.
// Each step recomputes the decoder over all the words so far, the plain form
// of 06's key/value cache: sentences here are a dozen words.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/model.hpp"

// The row of logits that predicts the word after position t of sequence b: (1, Vt)
inline auto next_word_logits(const Transformer& m, int b, int t) { return m.logits.row(b * m.Tt + t); }

// sources -> their translations (tokens, without <bos> and <eos>), all at once.
inline std::vector<std::vector<int>> greedy_decode(Transformer& model, std::span<const Example* const> sources) {
    model.train(false);
    const Batch batch = make_batch(sources);
    const int B = batch.B;
    model.encode(batch.src, batch.src_len, B, batch.Ts);
    std::vector<std::vector<int>> out(static_cast<std::size_t>(B));
    std::vector<bool> done(static_cast<std::size_t>(B), false);
    for (int t = 0; t + 1 < model.config.max_len; ++t) {  // t + 1 words read: <bos> and t written
        std::vector<int> tgt_in;
        for (int b = 0; b < B; ++b) {
            tgt_in.push_back(kBos);
            for (int s = 0; s < t; ++s) {
                const auto& o = out[static_cast<std::size_t>(b)];
                tgt_in.push_back(s < static_cast<int>(o.size()) ? o[static_cast<std::size_t>(s)] : kPad);
            }
        }
        model.decode(tgt_in, t + 1);
        bool all_done = true;
        for (int b = 0; b < B; ++b) {
            if (done[static_cast<std::size_t>(b)]) continue;
            Eigen::Index best;
            next_word_logits(model, b, t).maxCoeff(&best);
            if (best == kEos) done[static_cast<std::size_t>(b)] = true;
            else out[static_cast<std::size_t>(b)].push_back(static_cast<int>(best));
            all_done = all_done && done[static_cast<std::size_t>(b)];
        }
        if (all_done) break;
    }
    return out;
}

// A partial or finished translation in the beam.
struct Hypothesis {
    std::vector<int> tokens;  // without <bos>
    double score = 0;         // sum of log p of its words (and of <eos> when finished)
};

// sources -> their translations by beam search with K beams, all sentences
// at once: the decoder runs on B*K sequences, each source repeated K times.
inline std::vector<std::vector<int>> beam_decode(Transformer& model, std::span<const Example* const> sources, int K) {
    if (K <= 1) return greedy_decode(model, sources);
    model.train(false);
    const int B = static_cast<int>(sources.size());
    std::vector<const Example*> repeated;
    for (const Example* e : sources)
        for (int k = 0; k < K; ++k) repeated.push_back(e);
    const Batch batch = make_batch(repeated);
    model.encode(batch.src, batch.src_len, B * K, batch.Ts);
    const double lost = -std::numeric_limits<double>::infinity();
    // alive[b]: up to K hypotheses; finished[b]: those that ended with <eos>
    std::vector<std::vector<Hypothesis>> alive(static_cast<std::size_t>(B), std::vector<Hypothesis>(1));
    std::vector<std::vector<Hypothesis>> finished(static_cast<std::size_t>(B));
    std::vector<bool> done(static_cast<std::size_t>(B), false);
    const int V = model.config.tgt_vocab_size;
    for (int t = 0; t + 1 < model.config.max_len; ++t) {
        std::vector<int> tgt_in;
        for (int b = 0; b < B; ++b)
            for (int k = 0; k < K; ++k) {
                // An empty slot, or a sentence whose search is over, reads padding.
                const auto& a = alive[static_cast<std::size_t>(b)];
                const bool used = !done[static_cast<std::size_t>(b)] && k < static_cast<int>(a.size());
                tgt_in.push_back(kBos);
                for (int s = 0; s < t; ++s)
                    tgt_in.push_back(used ? a[static_cast<std::size_t>(k)].tokens[static_cast<std::size_t>(s)] : kPad);
            }
        model.decode(tgt_in, t + 1);
        bool all_done = true;
        for (int b = 0; b < B; ++b) {
            if (done[static_cast<std::size_t>(b)]) continue;
            auto& a = alive[static_cast<std::size_t>(b)];
            auto& f = finished[static_cast<std::size_t>(b)];
            // Every extension (score, hypothesis k, word v) of every alive hypothesis.
            struct Candidate { double score; int k, v; };
            std::vector<Candidate> candidates;
            for (int k = 0; k < static_cast<int>(a.size()); ++k) {
                const auto z = next_word_logits(model, b * K + k, t).cast<double>();
                const double lse = nn::log_sum_exp(z);
                for (int v = static_cast<int>(kSpecials.size()) - 1; v < V; ++v)  // <eos> and the words
                    candidates.push_back({a[static_cast<std::size_t>(k)].score + z(v) - lse, k, v});
            }
            const std::size_t keep = std::min<std::size_t>(candidates.size(), 2 * static_cast<std::size_t>(K));
            std::partial_sort(candidates.begin(), candidates.begin() + static_cast<long>(keep), candidates.end(),
                              [](const Candidate& x, const Candidate& y) { return x.score > y.score; });
            std::vector<Hypothesis> next;
            for (std::size_t i = 0; i < keep && static_cast<int>(next.size()) < K; ++i) {
                const Candidate& c = candidates[i];
                Hypothesis h{a[static_cast<std::size_t>(c.k)].tokens, c.score};
                if (c.v == kEos) {
                    f.push_back(std::move(h));
                } else {
                    h.tokens.push_back(c.v);
                    next.push_back(std::move(h));
                }
            }
            a = std::move(next);
            double best_finished = lost;
            for (const Hypothesis& h : f) best_finished = std::max(best_finished, h.score);
            const double best_alive = a.empty() ? lost : a.front().score;
            if (best_finished >= best_alive) done[static_cast<std::size_t>(b)] = true;
            all_done = all_done && done[static_cast<std::size_t>(b)];
        }
        if (all_done) break;
    }
    std::vector<std::vector<int>> out;
    for (int b = 0; b < B; ++b) {
        const Hypothesis* best = nullptr;
        for (const auto* pool : {&finished[static_cast<std::size_t>(b)], &alive[static_cast<std::size_t>(b)]})
            for (const Hypothesis& h : *pool)
                if (best == nullptr || h.score > best->score) best = &h;
        out.push_back(best != nullptr ? best->tokens : std::vector<int>{});
    }
    return out;
}

// The translations of a whole split, `chunk` sentences at a time.
inline std::vector<std::vector<int>> translate_all(Transformer& model, const std::vector<Example>& examples, int beam,
                                                   int chunk = 512) {
    std::vector<std::vector<int>> out;
    for (std::size_t i = 0; i < examples.size(); i += static_cast<std::size_t>(chunk)) {
        std::vector<const Example*> part;
        for (std::size_t j = i; j < std::min(examples.size(), i + static_cast<std::size_t>(chunk)); ++j)
            part.push_back(&examples[j]);
        for (auto& t : beam_decode(model, part, beam)) out.push_back(std::move(t));
    }
    return out;
}
