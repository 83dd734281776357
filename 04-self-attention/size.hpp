// 04-self-attention: how much memory a training run needs, from its settings
// alone, before anything is built (tooling beside the concept, as
// 06-gpt/size.hpp).
#pragma once
#include <fmt/core.h>

#include "04-self-attention/model.hpp"
#include "common/limits.hpp"

// How many values the parameters() of a model of config `c` hold: the
// embeddings, the head's key, query and value (C x C each, no bias: hs = C),
// and lm_head.
inline double parameter_count(const Config& c) {
    const double V = c.vocab_size, T = c.block_size, C = c.n_embd;
    return V * C + (c.position == Position::learned ? T * C : 0) + 3 * C * C + (C * V + V);
}

// The floats the model keeps after a forward and backward pass over B
// sequences of T characters, for each of the B*T positions (model.hpp):
//   the two embeddings' outputs and x (3C);
//   the head's k, q, v, out, dq, dk, dv (7 hs = 7C), s, wei, dwei (3T), and
//     its dx with the dx of key, query and value (4C);
//   lm_head's output (V) and dx (C); the loss's softmax and its gradient (2V).
inline double activation_floats(const Config& c, int B) {
    const double BT = double(B) * c.block_size;
    return BT * ((3 + 7 + 4 + 1) * double(c.n_embd) + 3.0 * c.block_size + 3.0 * c.vocab_size);
}

// The bytes a training run needs at the least: the parameters with their
// gradients and AdamW's two moments (4 floats a value; a sinusoidal position
// table, not trained, has its value and an unused gradient), the activations,
// main's copies of q and k for print_scale and its two (B*T, C) draws (4C a
// position), and the integer vectors of a batch (the tokens, the targets, the
// positions and the embeddings' copies: 6 a position).
// Against the peak resident size of 2 steps (/usr/bin/time): --n-embd 512
// --block-size 64 counts 97.1 MB and peaks at 116.7 MB; --n-embd 1024
// --block-size 128, 382.9 MB and 428.7 MB; the default, 1.0 MB and 19.3 MB
// (the rest is the program, the text, and Eigen's buffers for its products).
inline double training_bytes(const Config& c, int B) {
    const double BT = double(B) * c.block_size;
    const double fixed = c.position == Position::learned ? 0 : 2.0 * c.block_size * c.n_embd;
    return 4.0 * (4 * parameter_count(c) + fixed + activation_floats(c, B) + BT * (4.0 * c.n_embd + 6));
}

// Refuses, before the model is built, settings whose training run cannot fit
// in this machine's memory, with the bytes it would need.
inline void check_fits(const Config& c, int B) {
    nn::check_fits(training_bytes(c, B), fmt::format("a model of {:.0f} parameters trained on batches of {} x {} characters",
                                                     parameter_count(c), B, c.block_size));
}
