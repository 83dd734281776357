// 07-encoder-decoder: the decoder one position at a time, with a key/value
// cache (speed, not a new concept: 06's generate.hpp does the same).
//
// In the plain form, each decoding step runs Transformer::decode over every
// word read so far and keeps only the last position's logits. The decoder's
// self-attention is causal, so the keys and values of the earlier positions
// do not change when a word is appended, and cross-attention's keys and
// values come from the encoder's output, which does not change at all. The
// cache keeps both, and each step costs one position's work per sentence: its
// q, k and v, its attention over the cached keys, its feed-forward layer and
// its logits, (B, Vt) instead of (B*(t+1), Vt).
#pragma once
#include <vector>

#include "07-encoder-decoder/attention.hpp"
#include "07-encoder-decoder/model.hpp"

struct DecoderCache {
    int positions = 0;                 // L: the most positions a sequence reads
    std::vector<nn::Matrix> self_kv;   // n_layer of (B*L, 2C): [k | v] of self-attention, row b L + t
    std::vector<nn::Matrix> cross_kv;  // n_layer of (B*Ts, 2C): [k | v] of cross-attention, from the memory
    std::vector<int> seen;             // (B): keys the newest query sees, t + 1
    nn::Matrix logits;                 // (B, Vt)
};

// The bytes decoding a sentence with K beams takes, at the most, for a source
// of Ts words and translations of up to L words: the encoder's activations and
// attention, the caches, one position's activations and the logits (floats).
inline double decode_bytes(const Config& c, int K, int Ts, int L) {
    const double C = c.d_model, encoder = Ts * (12 * C + 2.0 * c.d_ff + 2.0 * c.n_head * Ts);
    const double caches = c.n_layer * 2 * C * (L + Ts), step = 12 * C + 2.0 * c.d_ff + c.n_head * (L + Ts);
    return 4.0 * K * (c.n_layer * encoder + caches + c.n_layer * step + c.tgt_vocab_size);
}

// After model.encode(): room for `positions` positions of each of the B
// sequences, and cross-attention's keys and values of the memory.
inline void start_cache(Transformer& m, int positions, DecoderCache& cache) {
    const int B = m.B, C = m.config.d_model;
    cache.positions = positions;
    cache.self_kv.assign(m.decoder.size(), nn::Matrix::Zero(static_cast<Eigen::Index>(B) * positions, 2 * C));
    cache.cross_kv.clear();
    for (DecoderLayer& layer : m.decoder) cache.cross_kv.push_back(layer.ca.key_value.forward(m.memory));
}

// Transformer::decode for one new position t of each sequence: sequence b
// reads tokens[b], its earlier positions' keys and values are in the cache.
// -> logits (B, Vt) predicting the word after position t.
inline const nn::Matrix& decode_cached(Transformer& m, const std::vector<int>& tokens, int t, DecoderCache& cache) {
    const int B = m.B, C = m.config.d_model, L = cache.positions, nh = m.config.n_head;
    if (t < 0 || t >= L || tokens.size() != static_cast<std::size_t>(B))
        nn::fail("decode_cached needs {} tokens at a position below {}, got {} at {}", B, L, tokens.size(), t);
    m.y.resize(B, C);
    for (int b = 0; b < B; ++b) m.y.row(b) = m.tgt_embedding.weight.value.row(tokens[static_cast<std::size_t>(b)]) * m.embedding_scale();
    m.y.rowwise() += m.positions.table.value.row(t);
    cache.seen.assign(static_cast<std::size_t>(B), t + 1);
    const nn::Matrix* h = &m.y;
    for (std::size_t l = 0; l < m.decoder.size(); ++l) {
        DecoderLayer& d = m.decoder[l];
        // Masked self-attention: this position's k and v join the cache; its
        // query reads keys [0, t] (the causal mask: no later word is there yet).
        const nn::Matrix& qkv = d.sa.c_attn.forward(d.an1.sublayer_input(*h));  // (B, 3C)
        for (int b = 0; b < B; ++b) cache.self_kv[l].row(b * L + t) = qkv.row(b).tail(2 * C);
        attention_forward({C, qkv, 0, cache.self_kv[l], 0, C}, B, 1, L, nh, false, cache.seen.data(), nullptr, d.sa.att,
                          d.sa.out);
        zero_heads(d.sa.out, d.sa.ablated, d.sa.head_size);  // --ablate-head
        d.sa.proj.forward(d.sa.out);
        d.sa.resid_dropout.forward(d.sa.proj.y);  // in place (nothing while decoding: dropout is off)
        const nn::Matrix& y1 = d.an1.forward(*h, d.sa.proj.y);
        // Cross-attention over the source, whose keys and values are cached.
        d.ca.query.forward(d.an2.sublayer_input(y1));  // (B, C)
        attention_forward({C, d.ca.query.y, 0, cache.cross_kv[l], 0, C}, B, 1, m.Ts, nh, false, m.src_len.data(),
                          nullptr, d.ca.att, d.ca.out);
        zero_heads(d.ca.out, d.ca.ablated, d.ca.head_size);
        d.ca.proj.forward(d.ca.out);
        d.ca.resid_dropout.forward(d.ca.proj.y);
        const nn::Matrix& y2 = d.an2.forward(y1, d.ca.proj.y);
        h = &d.an3.forward(y2, d.ffwd.forward(d.an3.sublayer_input(y2)));
    }
    cache.logits.noalias() = m.dec_norm.forward(*h) * m.tgt_embedding.weight.value.transpose();
    return cache.logits;
}

// Sequence i continues the words of sequence from[i]: its first `filled`
// cached positions become those of from[i] (beam search's new hypotheses).
inline void reorder_cache(DecoderCache& cache, const std::vector<int>& from, int filled) {
    const Eigen::Index L = cache.positions;
    for (nn::Matrix& kv : cache.self_kv) {
        std::vector<nn::Matrix> moved;  // the rows that move, read before any is overwritten
        for (std::size_t i = 0; i < from.size(); ++i)
            if (from[i] != static_cast<int>(i)) moved.push_back(kv.middleRows(from[i] * L, filled));
        std::size_t m = 0;
        for (std::size_t i = 0; i < from.size(); ++i)
            if (from[i] != static_cast<int>(i)) kv.middleRows(static_cast<Eigen::Index>(i) * L, filled) = moved[m++];
    }
}
