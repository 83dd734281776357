// 06-gpt: what a Block frees after its forward pass and during its backward
// pass, and what it computes again (memory: tooling beside the concept;
// model.hpp's Block and GPTLanguageModel call these).
//
// The blocks take turns with the memory of what backward does not read,
// instead of each keeping its own: with the recomputations of model.hpp (the
// GELU's output, FeedForward) and attention.hpp (the attention weights), the
// lecture's model needs 2.4 GB, not 5.7 (README). glibc keeps the freed
// memory in the heap (common/runtime.hpp), so the next block reuses it.
#pragma once
#include <initializer_list>

#include "06-gpt/model.hpp"

// After forward: the projections' outputs, once added to the residual stream,
// and the GELU's output, which FeedForward::backward computes again.
inline void free_after_forward(Block& b) {
    for (nn::Matrix* m : {&b.sa.proj.y, &b.ffwd.proj.y, &b.ffwd.act.y}) *m = nn::Matrix();
}

// During backward, once the feed-forward half is through: the gradients only
// that half needed.
inline void free_feed_forward_gradients(Block& b) {
    for (nn::Matrix* m : {&b.ln2.dx, &b.ffwd.fc.dx, &b.ffwd.act.dx, &b.ffwd.proj.dx, &b.ffwd.dropout.dx})
        *m = nn::Matrix();
}

// Once the attention half is through: its gradients, and dx1. Only dx, the
// block's answer, stays.
inline void free_attention_gradients(Block& b) {
    for (nn::Matrix* m : {&b.ln1.dx, &b.sa.c_attn.dx, &b.sa.dqkv, &b.sa.proj.dx, &b.sa.resid_dropout.dx, &b.dx1})
        *m = nn::Matrix();
}

// The model's forward and backward (not a Block's own, which the tests and
// exercises call alone) also drop each block's LayerNorm outputs, ln1(x) and
// ln2(x1), once the block's forward is through, and compute them again just
// before its backward, from the kept inputs x and x1: the same function on
// the same numbers, so the same bits. Only the block being walked back holds
// them, instead of every block (for the lecture's model, 50 MB a block; its
// peak goes from 2.66 GB to 2.44). Only where that memory matters: from
// drop_layernorm_outputs_from values of a (B*T, C) matrix (16 MB), which the
// lecture's 16,384 x 384 passes and the default 768 x 128 does not (there the
// two extra LayerNorm passes a block would cost time and save 0.8 MB).
inline long drop_layernorm_outputs_from = 1L << 22;  // the tests set it to 0

inline void free_layernorm_outputs(Block& b) {
    for (LayerNorm* ln : {&b.ln1, &b.ln2})
        if (ln->y.size() >= drop_layernorm_outputs_from) ln->y = nn::Matrix();
}

// ln1(x) and ln2(x1) again, if they were dropped: what c_attn's and fc's
// backward read (each Linear keeps a pointer to its input, which this refills).
inline void restore_layernorm_outputs(Block& b) {
    for (LayerNorm* ln : {&b.ln1, &b.ln2})
        if (ln->on && ln->y.size() == 0) ln->forward(*ln->x);
}
