// 05-multihead: the model, its forward and backward, and generate.
//
// 04's single head could ask one question of the past. Here n_head smaller
// heads run side by side on the same input, each with its own keys, queries
// and values, so each can attend to something different; their outputs are
// concatenated and projected back to n_embd channels (MultiHeadAttention).
// A FeedForward layer (linear, ReLU) then lets each position think about what
// it gathered, before the lm_head.
//
// The lecture keeps the name BigramLanguageModel at this step; so do we.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "04-self-attention/score.hpp"
#include "common/error.hpp"
#include "common/layers.hpp"
#include "common/sampling.hpp"
#include "common/text.hpp"

// This lesson's experiments (flags of main.cpp); the first of each is the lecture's choice.
enum class Position { learned, sinusoidal };  // trained position table, or a fixed one
enum class Mask { causal, anticausal, none };  // which keys a query may not see

struct Config {
    int vocab_size = 65;  // V
    int block_size = 8;   // the longest context T the model takes
    int n_embd = 32;      // C
    int n_head = 4;       // nh; each head has hs = C / nh channels
    Position position = Position::learned;
    Mask mask = Mask::causal;
    Score score = Score::dot;
    bool scale = true;  // divide the scores by sqrt(hs), as the lecture does (--no-scale: not)
};

// Whether query position i may not look at key position j.
inline bool masked(Mask mask, int i, int j) {
    switch (mask) {
        case Mask::causal: return j > i;      // not the future: keep the lower triangle
        case Mask::anticausal: return j < i;  // not the past: keep the upper triangle
        case Mask::none: return false;
    }
    return false;
}

// The lecture's averaging trick (version 2 of --show-trick): T -> wei (T, T),
// ones where `mask` lets row t see column j (the causal mask: tril(ones(T, T))),
// each row divided by its sum, so that row t of wei x (T, C) is the mean of
// what t sees: x[0..t], the past and itself. A Head's weights are this matrix
// with the equal shares replaced by a softmax of scores.
// Exercise: averaging_matrix
inline nn::Matrix averaging_matrix(int T, Mask mask = Mask::causal) {
    nn::Matrix wei(T, T);
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j) wei(i, j) = masked(mask, i, j) ? 0.0f : 1.0f;
    const nn::Vector row_sums = wei.rowwise().sum();
    wei.array().colwise() /= row_sums.array();
    return wei;
}

// softmax's backward, row by row, in place: p = softmax(z) (T, T) and
// d = d(loss)/d(p) (T, T) in, d = d(loss)/d(z) (T, T) out:
//   dz_ij = p_ij (dp_ij - sum_j' dp_ij' p_ij')
// Masked entries have p = 0, so they get no gradient.
// Exercise: softmax_backward
inline void softmax_backward(Eigen::Ref<const nn::Matrix> p, Eigen::Ref<nn::Matrix> d) {
    for (Eigen::Index i = 0; i < p.rows(); ++i) {
        const float dot = d.row(i).dot(p.row(i));
        d.row(i) = p.row(i).cwiseProduct((d.row(i).array() - dot).matrix());
    }
}

// One head of self-attention. For each sequence b (a (T, C) slice of x):
//   k = x Wk^T, q = x Wq^T, v = x Wv^T                  (T, hs) each
//   s = score(q, k), by default q k^T / sqrt(hs)         (T, T)  (score_forward)
//   wei = softmax(s with masked entries set to -inf)     (T, T)  each row sums to 1
//   out = wei v                                          (T, hs)
struct Head {
    nn::Linear key, query, value;  // C -> hs, without bias
    int head_size;
    Mask mask;
    Score score;
    bool scaled;  // the scores times 1 / sqrt(hs), or (--no-scale) times 1
    int B = 0, T = 0;
    nn::Matrix s;     // (B*T, T): the scores before the mask, B blocks of (T, T)
    nn::Matrix wei;   // (B*T, T): the attention weights
    nn::Matrix out;   // (B*T, hs)
    nn::Matrix dwei;  // (B*T, T): backward's scratch: d(loss)/d(wei), then d(loss)/d(s)
    nn::Matrix dq, dk, dv, dx;

