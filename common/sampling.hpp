// Drawing the next token from a model's logits.
#pragma once
#include <span>

#include "common/random.hpp"

namespace nn {

// The inverse of the cumulative distribution: the index i whose interval
// [probs[0] + ... + probs[i-1], probs[0] + ... + probs[i]) holds u, for u in
// [0, 1). With u uniform, index i comes out with probability probs[i]; an
// index of probability 0 never does.
int inverse_cdf(std::span<const float> probs, float u);

// Draws index i with probability probs[i] (which sum to 1), from one uniform
// draw: inverse_cdf(probs, rng.uniform()).
int multinomial(std::span<const float> probs, Rng& rng);

// softmax(logits / temperature), restricted to the top_k largest logits when
// top_k > 0, then one multinomial draw. (V) -> a token in [0, V).
int sample(std::span<const float> logits, Rng& rng, float temperature = 1.0f, int top_k = 0);

}  // namespace nn
