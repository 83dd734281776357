// 05-multihead: how much memory a training run needs, from its settings alone,
// before anything is built (tooling beside the concept, as 06-gpt/size.hpp).
#pragma once
#include <fmt/core.h>

#include "05-multihead/model.hpp"
#include "common/limits.hpp"

// How many values the parameters() of a model of config `c` hold: the
// embeddings, every head's key, query and value (hs x C each, no bias, so
// 3 C^2 over the nh heads), proj and ffwd.fc (C x C and a bias each), lm_head.
inline double parameter_count(const Config& c) {
    const double V = c.vocab_size, T = c.block_size, C = c.n_embd;
    return V * C + (c.position == Position::learned ? T * C : 0) + 3 * C * C + 2 * (C * C + C) + (C * V + V);
}

// The floats the model keeps after a forward and backward pass over B
// sequences of T characters, for each of the B*T positions (model.hpp):
//   the two embeddings' outputs and x (3C);
//   in each head, k, q, v, out, dq, dk, dv (7 hs), s, wei, dwei (3T), and
//     four (B*T, C) matrices: dx and the dx of key, query and value, so
//     4 nh C over the heads, the largest term when there are many heads;
//   cat, the heads' gradients dhead, proj's output and dx, and the sum dx (5C);
//   ffwd's fc output, out, dy and fc's dx (4C);
//   lm_head's output (V) and dx (C); the loss's softmax and its gradient (2V).
inline double activation_floats(const Config& c, int B) {
    const double BT = double(B) * c.block_size, C = c.n_embd, nh = c.n_head, T = c.block_size;
    return BT * ((3 + 7 + 5 + 4 + 1) * C + nh * (4 * C + 3 * T) + 3.0 * c.vocab_size);
}

// The bytes a training run needs at the least: the parameters with their
// gradients and AdamW's two moments (4 floats a value; a sinusoidal position
// table, not trained, has its value and an unused gradient), the activations,
// main's copies of every head's q and k and print_scale's two (B*T, C) draws
// (4C a position), and the integer vectors of a batch (the tokens, the
// targets, the positions and the embeddings' copies: 6 a position).
// Against the peak resident size of 2 steps (/usr/bin/time): --n-embd 512
// --n-head 8 --block-size 64 counts 271.7 MB and peaks at 282.8 MB; --n-embd
// 256 --n-head 32 --block-size 64, 376.8 MB and 387.7 MB; the default, 1.8 MB
// and 19.3 MB (the rest is the program and the text).
inline double training_bytes(const Config& c, int B) {
    const double BT = double(B) * c.block_size;
    const double fixed = c.position == Position::learned ? 0 : 2.0 * c.block_size * c.n_embd;
    return 4.0 * (4 * parameter_count(c) + fixed + activation_floats(c, B) + BT * (4.0 * c.n_embd + 6));
}

// Refuses, before the model is built, settings whose training run cannot fit
// in this machine's memory, with the bytes it would need.
inline void check_fits(const Config& c, int B) {
    nn::check_fits(training_bytes(c, B),
                   fmt::format("a model of {:.0f} parameters ({} heads) trained on batches of {} x {} characters",
                               parameter_count(c), c.n_head, B, c.block_size));
}
