// Drawing the next token from a model's logits.
#pragma once
#include <span>

#include "common/random.hpp"

namespace nn {

// Draws index i with probability probs[i] (which sum to 1), from one uniform draw.
int multinomial(std::span<const float> probs, Rng& rng);

// softmax(logits / temperature), restricted to the top_k largest logits when
// top_k > 0, then one multinomial draw. (V) -> a token in [0, V).
int sample(std::span<const float> logits, Rng& rng, float temperature = 1.0f, int top_k = 0);

}  // namespace nn
