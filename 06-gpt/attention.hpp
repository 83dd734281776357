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
// as bits. For the lecture's model (B 64, nh 6, T 256) that is 3 MB a block
// instead of four (B*nh*T, T) float matrices, 400 MB a block.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/tensor.hpp"

// The attention dropout's mask, one bit per entry of the (B*nh*T, T) weights:
// 1 keeps the weight (scaled by keep = 1 / (1 - p)), 0 drops it.
struct DropMask {
    std::vector<std::uint64_t> bits;
    Eigen::Index cols = 0;
    float keep = 1.0f;
    void resize(Eigen::Index rows, Eigen::Index cols_) {
        cols = cols_;
        bits.assign(static_cast<std::size_t>((rows * cols + 63) / 64), 0);
    }
    void set(Eigen::Index row, Eigen::Index col) {
        const auto k = static_cast<std::size_t>(row * cols + col);
        bits[k >> 6] |= std::uint64_t{1} << (k & 63);
    }
    bool kept(Eigen::Index row, Eigen::Index col) const {
        const auto k = static_cast<std::size_t>(row * cols + col);
        return (bits[k >> 6] >> (k & 63)) & 1;
    }
    // w (R, cols) *= rows [row0, row0 + R) of the mask
    void apply(Eigen::Ref<nn::Matrix> w, Eigen::Index row0) const {
#pragma omp parallel for schedule(static) if (w.size() >= nn::kParallelGrain)
        for (Eigen::Index i = 0; i < w.rows(); ++i)
            for (Eigen::Index j = 0; j < w.cols(); ++j) w(i, j) = kept(row0 + i, j) ? w(i, j) * keep : 0.0f;
    }
};

// What the backward pass needs from the forward pass of all heads.
struct AttentionState {
    int B = 0, T = 0;
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

// qkv (B*T, 3C) = [q of every head | k of every head | v of every head]
// -> out (B*T, C), the heads side by side. `mask`, if given, is the attention
// dropout's: out = (wei * mask) v.
inline void causal_attention_forward(const nn::Matrix& qkv, int B, int T, int n_head, const DropMask* mask,
                                     AttentionState& s, nn::Matrix& out) {
    const int C = static_cast<int>(qkv.cols()) / 3, hs = C / n_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
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
            w.noalias() = scale * q * k.transpose();
            causal_softmax(w, s.row_max.data() + bh * T, s.row_sum.data() + bh * T);
            if (s.keep_weights) s.wei.middleRows(bh * T, T) = w;
            if (mask != nullptr) mask->apply(w, bh * T);
            out.block(b * T, h * hs, T, hs).noalias() = w * v;
        }
    }
}

// dout (B*T, C), and the forward's qkv (B*T, 3C), mask and state -> dqkv (B*T, 3C)
inline void causal_attention_backward(const nn::Matrix& dout, const nn::Matrix& qkv, int n_head,
                                      const DropMask* mask, const AttentionState& s, nn::Matrix& dqkv) {
    const int B = s.B, T = s.T, C = static_cast<int>(qkv.cols()) / 3, hs = C / n_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
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
            w.noalias() = scale * q * k.transpose();
            causal_softmax_again(w, s.row_max.data() + bh * T, s.row_sum.data() + bh * T);
            const nn::Matrix* a = &w;
            if (mask != nullptr) {
                att = w;
                mask->apply(att, bh * T);
                a = &att;
            }
            // out = att v:  d att = dout v^T,  dv = att^T dout
            d.noalias() = dout_h * v.transpose();
            dqkv.block(b * T, 2 * C + h * hs, T, hs).noalias() = a->transpose() * dout_h;
            // att = wei * mask:  d wei = d att * mask
            if (mask != nullptr) mask->apply(d, bh * T);
            // softmax, row by row: ds_ij = wei_ij (dwei_ij - sum_j' dwei_ij' wei_ij');
            // the future has wei = 0 and gets no gradient.
            for (int i = 0; i < T; ++i) {
                const float dot = d.row(i).dot(w.row(i));
                d.row(i) = w.row(i).cwiseProduct((d.row(i).array() - dot).matrix());
            }
            // s = scale q k^T:  dq = scale ds k,  dk = scale ds^T q
            dqkv.block(b * T, h * hs, T, hs).noalias() = scale * d * k;
            dqkv.block(b * T, C + h * hs, T, hs).noalias() = scale * d.transpose() * q;
        }
    }
}
