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
// A translation has at most src_len + 50 words (the paper's bound: input
// length + 50) and at most max_len - 1: an untrained model, which never
// writes <eos>, stops there too.
//
// Each step runs the decoder on one new position per sentence, with a
// key/value cache (decode_cached.hpp, 06's idea); DecoderSteps' plain form
// recomputes the decoder over all the words so far, as training's forward
// does, and the tests check that both write the same words.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/decode_cached.hpp"
#include "07-encoder-decoder/model.hpp"

// The most words decoding writes for a source of `src_words` words.
inline int max_words(const Config& c, int src_words) { return std::min(c.max_len - 1, src_words + 50); }

// The decoder run one step at a time on B sequences: step(tokens, t) feeds
// sequence b the word tokens[b] at position t and returns the logits that
// predict the word after it, (B, Vt). After encode().
class DecoderSteps {
public:
    DecoderSteps(Transformer& model, int positions, bool use_cache) : model_(model), use_cache_(use_cache) {
        if (use_cache_) start_cache(model_, positions, cache_);
        read_.resize(static_cast<std::size_t>(model_.B));
    }
    const nn::Matrix& step(const std::vector<int>& tokens, int t) {
        filled_ = t + 1;
        if (use_cache_) return decode_cached(model_, tokens, t, cache_);
        const int B = model_.B;
        std::vector<int> tgt_in;  // the plain form: every word read so far, again
        for (int b = 0; b < B; ++b) {
            auto& r = read_[static_cast<std::size_t>(b)];
            r.resize(static_cast<std::size_t>(t));
            r.push_back(tokens[static_cast<std::size_t>(b)]);
            tgt_in.insert(tgt_in.end(), r.begin(), r.end());
        }
        const nn::Matrix& all = model_.decode(tgt_in, t + 1);  // (B*(t+1), Vt)
        last_.resize(B, all.cols());
        for (int b = 0; b < B; ++b) last_.row(b) = all.row(b * (t + 1) + t);  // only the last position predicts
        return last_;
    }
    // Sequence i continues the words of sequence from[i] (beam search's new hypotheses).
    void reorder(const std::vector<int>& from) {
        if (use_cache_) return reorder_cache(cache_, from, filled_);
        std::vector<std::vector<int>> read(read_.size());
        for (std::size_t i = 0; i < from.size(); ++i) read[i] = read_[static_cast<std::size_t>(from[i])];
        read_ = std::move(read);
    }

private:
    Transformer& model_;
    bool use_cache_;
    int filled_ = 0;  // positions read so far
    DecoderCache cache_;
    std::vector<std::vector<int>> read_;  // the plain form's words read by each sequence
    nn::Matrix last_;
};

// The greedy search, on any decoder run step by step (DecoderSteps above):
// decoder.step(tokens, t) feeds sequence b the word tokens[b] at position t
// and returns the logits (B, V) of the word after it. From <bos>, each
// sentence takes its likeliest word and reads it next, until it writes <eos>
// or limit[b] words; a finished sentence reads <pad>.
// limit (B) -> the translations (B), without <bos> and <eos>
// Exercise: greedy_search
template <typename Decoder>
std::vector<std::vector<int>> greedy_search(Decoder& decoder, const std::vector<int>& limit) {
    const int B = static_cast<int>(limit.size());
    const int positions = *std::max_element(limit.begin(), limit.end());
    std::vector<std::vector<int>> out(static_cast<std::size_t>(B));
    std::vector<bool> done(static_cast<std::size_t>(B), false);
    std::vector<int> tokens(static_cast<std::size_t>(B), kBos);
    for (int t = 0; t < positions; ++t) {  // t + 1 words read: <bos> and t written
        const nn::Matrix& logits = decoder.step(tokens, t);
        bool all_done = true;
        for (int b = 0; b < B; ++b) {
            const auto i = static_cast<std::size_t>(b);
            tokens[i] = kPad;  // what a finished sentence reads
            if (done[i]) continue;
            Eigen::Index best;
            logits.row(b).maxCoeff(&best);
            if (best == kEos) done[i] = true;
            else out[i].push_back(tokens[i] = static_cast<int>(best));
            if (static_cast<int>(out[i].size()) == limit[i]) done[i] = true;
            all_done = all_done && done[i];
        }
        if (all_done) break;
    }
    return out;
}

// sources -> their translations (tokens, without <bos> and <eos>), all at once.
inline std::vector<std::vector<int>> greedy_decode(Transformer& model, std::span<const Example* const> sources,
                                                   bool use_cache = true) {
    model.train(false);
    const Batch batch = make_batch(sources);
    const int B = batch.B;
    model.encode(batch.src, batch.src_len, B, batch.Ts);
    std::vector<int> limit;  // the most words sentence b may have
    for (int b = 0; b < B; ++b) limit.push_back(max_words(model.config, batch.src_len[static_cast<std::size_t>(b)]));
    DecoderSteps decoder(model, *std::max_element(limit.begin(), limit.end()), use_cache);
    return greedy_search(decoder, limit);
}

