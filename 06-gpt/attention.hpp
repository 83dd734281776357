// 06-gpt: causal self-attention of all heads of all sequences at once, the
// fast form of 05's Head (speed, not a new concept).
//
// In the plain form, 05's way, each head h has its own key, query and value
// layers and runs on one sequence b at a time:
//   q, k, v = x Wq_h^T, x Wk_h^T, x Wv_h^T        (T, hs) each
//   wei = softmax(mask(q k^T / sqrt(hs)))         (T, T)
//   out_h = dropout(wei) v                         (T, hs)
// and MultiHeadAttention concatenates the nh outputs. Here the q, k and v of
// every head come from one (B*T, 3C) product (model.hpp's c_attn), and the
// B*nh (sequence, head) pairs are independent, so they run in parallel
// (OpenMP), each reading its (T, hs) slices of qkv in place.
//
// Memory: the (T, T) weights of every head of every sequence are not kept.
// The forward pass keeps each row's softmax max and sum, and the backward pass
// recomputes the weights from q, k and those two numbers, bit for bit the same
// (the idea of FlashAttention, without its tiling). The dropout mask is kept
// as bits. The scores other than the dot product (--score, 04's) take a
// plainer path: the whole (T, T) score_forward, and score_backward. For the lecture's model (B 64, nh 6, T 256) that is 3 MB a block
// instead of four (B*nh*T, T) float matrices, 400 MB a block.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "04-self-attention/score.hpp"  // --score: 04's scores, unchanged
#include "06-gpt/dropout.hpp"              // DropMask: the attention dropout's mask, as bits
#include "common/tensor.hpp"

// What the backward pass needs from the forward pass of all heads.
struct AttentionState {
    int B = 0, T = 0;
    bool scaled = true;           // scores q.k / sqrt(hs); false (--no-scale): q.k
    Score score = Score::dot;     // how well a key matches a query (--score): 04's score_forward
    float scale(int hs) const { return scaled ? 1.0f / std::sqrt(static_cast<float>(hs)) : 1.0f; }
    nn::Vector row_max, row_sum;  // (B*nh*T): each row's softmax max and sum, to recompute the weights
    bool keep_weights = false;    // also keep wei, to print or draw it (not while training)
    nn::Matrix wei;               // (B*nh*T, T), when keep_weights: head h of sequence b in rows (b nh + h) T ...
};

// Softmax of row i of a causal (T, T) score matrix over its first i + 1
// entries; the rest (the future) become 0. Keeps each row's max and sum.
inline void causal_softmax(Eigen::Ref<nn::Matrix> s, float* row_max, float* row_sum) {
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
        auto seen = s.row(i).head(i + 1).array();
        row_max[i] = seen.maxCoeff();
        seen = (seen - row_max[i]).exp();
        row_sum[i] = seen.sum();
        seen /= row_sum[i];
        s.row(i).tail(s.cols() - i - 1).setZero();
    }
}

// The same softmax again, from the scores and the kept max and sum: the same
// operations on the same numbers, so the same weights, bit for bit.
inline void causal_softmax_again(Eigen::Ref<nn::Matrix> s, const float* row_max, const float* row_sum) {
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
        auto seen = s.row(i).head(i + 1).array();
        seen = (seen - row_max[i]).exp();
        seen /= row_sum[i];
        s.row(i).tail(s.cols() - i - 1).setZero();
    }
}

// The products of one head with a causal (T, T) matrix, in tiles of rows:
// row i of a causal matrix has entries only in columns j <= i, so rows
// [i0, i0 + m) need only its first i0 + m columns, and columns [j0, j0 + m)
// only its rows from j0 on. What is skipped is exact zeros (the future), so
// each entry is a sum of the same terms as in the full product: at the
// default T 64 the same bits too; at other sizes Eigen groups some of the
// terms differently, which moves the last bits. For T 64 the tiles skip a
// quarter of the work, for the lecture's T 256 nearly half. (These tiles only
// skip zeros: FlashAttention's also keep a tile's softmax running.)
inline constexpr Eigen::Index kCausalTile = 32;

// lower (T, T) = scale a b^T on and below the diagonal, a and b (T, hs). Of
// the entries above it, those inside a tile are written too and the rest are
// left as they were: the caller zeroes them.
inline void causal_scores(Eigen::Ref<nn::Matrix> lower, const Eigen::Ref<const nn::Matrix>& a,
                          const Eigen::Ref<const nn::Matrix>& b, float scale) {
    for (Eigen::Index i0 = 0; i0 < lower.rows(); i0 += kCausalTile) {
        const Eigen::Index m = std::min(kCausalTile, lower.rows() - i0), n = i0 + m;
        lower.block(i0, 0, m, n).noalias() = scale * a.middleRows(i0, m) * b.topRows(n).transpose();
    }
}

// out (T, hs) = scale lower v, with lower (T, T) zero above the diagonal.
inline void causal_times(Eigen::Ref<nn::Matrix> out, const nn::Matrix& lower, const Eigen::Ref<const nn::Matrix>& v,
                         float scale = 1.0f) {
    for (Eigen::Index i0 = 0; i0 < lower.rows(); i0 += kCausalTile) {
        const Eigen::Index m = std::min(kCausalTile, lower.rows() - i0), n = i0 + m;
        out.middleRows(i0, m).noalias() = scale * lower.block(i0, 0, m, n) * v.topRows(n);
    }
}

