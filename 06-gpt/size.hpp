// 06-gpt: how big a model is, from its settings alone, before it is built
// (tooling beside the concept; 08-data-parallel includes it too).
#pragma once
#include <fmt/core.h>

#include "06-gpt/model.hpp"
#include "common/limits.hpp"

// How many values the parameters() of a model of config `c` hold: the
// checkpoint must hold that many floats before a model is built to read them,
// so a crafted file cannot make this program allocate what it does not have.
inline double parameter_count(const Config& c) {
    const double V = c.vocab_size, T = c.block_size, C = c.n_embd, H = double(c.ffwd_mult) * c.n_embd;
    const double ln = c.layernorm ? 2 * C : 0;  // gain and bias
    const double block = (C * 3 * C + 3 * C) + (c.projection ? C * C + C : 0) + (C * H + H) +
                         (c.projection ? H * C + C : 0) + 2 * ln;
    return V * C + T * C + c.n_layer * block + ln + (c.tie ? 0 : V * C);
}

// The floating-point operations of one training step's matrix products, for
// the automatic thread count (nn::auto_threads): 6 per weight per position
// (2 forward, 4 backward), and attention's q k^T and (weights) v, 4 T^2 C a
// sequence forward and twice that backward, in each block.
inline double step_flops(const Config& c, int B) {
    const double BT = double(B) * c.block_size;
    return 6.0 * parameter_count(c) * BT + 12.0 * c.n_layer * BT * c.block_size * c.n_embd;
}

// Refuses settings whose model cannot fit in this machine's memory, before
// anything is allocated: at the least, the parameters with their gradients and
// AdamW's two moments, and what every block keeps for its backward pass of
// each of the B*T positions (model.hpp): out, x1 and the block's output y
// (3C), q, k, v (3C), and fc's output, the activation's input (ffwd_mult C);
// ln1(x) and ln2(x1) (2C) for the one block being walked back (memory.hpp);
// the logits and their softmax (2V); the (B, nh, T, T) attention weights
// print_shapes keeps for one block, and every block's dropout mask, a bit per
// weight.
inline void check_fits(const Config& c, int B) {
    const double params = parameter_count(c);
    const double BT = double(B) * c.block_size, attention = BT * c.n_head * c.block_size;
    const double activations =
        (c.n_layer * (6.0 + c.ffwd_mult) + 2) * BT * c.n_embd + 2 * BT * c.vocab_size + attention;
    nn::check_fits(4.0 * (4 * params + activations) + (c.dropout > 0 ? c.n_layer * attention / 8 : 0),
                   fmt::format("a model of {:.0f} parameters trained on batches of {} x {} characters", params, B,
                               c.block_size));
}