    Head(int n_embd, int head_size_, Mask mask_, Score score_, nn::Rng& rng, bool scaled_ = true)
        : key(n_embd, head_size_, false, rng), query(n_embd, head_size_, false, rng),
          value(n_embd, head_size_, false, rng), head_size(head_size_), mask(mask_), score(score_),
          scaled(scaled_) {}

    // What the scores are multiplied by: 1 / sqrt(hs) keeps q.k at the variance of q and k.
    float scale() const { return scaled ? 1.0f / std::sqrt(static_cast<float>(head_size)) : 1.0f; }

    // x (B*T, C) -> out (B*T, hs); keeps k, q, v (in key.y, ...), s and wei for backward
    // Exercise: head_forward
    const nn::Matrix& forward(const nn::Matrix& x, int B_, int T_) {
        B = B_, T = T_;
        const nn::Matrix& k = key.forward(x);    // (B*T, hs)
        const nn::Matrix& q = query.forward(x);  // (B*T, hs)
        const nn::Matrix& v = value.forward(x);  // (B*T, hs)
        const float scale = this->scale();
        s.resize(B * T, T);
        wei.resize(B * T, T);
        out.resize(B * T, head_size);
        for (int b = 0; b < B; ++b) {  // each sequence attends only within itself
            auto s_b = s.middleRows(b * T, T);      // (T, T)
            auto wei_b = wei.middleRows(b * T, T);  // (T, T)
            score_forward(score, q.middleRows(b * T, T), k.middleRows(b * T, T), scale, s_b);
            wei_b = s_b;
            for (int i = 0; i < T; ++i)
                for (int j = 0; j < T; ++j)
                    if (masked(mask, i, j)) wei_b(i, j) = -std::numeric_limits<float>::infinity();
            nn::softmax_rows(wei_b);
            out.middleRows(b * T, T).noalias() = wei_b * v.middleRows(b * T, T);
        }
        return out;
    }

    // dout (B*T, hs) -> dx (B*T, C); adds to the gradients of Wk, Wq, Wv
    // Exercise: head_backward
    const nn::Matrix& backward(const nn::Matrix& dout) {
        const nn::Matrix &k = key.y, &q = query.y, &v = value.y;
        const float scale = this->scale();
        dwei.resize(B * T, T);
        dq.resize(B * T, head_size);
        dk.resize(B * T, head_size);
        dv.resize(B * T, head_size);
        for (int b = 0; b < B; ++b) {
            const auto wei_b = wei.middleRows(b * T, T);
            const auto dout_b = dout.middleRows(b * T, T);
            auto d = dwei.middleRows(b * T, T);
            // out = wei v:  dwei = dout v^T,  dv = wei^T dout
            d.noalias() = dout_b * v.middleRows(b * T, T).transpose();
            dv.middleRows(b * T, T).noalias() = wei_b.transpose() * dout_b;
            // softmax, row by row: ds_ij = wei_ij (dwei_ij - sum_j' dwei_ij' wei_ij')
            softmax_backward(wei_b, d);
            // s = score(q, k), by default scale q k^T:  dq = scale ds k,  dk = scale ds^T q
            score_backward(score, q.middleRows(b * T, T), k.middleRows(b * T, T), scale, d,
                           dq.middleRows(b * T, T), dk.middleRows(b * T, T));
        }
        // x fed all three projections, so its gradient is the sum of theirs.
        dx = key.backward(dk);
        dx += query.backward(dq);
        dx += value.backward(dv);
        return dx;
    }
};

// n_head heads side by side, then a projection:
//   out = concat(head_1(x), ..., head_nh(x)) Wp^T + bp     (B*T, nh*hs = C)
struct MultiHeadAttention {
    std::vector<Head> heads;  // nh heads of size hs
    nn::Linear proj;          // C -> C
    int head_size;
    nn::Matrix cat;                  // (B*T, nh*hs): head h fills columns [h*hs, (h+1)*hs)
    std::vector<nn::Matrix> dhead;   // nh x (B*T, hs): backward's scratch
    nn::Matrix dx;                   // (B*T, C)

