// 08-data-parallel: causal self-attention of all heads of all sequences at once, the
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
#pragma once
#include <cmath>

#include "common/tensor.hpp"

// What the backward pass needs from the forward pass of all heads.
struct AttentionState {
    int B = 0, T = 0;
    nn::Matrix wei;   // (B*nh*T, T): the weights of head h of sequence b in rows (b nh + h) T ...
    nn::Matrix drop;  // (B*nh*T, T): dropout(wei), when there is a dropout mask
    nn::Matrix dwei;  // (B*nh*T, T): backward's scratch
};

// Softmax of row i of a causal (T, T) score matrix over its first i + 1
// entries; the rest (the future) become 0.
inline void causal_softmax(Eigen::Ref<nn::Matrix> s) {
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
        auto seen = s.row(i).head(i + 1).array();
        seen = (seen - seen.maxCoeff()).exp();
        seen /= seen.sum();
        s.row(i).tail(s.cols() - i - 1).setZero();
    }
}

// qkv (B*T, 3C) = [q of every head | k of every head | v of every head]
// -> out (B*T, C), the heads side by side. `mask` (B*nh*T, T), if given, is
// the attention dropout's: out = (wei * mask) v.
inline void causal_attention_forward(const nn::Matrix& qkv, int B, int T, int n_head, const nn::Matrix* mask,
                                     AttentionState& s, nn::Matrix& out) {
    const int C = static_cast<int>(qkv.cols()) / 3, hs = C / n_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    s.B = B, s.T = T;
    s.wei.resize(B * n_head * T, T);
    if (mask != nullptr) s.drop.resize(s.wei.rows(), T);
    const nn::Matrix& att = mask != nullptr ? s.drop : s.wei;
    out.resize(B * T, C);
#pragma omp parallel for schedule(static) if (s.wei.size() >= nn::kParallelGrain)
    for (int bh = 0; bh < B * n_head; ++bh) {  // one Head of 05 for one sequence
        const int b = bh / n_head, h = bh % n_head;
        const auto q = qkv.block(b * T, h * hs, T, hs);          // (T, hs)
        const auto k = qkv.block(b * T, C + h * hs, T, hs);      // (T, hs)
        const auto v = qkv.block(b * T, 2 * C + h * hs, T, hs);  // (T, hs)
        auto w = s.wei.middleRows(bh * T, T);                    // (T, T)
        w.noalias() = scale * q * k.transpose();
        causal_softmax(w);
        if (mask != nullptr) s.drop.middleRows(bh * T, T) = w.cwiseProduct(mask->middleRows(bh * T, T));
        out.block(b * T, h * hs, T, hs).noalias() = att.middleRows(bh * T, T) * v;
    }
}

// dout (B*T, C), and the forward's qkv (B*T, 3C), mask and state -> dqkv (B*T, 3C)
inline void causal_attention_backward(const nn::Matrix& dout, const nn::Matrix& qkv, int n_head,
                                      const nn::Matrix* mask, AttentionState& s, nn::Matrix& dqkv) {
    const int B = s.B, T = s.T, C = static_cast<int>(qkv.cols()) / 3, hs = C / n_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const nn::Matrix& att = mask != nullptr ? s.drop : s.wei;
    s.dwei.resize(s.wei.rows(), T);
    dqkv.resize(B * T, 3 * C);
#pragma omp parallel for schedule(static) if (s.wei.size() >= nn::kParallelGrain)
    for (int bh = 0; bh < B * n_head; ++bh) {
        const int b = bh / n_head, h = bh % n_head;
        const auto q = qkv.block(b * T, h * hs, T, hs);
        const auto k = qkv.block(b * T, C + h * hs, T, hs);
        const auto v = qkv.block(b * T, 2 * C + h * hs, T, hs);
        const auto w = s.wei.middleRows(bh * T, T);
        const auto dout_h = dout.block(b * T, h * hs, T, hs);
        auto d = s.dwei.middleRows(bh * T, T);
        // out = att v:  d att = dout v^T,  dv = att^T dout
        d.noalias() = dout_h * v.transpose();
        dqkv.block(b * T, 2 * C + h * hs, T, hs).noalias() = att.middleRows(bh * T, T).transpose() * dout_h;
        // att = wei * mask:  d wei = d att * mask
        if (mask != nullptr) d.array() *= mask->middleRows(bh * T, T).array();
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
