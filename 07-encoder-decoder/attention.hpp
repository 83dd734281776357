// 07-encoder-decoder: attention of all heads of all sequences at once, with
// the masks of an encoder-decoder, the fast form of 05's Head (speed, not a
// new concept).
//
// In the plain form, for one sequence b and one head h, with queries from one
// sequence (Tq positions) and keys and values from another or the same (Tk):
//   wei = softmax(mask(q k^T / sqrt(hs)))         (Tq, Tk)
//   out_h = dropout(wei) v                         (Tq, hs)
// The mask hides, for query i, every key j that it may not see: with
// `causal`, the future (j > i), 06's mask; with key lengths, the padding
// (j >= key_len[b]). Both leave query i a prefix [0, n_i) of the keys to look
// at, so the softmax runs over that prefix and the rest of the row is 0.
//
// The q, k and v of every head come from larger matrices read in place:
// self-attention's fused (B*T, 3C) qkv, or cross-attention's (B*Tq, C) q and
// (B*Tk, 2C) kv; `q_col`, `k_col` and `v_col` say where in them the columns
// of head 0 start. The B*nh (sequence, head) pairs run in parallel (OpenMP).
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "06-gpt/dropout.hpp"  // DropMask: the attention dropout's mask, as bits
#include "common/tensor.hpp"

// What the backward pass needs from the forward pass of all heads.
struct AttentionState {
    int B = 0, Tq = 0, Tk = 0;
    std::vector<int> seen;  // (B*Tq): how many keys query i of sequence b sees
    nn::Matrix wei;         // (B*nh*Tq, Tk): the weights of head h of sequence b in rows (b nh + h) Tq ...
    nn::Matrix drop;        // (B*nh*Tq, Tk): dropout(wei), when there is a dropout mask
    nn::Matrix dwei;        // (B*nh*Tq, Tk): backward's scratch
};

// Where the q, k and v of head 0 start: in which matrices, at which column.
struct QKV {
    int C;  // channels of q, of k and of v: nh heads of hs
    const nn::Matrix& q;
    int q_col;
    const nn::Matrix& kv;
    int k_col, v_col;
};

// An experiment (--ablate-head): zeroes the hs columns of each head of
// `heads` in the heads' output out (B*T, C), as if those heads had said nothing.
inline void zero_heads(nn::Matrix& out, const std::vector<int>& heads, int hs) {
    for (int h : heads) out.middleCols(static_cast<Eigen::Index>(h) * hs, hs).setZero();
}
// dout itself, or, with heads zeroed, a copy in `kept` with their columns
// zeroed: their output was the constant 0, so nothing flows back into them.
inline const nn::Matrix& without_heads(const nn::Matrix& dout, const std::vector<int>& heads, int hs, nn::Matrix& kept) {
    if (heads.empty()) return dout;
    kept = dout;
    zero_heads(kept, heads, hs);
    return kept;
}

// Softmax of row i of a (Tq, Tk) score matrix over its first seen[i] entries;
// the rest (the future, the padding) become 0.
inline void prefix_softmax(Eigen::Ref<nn::Matrix> s, const int* seen) {
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
        auto visible = s.row(i).head(seen[i]).array();
        visible = (visible - visible.maxCoeff()).exp();
        visible /= visible.sum();
        s.row(i).tail(s.cols() - seen[i]).setZero();
    }
}

// The masks, as prefixes: query i of sequence b may read the keys [0, seen),
//   seen = min(i + 1 with `causal` (the future hidden), key_len[b] when key
//              lengths are given (the padding hidden), Tk)
// key_len (B) or nullptr -> seen (B*Tq): entry b Tq + i for query i of sequence b
// Exercise: padding_mask
inline void visible_keys(int B, int Tq, int Tk, bool causal, const int* key_len, std::vector<int>& seen) {
    seen.resize(static_cast<std::size_t>(B * Tq));
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < Tq; ++i)
            seen[static_cast<std::size_t>(b * Tq + i)] = std::min(causal ? i + 1 : Tk, key_len ? key_len[b] : Tk);
}