    MultiHeadAttention(int n_embd, int num_heads, int head_size_, Mask mask, Score score, nn::Rng& rng,
                       bool scaled = true)
        : proj(num_heads * head_size_, n_embd, true, rng), head_size(head_size_), dhead(num_heads) {
        for (int h = 0; h < num_heads; ++h) heads.emplace_back(n_embd, head_size, mask, score, rng, scaled);
    }

    // x (B*T, C) -> out (B*T, C); keeps cat (B*T, nh*hs) for proj's backward
    // Exercise: multihead_forward
    const nn::Matrix& forward(const nn::Matrix& x, int B, int T) {
        cat.resize(B * T, static_cast<Eigen::Index>(heads.size()) * head_size);
        for (std::size_t h = 0; h < heads.size(); ++h)
            cat.middleCols(static_cast<Eigen::Index>(h) * head_size, head_size) = heads[h].forward(x, B, T);
        return proj.forward(cat);
    }

    // dout (B*T, C) -> dx (B*T, C); adds to the gradients of proj and of every head
    // Exercise: multihead_backward
    const nn::Matrix& backward(const nn::Matrix& dout) {
        const nn::Matrix& dcat = proj.backward(dout);  // (B*T, nh*hs)
        for (std::size_t h = 0; h < heads.size(); ++h) {
            // Concatenation hands each head back its own columns of the gradient...
            dhead[h] = dcat.middleCols(static_cast<Eigen::Index>(h) * head_size, head_size);
            // ...and every head read the same x, so x's gradient is the sum of theirs.
            if (h == 0) dx = heads[h].backward(dhead[h]);
            else dx += heads[h].backward(dhead[h]);
        }
        return dx;
    }
};

// A linear layer and a ReLU, applied to each position on its own: (B*T, C) -> (B*T, C)
struct FeedForward {
    nn::Linear fc;   // C -> C
    nn::Matrix out;  // (B*T, C): relu(fc(x))
    nn::Matrix dy;   // (B*T, C): backward's scratch

    FeedForward(int n_embd, nn::Rng& rng) : fc(n_embd, n_embd, true, rng) {}

    // x (B*T, C) -> out (B*T, C); fc keeps its output, the pre-activation, for backward
    // Exercise: ffwd_forward
    const nn::Matrix& forward(const nn::Matrix& x) {
        out = fc.forward(x).cwiseMax(0.0f);
        return out;
    }

    // dout (B*T, C) -> dx (B*T, C): ReLU passes the gradient where its input was positive
    // Exercise: ffwd_backward
    const nn::Matrix& backward(const nn::Matrix& dout) {
        dy = (fc.y.array() > 0.0f).select(dout.array(), 0.0f).matrix();
        return fc.backward(dy);
    }
};