// out (T, hs) = scale lower^T v, with lower (T, T) zero above the diagonal.
inline void causal_transpose_times(Eigen::Ref<nn::Matrix> out, const nn::Matrix& lower,
                                   const Eigen::Ref<const nn::Matrix>& v, float scale = 1.0f) {
    const Eigen::Index T = lower.rows();
    for (Eigen::Index j0 = 0; j0 < T; j0 += kCausalTile) {
        const Eigen::Index m = std::min(kCausalTile, T - j0);
        out.middleRows(j0, m).noalias() = scale * lower.block(j0, j0, T - j0, m).transpose() * v.bottomRows(T - j0);
    }
}

// qkv (B*T, 3C) = [q of every head | k of every head | v of every head]
// -> out (B*T, C), the heads side by side. `mask`, if given, is the attention
// dropout's: out = (wei * mask) v.
inline void causal_attention_forward(const nn::Matrix& qkv, int B, int T, int n_head, const DropMask* mask,
                                     AttentionState& s, nn::Matrix& out) {
    const int C = static_cast<int>(qkv.cols()) / 3, hs = C / n_head;
    const float scale = s.scale(hs);
    s.B = B, s.T = T;
    s.row_max.resize(B * n_head * T);
    s.row_sum.resize(B * n_head * T);
    if (s.keep_weights) s.wei.resize(B * n_head * T, T);
    out.resize(B * T, C);
#pragma omp parallel if (static_cast<long>(B) * n_head * T * T >= nn::kParallelGrain)
    {
        nn::Matrix w(T, T);  // this thread's scratch: one head's weights
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * n_head; ++bh) {  // one Head of 05 for one sequence
            const int b = bh / n_head, h = bh % n_head;
            const auto q = qkv.block(b * T, h * hs, T, hs);          // (T, hs)
            const auto k = qkv.block(b * T, C + h * hs, T, hs);      // (T, hs)
            const auto v = qkv.block(b * T, 2 * C + h * hs, T, hs);  // (T, hs)
            if (s.score == Score::dot) causal_scores(w, q, k, scale);  // w = scale q k^T, on and below the diagonal
            else score_forward(s.score, q, k, scale, w);                // every (i, j); the softmax reads j <= i
            causal_softmax(w, s.row_max.data() + bh * T, s.row_sum.data() + bh * T);
            if (s.keep_weights) s.wei.middleRows(bh * T, T) = w;
            if (mask != nullptr) mask->apply(w, bh * T, true);
            causal_times(out.block(b * T, h * hs, T, hs), w, v);  // out_h = w v
        }
    }
}

// dout (B*T, C), and the forward's qkv (B*T, 3C), mask and state -> dqkv (B*T, 3C)
inline void causal_attention_backward(const nn::Matrix& dout, const nn::Matrix& qkv, int n_head,
                                      const DropMask* mask, const AttentionState& s, nn::Matrix& dqkv) {
    const int B = s.B, T = s.T, C = static_cast<int>(qkv.cols()) / 3, hs = C / n_head;
    const float scale = s.scale(hs);
    dqkv.resize(B * T, 3 * C);
#pragma omp parallel if (static_cast<long>(B) * n_head * T * T >= nn::kParallelGrain)
    {
        nn::Matrix w(T, T), att(T, T), d(T, T);  // this thread's scratch
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * n_head; ++bh) {
            const int b = bh / n_head, h = bh % n_head;
            const auto q = qkv.block(b * T, h * hs, T, hs);
            const auto k = qkv.block(b * T, C + h * hs, T, hs);
            const auto v = qkv.block(b * T, 2 * C + h * hs, T, hs);
            const auto dout_h = dout.block(b * T, h * hs, T, hs);
            // The forward's weights again, and what was multiplied by v: att = wei * mask.
            if (s.score == Score::dot) causal_scores(w, q, k, scale);
            else score_forward(s.score, q, k, scale, w);
            causal_softmax_again(w, s.row_max.data() + bh * T, s.row_sum.data() + bh * T);
            const nn::Matrix* a = &w;
            if (mask != nullptr) {
                att = w;
                mask->apply(att, bh * T, true);
                a = &att;
            }
            // out = att v:  d att = dout v^T,  dv = att^T dout
            causal_scores(d, dout_h, v, 1.0f);  // the future's entries are not needed: zeroed
            for (int i = 0; i + 1 < T; ++i) d.row(i).tail(T - i - 1).setZero();
            causal_transpose_times(dqkv.block(b * T, 2 * C + h * hs, T, hs), *a, dout_h);
            // att = wei * mask:  d wei = d att * mask
            if (mask != nullptr) mask->apply(d, bh * T, true);  // the future: multiplied by wei = 0 below
            // softmax, row by row: ds_ij = wei_ij (dwei_ij - sum_j' dwei_ij' wei_ij');
            // the future has wei = 0 and gets no gradient.
            for (int i = 0; i < T; ++i) {
                const float dot = d.row(i).dot(w.row(i));
                d.row(i) = w.row(i).cwiseProduct((d.row(i).array() - dot).matrix());
            }
            // s = scale q k^T:  dq = scale ds k,  dk = scale ds^T q
            if (s.score == Score::dot) {
                causal_times(dqkv.block(b * T, h * hs, T, hs), d, k, scale);
                causal_transpose_times(dqkv.block(b * T, C + h * hs, T, hs), d, q, scale);
            } else {  // ds is 0 above the diagonal (wei is), so the future adds nothing
                score_backward(s.score, q, k, scale, d, dqkv.block(b * T, h * hs, T, hs),
                               dqkv.block(b * T, C + h * hs, T, hs));
            }
        }
    }
}