// -> out (B*Tq, C), the heads side by side. key_len (B), or nullptr when
// every key is a word; `mask` (B*nh*Tq, Tk), if given, is the attention
// dropout's (06's bits): out = (wei * mask) v.
inline void attention_forward(const QKV& in, int B, int Tq, int Tk, int n_head, bool causal, const int* key_len,
                              const DropMask* mask, AttentionState& s, nn::Matrix& out) {
    const int C = in.C, hs = C / n_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    s.B = B, s.Tq = Tq, s.Tk = Tk;
    visible_keys(B, Tq, Tk, causal, key_len, s.seen);
    s.wei.resize(B * n_head * Tq, Tk);
    if (mask != nullptr) s.drop.resize(s.wei.rows(), Tk);
    const nn::Matrix& att = mask != nullptr ? s.drop : s.wei;
    out.resize(B * Tq, C);
#pragma omp parallel for schedule(static) if (static_cast<long>(B) * n_head * Tq * Tk * hs >= 64 * nn::kParallelGrain)
    for (int bh = 0; bh < B * n_head; ++bh) {  // one Head of 05 for one sequence
        const int b = bh / n_head, h = bh % n_head;
        const auto q = in.q.block(b * Tq, in.q_col + h * hs, Tq, hs);    // (Tq, hs)
        const auto k = in.kv.block(b * Tk, in.k_col + h * hs, Tk, hs);   // (Tk, hs)
        const auto v = in.kv.block(b * Tk, in.v_col + h * hs, Tk, hs);   // (Tk, hs)
        auto w = s.wei.middleRows(bh * Tq, Tq);                          // (Tq, Tk)
        w.noalias() = scale * q * k.transpose();
        prefix_softmax(w, &s.seen[static_cast<std::size_t>(b * Tq)]);
        if (mask != nullptr) {
            auto drop = s.drop.middleRows(bh * Tq, Tq);
            drop = w;
            mask->apply(drop, bh * Tq);  // drop = w * mask
        }
        out.block(b * Tq, h * hs, Tq, hs).noalias() = att.middleRows(bh * Tq, Tq) * v;
    }
}

// dout (B*Tq, C), the forward's inputs, mask and state -> dq (B*Tq, q's
// columns) and dkv (B*Tk, kv's columns), written at the same columns as the
// forward read q, k and v. For self-attention dq and dkv are one matrix.
inline void attention_backward(const nn::Matrix& dout, const QKV& in, int n_head, const DropMask* mask,
                               AttentionState& s, nn::Matrix& dq, nn::Matrix& dkv) {
    const int B = s.B, Tq = s.Tq, Tk = s.Tk, C = static_cast<int>(dout.cols()), hs = C / n_head;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const nn::Matrix& att = mask != nullptr ? s.drop : s.wei;
    s.dwei.resize(s.wei.rows(), Tk);
#pragma omp parallel for schedule(static) if (static_cast<long>(B) * n_head * Tq * Tk * hs >= 64 * nn::kParallelGrain)
    for (int bh = 0; bh < B * n_head; ++bh) {
        const int b = bh / n_head, h = bh % n_head;
        const auto q = in.q.block(b * Tq, in.q_col + h * hs, Tq, hs);
        const auto k = in.kv.block(b * Tk, in.k_col + h * hs, Tk, hs);
        const auto v = in.kv.block(b * Tk, in.v_col + h * hs, Tk, hs);
        const auto w = s.wei.middleRows(bh * Tq, Tq);
        const auto dout_h = dout.block(b * Tq, h * hs, Tq, hs);
        auto d = s.dwei.middleRows(bh * Tq, Tq);
        // out = att v:  d att = dout v^T,  dv = att^T dout
        d.noalias() = dout_h * v.transpose();
        dkv.block(b * Tk, in.v_col + h * hs, Tk, hs).noalias() = att.middleRows(bh * Tq, Tq).transpose() * dout_h;
        // att = wei * mask:  d wei = d att * mask
        if (mask != nullptr) mask->apply(d, bh * Tq);
        // softmax, row by row: ds_ij = wei_ij (dwei_ij - sum_j' dwei_ij' wei_ij');
        // the hidden keys have wei = 0 and get no gradient.
        for (int i = 0; i < Tq; ++i) {
            const float dot = d.row(i).dot(w.row(i));
            d.row(i) = w.row(i).cwiseProduct((d.row(i).array() - dot).matrix());
        }
        // s = scale q k^T:  dq = scale ds k,  dk = scale ds^T q
        dq.block(b * Tq, in.q_col + h * hs, Tq, hs).noalias() = scale * d * k;
        dkv.block(b * Tk, in.k_col + h * hs, Tk, hs).noalias() = scale * d.transpose() * q;
    }
}