// PE(pos, 2i) = sin(pos / 10000^(2i/C)), PE(pos, 2i+1) = cos(pos / 10000^(2i/C)): (T, C)
// Exercise: sinusoidal_table
inline nn::Matrix sinusoidal_table(int block_size, int n_embd) {
    nn::Matrix pe(block_size, n_embd);
    for (int pos = 0; pos < block_size; ++pos)
        for (int c = 0; c < n_embd; ++c) {
            const double angle = pos / std::pow(10000.0, (c - c % 2) / static_cast<double>(n_embd));
            pe(pos, c) = static_cast<float>(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
        }
    return pe;
}

// The size of each head; InputError unless the heads split n_embd evenly.
inline int head_size(const Config& c) {
    if (c.n_head < 1 || c.n_embd % c.n_head != 0)
        nn::fail("n_embd = {} cannot be split evenly into {} heads (--n-embd must be a multiple of --n-head)",
                 c.n_embd, c.n_head);
    return c.n_embd / c.n_head;
}

struct BigramLanguageModel {
    Config config;
    nn::Embedding token_embedding_table;     // (V, C)
    nn::Embedding position_embedding_table;  // (block_size, C): learned, or the fixed sinusoidal table
    MultiHeadAttention sa_heads;             // C -> nh heads of hs = C / nh -> C
    FeedForward ffwd;                        // C -> C
    nn::Linear lm_head;                      // C -> V
    nn::CrossEntropy criterion;
    std::vector<int> pos;  // (B*T): the position t of each row
    nn::Matrix x;          // (B*T, C)

    BigramLanguageModel(const Config& c, nn::Rng& rng)
        : config(c), token_embedding_table(c.vocab_size, c.n_embd, rng),
          position_embedding_table(c.block_size, c.n_embd, rng),
          sa_heads(c.n_embd, c.n_head, head_size(c), c.mask, c.score, rng, c.scale),
          ffwd(c.n_embd, rng), lm_head(c.n_embd, c.vocab_size, true, rng) {
        if (c.position == Position::sinusoidal)
            position_embedding_table.weight.value = sinusoidal_table(c.block_size, c.n_embd);
    }

    // idx (B*T) -> logits (B*T, V)
    const nn::Matrix& forward(std::span<const int> idx, int B, int T) {
        if (T < 1 || static_cast<std::size_t>(B) * T != idx.size())
            nn::fail("forward needs B*T = {}*{} tokens, got {}", B, T, idx.size());
        if (T > config.block_size)
            nn::fail("a context of {} characters is longer than the {} this model was built for "
                     "(--block-size)", T, config.block_size);
        pos.resize(idx.size());
        for (std::size_t n = 0; n < pos.size(); ++n) pos[n] = static_cast<int>(n % T);
        const nn::Matrix& tok_emb = token_embedding_table.forward(idx);     // (B*T, C)
        const nn::Matrix& pos_emb = position_embedding_table.forward(pos);  // (B*T, C)
        x = tok_emb + pos_emb;                                              // (B*T, C)
        const nn::Matrix& a = sa_heads.forward(x, B, T);                   // (B*T, C)
        const nn::Matrix& h = ffwd.forward(a);                              // (B*T, C)
        return lm_head.forward(h);                                          // (B*T, V)
    }

    // batch x, y (B*T) -> loss (): forward, then cross-entropy against the targets
    double loss(const nn::Batch& batch) {
        return criterion.forward(forward(batch.x, batch.B, batch.T), batch.y);
    }

    // () -> (): d(loss)/d(every parameter), added to its .grad, after loss()
    void backward() {
        const nn::Matrix& dlogits = criterion.backward();  // (B*T, V)
        const nn::Matrix& dh = lm_head.backward(dlogits);   // (B*T, C)
        const nn::Matrix& da = ffwd.backward(dh);           // (B*T, C)
        const nn::Matrix& dx = sa_heads.backward(da);       // (B*T, C)
        token_embedding_table.backward(dx);                 // x = tok_emb + pos_emb: both get dx
        if (config.position == Position::learned) position_embedding_table.backward(dx);
    }

    std::vector<nn::Parameter*> parameters() {
        std::vector<nn::Parameter*> p{&token_embedding_table.weight};
        for (Head& h : sa_heads.heads)
            p.insert(p.end(), {&h.key.weight, &h.query.weight, &h.value.weight});
        p.insert(p.end(), {&sa_heads.proj.weight, &sa_heads.proj.bias, &ffwd.fc.weight,
                           &ffwd.fc.bias, &lm_head.weight, &lm_head.bias});
        if (config.position == Position::learned) p.push_back(&position_embedding_table.weight);
        return p;
    }

    // idx (T) -> idx (T + max_new_tokens): appends one sampled token at a time
    std::vector<int> generate(std::vector<int> idx, int max_new_tokens, nn::Rng& rng,
                              float temperature = 1.0f, int top_k = 0) {
        for (int i = 0; i < max_new_tokens; ++i) {
            // The model sees at most block_size characters: crop to the last ones.
            const int T = std::min(static_cast<int>(idx.size()), config.block_size);
            const nn::Matrix& logits = forward(std::span<const int>(idx).last(T), 1, T);  // (T, V)
            const auto last = logits.row(logits.rows() - 1);  // only the last position predicts
            idx.push_back(nn::sample({last.data(), static_cast<std::size_t>(last.size())}, rng,
                                     temperature, top_k));
        }
        return idx;
    }
};
