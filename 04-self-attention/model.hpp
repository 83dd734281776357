// 04-self-attention: the model, its forward and backward, and generate.
//
// The bigram model looked at one character. Here every position also looks
// back at the characters before it: token and position embeddings go through
// one Head of self-attention, which lets each position gather information
// from earlier positions, weighted by how well their keys match its query;
// an lm_head turns the result into logits.
//
// The lecture keeps the name BigramLanguageModel at this step; so do we.
#pragma once
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "common/layers.hpp"
#include "common/sampling.hpp"
#include "common/text.hpp"

// This lesson's experiments (flags of main.cpp); the first of each is the lecture's choice.
enum class Position { learned, sinusoidal };  // trained position table, or a fixed one
enum class Mask { causal, anticausal, none };  // which keys a query may not see
// How well key j matches query i: q.k; (q.k)^2, which loses its sign; the dot of the squared
// elements; -q.k; minus the squared distance |q - k|^2; 1/(q.k); 1/(1 + |q - k|^2) (see score_forward).
enum class Score { dot, squared_dot, squared_elements, negative_dot, distance, reciprocal, inverse_distance };

struct Config {
    int vocab_size = 65;  // V
    int block_size = 8;   // the longest context T the model takes
    int n_embd = 32;      // C
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

// The score of every query against every key of one sequence, before the
// mask: q, k (T, hs) -> s (T, T), with scale = 1 / sqrt(hs) (1 with --no-scale):
//   dot               s_ij =  scale q_i . k_j                       the lecture's
//   squared_dot       s_ij =  scale (q_i . k_j)^2 / sqrt(2 hs + 4)  the sign is lost
//   squared_elements  s_ij =  scale sum_c q_ic^2 k_jc^2 / sqrt(6)   square the numbers, then the dot
//   negative_dot      s_ij = -scale q_i . k_j
//   distance          s_ij = -scale |q_i - k_j|^2 / sqrt(6)         near is high, not a dot product
//   reciprocal        s_ij =  scale 0.455 hs / (q_i . k_j)          |q.k| kept >= 1e-3 sqrt(hs)
//   inverse_distance  s_ij =  scale (1 + 2 hs)^2 / sqrt(6) / (1 + |q_i - k_j|^2)
// Each constant after `scale` gives its score the spread of the dot product's at initialisation:
// for q and k of independent N(0, 1) entries, the standard deviation of s_ij over the keys j of a
// row (what softmax sees) is scale sqrt(hs), 1 with the scale (score_spread; README). reciprocal
// has no standard deviation (1/x of a normal x has infinite variance), so its typical size, the
// median of |s|, is matched instead.
inline float score_factor(Score score, int hs) {
    const float d = static_cast<float>(hs);
    switch (score) {
        case Score::dot: case Score::negative_dot: return 1.0f;
        case Score::squared_dot: return 1.0f / std::sqrt(2.0f * d + 4.0f);
        case Score::squared_elements: case Score::distance: return 1.0f / std::sqrt(6.0f);
        case Score::reciprocal: return 0.6745f * 0.6745f * d;  // median |x| of N(0, 1), squared
        case Score::inverse_distance: return (1.0f + 2.0f * d) * (1.0f + 2.0f * d) / std::sqrt(6.0f);
    }
    return 1.0f;
}
inline constexpr float kReciprocalGuard = 1e-3f;  // reciprocal: |q.k| / sqrt(hs) is at least this

// q_i . k_j of every pair, kept away from 0 for reciprocal: |q.k| >= kReciprocalGuard sqrt(hs),
// with its sign (0 counts as positive). (T, hs), (T, hs) -> (T, T)
inline nn::Matrix guarded_dot(Eigen::Ref<const nn::Matrix> q, Eigen::Ref<const nn::Matrix> k) {
    const float floor = kReciprocalGuard * std::sqrt(static_cast<float>(q.cols()));
    nn::Matrix d = q * k.transpose();
    d = d.unaryExpr([floor](float x) { return std::abs(x) >= floor ? x : std::copysign(floor, x); });
    return d;
}

inline void score_forward(Score score, Eigen::Ref<const nn::Matrix> q, Eigen::Ref<const nn::Matrix> k,
                          float scale, Eigen::Ref<nn::Matrix> s) {
    const float a = scale * score_factor(score, static_cast<int>(q.cols()));
    switch (score) {
        case Score::dot: s.noalias() = scale * q * k.transpose(); break;
        case Score::negative_dot: s.noalias() = -scale * q * k.transpose(); break;
        case Score::squared_dot:
            s.noalias() = q * k.transpose();
            s = (a * s.array().square()).matrix();
            break;
        case Score::squared_elements:
            s.noalias() = a * q.array().square().matrix() * k.array().square().matrix().transpose();
            break;
        case Score::distance:  // -|q_i - k_j|^2 = 2 q_i.k_j - |q_i|^2 - |k_j|^2
            s.noalias() = 2.0f * a * q * k.transpose();
            s.colwise() -= a * q.rowwise().squaredNorm();
            s.rowwise() -= a * k.rowwise().squaredNorm().transpose();
            break;
        case Score::reciprocal: s = (a * guarded_dot(q, k).array().inverse()).matrix(); break;
        case Score::inverse_distance:  // |q_i - k_j|^2 = |q_i|^2 + |k_j|^2 - 2 q_i.k_j
            s.noalias() = -2.0f * q * k.transpose();
            s.colwise() += q.rowwise().squaredNorm();
            s.rowwise() += k.rowwise().squaredNorm().transpose();
            s = (a / (1.0f + s.array().max(0.0f))).matrix();  // max: rounding can make a 0 slightly negative
            break;
    }
}

// score_forward's backward: ds (T, T) = d(loss)/d(s) -> dq, dk (T, hs), given the q, k it read.
inline void score_backward(Score score, Eigen::Ref<const nn::Matrix> q, Eigen::Ref<const nn::Matrix> k,
                           float scale, Eigen::Ref<const nn::Matrix> ds, Eigen::Ref<nn::Matrix> dq,
                           Eigen::Ref<nn::Matrix> dk) {
    const float a = scale * score_factor(score, static_cast<int>(q.cols()));
    switch (score) {
        case Score::dot:  // dq = scale ds k, dk = scale ds^T q
            dq.noalias() = scale * ds * k;
            dk.noalias() = scale * ds.transpose() * q;
            break;
        case Score::negative_dot:  // the same with -scale
            dq.noalias() = -scale * ds * k;
            dk.noalias() = -scale * ds.transpose() * q;
            break;
        case Score::squared_dot: {  // s = a d^2 with d = q.k: dd = ds 2 a d, then as dot
            nn::Matrix dd = q * k.transpose();
            dd = (2.0f * a * dd.array() * ds.array()).matrix();
            dq.noalias() = dd * k;
            dk.noalias() = dd.transpose() * q;
            break;
        }
        case Score::squared_elements:  // ds/dq_ic = a sum_j ds_ij k_jc^2 2 q_ic, and for k alike
            dq.noalias() = a * ds * k.array().square().matrix();
            dq = (2.0f * q.array() * dq.array()).matrix();
            dk.noalias() = a * ds.transpose() * q.array().square().matrix();
            dk = (2.0f * k.array() * dk.array()).matrix();
            break;
        case Score::distance:  // dq_i = 2 a (sum_j ds_ij k_j - (sum_j ds_ij) q_i), dk_j alike
            dq.noalias() = 2.0f * a * ds * k;
            dq -= ((2.0f * a * ds.rowwise().sum()).asDiagonal() * q).eval();
            dk.noalias() = 2.0f * a * ds.transpose() * q;
            dk -= ((2.0f * a * ds.colwise().sum().transpose()).asDiagonal() * k).eval();
            break;
        case Score::reciprocal: {  // s = a / d with d = q.k: dd = -ds a / d^2 (0 where the guard holds d)
            const nn::Matrix d = guarded_dot(q, k), exact = q * k.transpose();
            const nn::Matrix dd = (d.array() == exact.array()).select(-a * ds.array() / d.array().square(), 0.0f).matrix();
            dq.noalias() = dd * k;
            dk.noalias() = dd.transpose() * q;
            break;
        }
        case Score::inverse_distance: {  // s = a / (1 + D), D = |q_i - k_j|^2: dD = -ds s^2 / a, then
            nn::Matrix g(ds.rows(), ds.cols());  // dq_i = 2 (sum_j dD_ij q_i - dD_ij k_j), dk_j alike
            score_forward(score, q, k, scale, g);
            g = (-ds.array() * g.array().square() / a).matrix();
            dq.noalias() = -2.0f * g * k;
            dq += ((2.0f * g.rowwise().sum()).asDiagonal() * q).eval();
            dk.noalias() = -2.0f * g.transpose() * q;
            dk += ((2.0f * g.colwise().sum().transpose()).asDiagonal() * k).eval();
            break;
        }
    }
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

struct BigramLanguageModel {
    Config config;
    nn::Embedding token_embedding_table;     // (V, C)
    nn::Embedding position_embedding_table;  // (block_size, C): learned, or the fixed sinusoidal table
    Head sa_head;                            // C -> hs = C
    nn::Linear lm_head;                      // C -> V
    nn::CrossEntropy criterion;
    std::vector<int> pos;  // (B*T): the position t of each row
    nn::Matrix x;          // (B*T, C)

    BigramLanguageModel(const Config& c, nn::Rng& rng)
        : config(c), token_embedding_table(c.vocab_size, c.n_embd, rng),
          position_embedding_table(c.block_size, c.n_embd, rng),
          sa_head(c.n_embd, c.n_embd, c.mask, c.score, rng, c.scale),
          lm_head(c.n_embd, c.vocab_size, true, rng) {
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
        const nn::Matrix& h = sa_head.forward(x, B, T);                    // (B*T, hs)
        return lm_head.forward(h);                                          // (B*T, V)
    }

    // batch x, y (B*T) -> loss (): forward, then cross-entropy against the targets
    double loss(const nn::Batch& batch) {
        return criterion.forward(forward(batch.x, batch.B, batch.T), batch.y);
    }

    // () -> (): d(loss)/d(every parameter), added to its .grad, after loss()
    void backward() {
        const nn::Matrix& dlogits = criterion.backward();  // (B*T, V)
        const nn::Matrix& dh = lm_head.backward(dlogits);   // (B*T, hs)
        const nn::Matrix& dx = sa_head.backward(dh);        // (B*T, C)
        token_embedding_table.backward(dx);                 // x = tok_emb + pos_emb: both get dx
        if (config.position == Position::learned) position_embedding_table.backward(dx);
    }

    std::vector<nn::Parameter*> parameters() {
        std::vector<nn::Parameter*> p{&token_embedding_table.weight, &sa_head.key.weight,
                                      &sa_head.query.weight, &sa_head.value.weight,
                                      &lm_head.weight, &lm_head.bias};
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
