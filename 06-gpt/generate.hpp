// 06-gpt: generate, with a key/value cache (speed, not a new concept).
//
// In the plain form, 05's way, every new character runs the model's forward
// over the whole window of context and keeps only the last row of logits.
// The keys and values of the earlier positions do not change when a
// character is appended (attention is causal), so the cache keeps them and
// each new character costs one position's work. generate(..., false) is the
// plain form; the tests check that both give the same tokens.
// complete_greedy, at the end, takes the likeliest character every time
// instead of sampling (`06-gpt complete`).
#pragma once
#include <algorithm>
#include <span>
#include <vector>

#include "06-gpt/model.hpp"
#include "common/error.hpp"
#include "common/sampling.hpp"

// The keys and values of the positions generated so far, per block.
struct KVCache {
    std::vector<nn::Matrix> k, v;  // n_layer of (block_size, C)
    int length = 0;                // positions filled
};

// MultiHeadAttention::forward for one new position: x (1, C) is the input at
// position `pos`; its key and value join rows [0, pos) of the cache, which
// hold the earlier positions', and only this one query is computed. -> y (1, C)
inline const nn::Matrix& attention_cached(MultiHeadAttention& sa, const nn::Matrix& x, nn::Matrix& k_cache,
                                          nn::Matrix& v_cache, int pos) {
    const int C = sa.n_head * sa.head_size, hs = sa.head_size;
    const nn::Matrix& qkv = sa.c_attn.forward(x);  // (1, 3C)
    k_cache.row(pos) = qkv.row(0).segment(C, C);
    v_cache.row(pos) = qkv.row(0).segment(2 * C, C);
    const float scale = sa.att.scale(hs);
    nn::Matrix& wei = sa.att.wei;
    sa.out.resize(1, C);
    wei.resize(1, pos + 1);
    for (int h = 0; h < sa.n_head; ++h) {
        const auto q = qkv.block(0, h * hs, 1, hs);            // (1, hs)
        const auto k = k_cache.block(0, h * hs, pos + 1, hs);  // (pos+1, hs)
        const auto v = v_cache.block(0, h * hs, pos + 1, hs);  // (pos+1, hs)
        if (sa.att.score == Score::dot) wei.noalias() = scale * q * k.transpose();  // (1, pos+1)
        else score_forward(sa.att.score, q, k, scale, wei);                         // --score
        nn::softmax_rows(wei);                                 // the newest query sees all
        sa.out.block(0, h * hs, 1, hs).noalias() = wei * v;
    }
    return sa.projection ? sa.proj.forward(sa.out) : sa.out;
}

// Block::forward for one new position, with the attention above.
inline const nn::Matrix& block_cached(Block& b, const nn::Matrix& x, nn::Matrix& k_cache, nn::Matrix& v_cache,
                                      int pos) {
    b.x1 = attention_cached(b.sa, b.ln1.forward(x), k_cache, v_cache, pos);
    if (b.residual) b.x1 += x;
    b.y = b.ffwd.forward(b.ln2.forward(b.x1));
    if (b.residual) b.y += b.x1;
    return b.y;
}

// GPTLanguageModel::forward for one new position: the logits (1, V) after
// token `token` at position cache.length, whose keys and values join the cache.
inline const nn::Matrix& forward_cached(GPTLanguageModel& m, int token, KVCache& cache) {
    if (cache.k.empty()) {
        cache.k.assign(m.blocks.size(), nn::Matrix::Zero(m.config.block_size, m.config.n_embd));
        cache.v = cache.k;
    }
    const int p = cache.length++;
    m.x = m.token_embedding_table.weight.value.row(token) + m.position_embedding_table.weight.value.row(p);
    const nn::Matrix* h = &m.x;
    for (std::size_t l = 0; l < m.blocks.size(); ++l) h = &block_cached(m.blocks[l], *h, cache.k[l], cache.v[l], p);
    return m.head_forward(m.ln_f.forward(*h));
}

// idx (T) -> idx (T + max_new_tokens): appends one sampled token at a time.
// The model sees at most block_size characters. When they are used up it
// starts again from the last block_size / 2: with the cache, each new
// character costs one position's work, plus re-reading block_size / 2
// characters every block_size / 2. use_cache = false recomputes the whole
// window for every character instead, the same tokens at much more cost.
inline std::vector<int> generate(GPTLanguageModel& model, std::vector<int> idx, int max_new_tokens, nn::Rng& rng,
                                 float temperature = 1.0f, int top_k = 0, bool use_cache = true) {
    if (idx.empty()) nn::fail("generate needs at least one token of context");
    model.train(false);
    const int block_size = model.config.block_size;
    KVCache cache;
    std::size_t start = 0;  // the window is idx[start, idx.size())
    for (int i = 0; i < max_new_tokens; ++i) {
        if (idx.size() - start > static_cast<std::size_t>(block_size)) {
            start = idx.size() - static_cast<std::size_t>(std::max(1, block_size / 2));
            cache.length = 0;
        }
        const std::span<const int> window = std::span<const int>(idx).subspan(start);
        const nn::Matrix* out = nullptr;
        if (use_cache) {
            while (static_cast<std::size_t>(cache.length) < window.size())
                out = &forward_cached(model, window[static_cast<std::size_t>(cache.length)], cache);
        } else {
            out = &model.forward(window, 1, static_cast<int>(window.size()));
        }
        const auto last = out->row(out->rows() - 1);  // only the last position predicts
        idx.push_back(nn::sample({last.data(), static_cast<std::size_t>(last.size())}, rng, temperature, top_k));
    }
    return idx;
}

// The characters a model writes after `context` when it takes the likeliest
// every time (greedy: no sampling, no randomness), until it writes `stop` (not
// returned), has written max_new, or the context and what it wrote fill the
// model's block_size positions (the last character is predicted from them).
// InputError if the context is empty or longer than block_size.
inline std::vector<int> complete_greedy(GPTLanguageModel& model, std::span<const int> context, int stop, int max_new) {
    const int T = model.config.block_size;
    if (context.empty()) nn::fail("a completion needs at least one character of context");
    if (context.size() > static_cast<std::size_t>(T))
        nn::fail("the prompt has {} characters, more than the model's context of {}", context.size(), T);
    model.train(false);
    KVCache cache;
    const nn::Matrix* logits = nullptr;
    for (int token : context) logits = &forward_cached(model, token, cache);
    std::vector<int> out;
    while (static_cast<int>(out.size()) < max_new) {
        Eigen::Index next = 0;
        logits->row(0).maxCoeff(&next);  // the first of equal maxima
        if (static_cast<int>(next) == stop) break;
        out.push_back(static_cast<int>(next));
        if (cache.length == T) break;  // the next character would have no position
        logits = &forward_cached(model, static_cast<int>(next), cache);
    }
    return out;
}