// A partial or finished translation in the beam.
struct Hypothesis {
    std::vector<int> tokens;  // without <bos>
    double score = 0;         // sum of log p of its words (and of <eos> when finished)
};

// sources -> their translations by beam search with K beams, all sentences
// at once: the decoder runs on B*K sequences, each source repeated K times.
inline std::vector<std::vector<int>> beam_decode(Transformer& model, std::span<const Example* const> sources, int K,
                                                 bool use_cache = true) {
    if (K <= 1) return greedy_decode(model, sources, use_cache);
    model.train(false);
    const int B = static_cast<int>(sources.size());
    std::vector<const Example*> repeated;
    for (const Example* e : sources)
        for (int k = 0; k < K; ++k) repeated.push_back(e);
    const Batch batch = make_batch(repeated);
    model.encode(batch.src, batch.src_len, B * K, batch.Ts);
    std::vector<int> limit;  // the most words sentence b may have
    for (int b = 0; b < B; ++b) limit.push_back(max_words(model.config, batch.src_len[static_cast<std::size_t>(b * K)]));
    const int positions = *std::max_element(limit.begin(), limit.end());
    DecoderSteps decoder(model, positions, use_cache);
    const double lost = -std::numeric_limits<double>::infinity();
    // alive[b]: up to K hypotheses; finished[b]: those that ended with <eos>
    std::vector<std::vector<Hypothesis>> alive(static_cast<std::size_t>(B), std::vector<Hypothesis>(1));
    std::vector<std::vector<Hypothesis>> finished(static_cast<std::size_t>(B));
    std::vector<bool> done(static_cast<std::size_t>(B), false);
    const int V = model.config.tgt_vocab_size;
    std::vector<int> tokens(static_cast<std::size_t>(B * K), kBos), from(static_cast<std::size_t>(B * K));
    for (int t = 0; t < positions; ++t) {
        const nn::Matrix& logits = decoder.step(tokens, t);
        for (int i = 0; i < B * K; ++i) from[static_cast<std::size_t>(i)] = i;
        bool all_done = true;
        for (int b = 0; b < B; ++b) {
            // An empty slot, or a sentence whose search is over, reads padding.
            for (int k = 0; k < K; ++k) tokens[static_cast<std::size_t>(b * K + k)] = kPad;
            if (done[static_cast<std::size_t>(b)]) continue;
            auto& a = alive[static_cast<std::size_t>(b)];
            auto& f = finished[static_cast<std::size_t>(b)];
            // Every extension (score, hypothesis k, word v) of every alive hypothesis.
            struct Candidate { double score; int k, v; };
            std::vector<Candidate> candidates;
            for (int k = 0; k < static_cast<int>(a.size()); ++k) {
                const auto z = logits.row(b * K + k).cast<double>();
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
                    const auto slot = static_cast<std::size_t>(b * K) + next.size();
                    from[slot] = b * K + c.k;  // it continues hypothesis c.k's words
                    tokens[slot] = c.v;
                    next.push_back(std::move(h));
                }
            }
            a = std::move(next);
            double best_finished = lost;
            for (const Hypothesis& h : f) best_finished = std::max(best_finished, h.score);
            const double best_alive = a.empty() ? lost : a.front().score;
            if (best_finished >= best_alive || t + 1 == limit[static_cast<std::size_t>(b)])
                done[static_cast<std::size_t>(b)] = true;
            all_done = all_done && done[static_cast<std::size_t>(b)];
        }
        if (all_done) break;
        decoder.reorder(from);
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

// The translations of a whole split, in chunks of at most 512 sentences whose
// decoding buffers (decode_bytes) fit in 256 MB together.
inline std::vector<std::vector<int>> translate_all(Transformer& model, const std::vector<Example>& examples, int beam) {
    int longest = 1;
    for (const Example& e : examples) longest = std::max(longest, static_cast<int>(e.src.size()));
    const double per_sentence = decode_bytes(model.config, std::max(beam, 1), longest, max_words(model.config, longest));
    const auto chunk = static_cast<std::size_t>(std::clamp(256e6 / per_sentence, 1.0, 512.0));
    std::vector<std::vector<int>> out;
    for (std::size_t i = 0; i < examples.size(); i += chunk) {
        std::vector<const Example*> part;
        for (std::size_t j = i; j < std::min(examples.size(), i + chunk); ++j) part.push_back(&examples[j]);
        for (auto& t : beam_decode(model, part, beam)) out.push_back(std::move(t));
    }
    return out;
}
