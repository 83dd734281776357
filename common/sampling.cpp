#include "common/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/layers.hpp"

namespace nn {

// probs (V), u in [0, 1) -> the first index i with u < probs[0] + ... + probs[i]
// Exercise: inverse_cdf
int inverse_cdf(std::span<const float> probs, float u) {
    float cumulative = 0;
    for (std::size_t i = 0; i < probs.size(); ++i) {
        cumulative += probs[i];
        if (u < cumulative) return static_cast<int>(i);
    }
    // Rounding left the sum a hair below u: take the last token with any probability.
    for (std::size_t i = probs.size(); i-- > 0;)
        if (probs[i] > 0) return static_cast<int>(i);
    return 0;
}

int multinomial(std::span<const float> probs, Rng& rng) { return inverse_cdf(probs, rng.uniform()); }

int sample(std::span<const float> logits, Rng& rng, float temperature, int top_k) {
    std::vector<float> p(logits.begin(), logits.end());
    for (float& x : p) x /= temperature;
    if (top_k > 0 && static_cast<std::size_t>(top_k) < p.size()) {
        std::vector<float> sorted = p;
        std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<>());
        const float kth = sorted[static_cast<std::size_t>(top_k - 1)];
        for (float& x : p)
            if (x < kth) x = -std::numeric_limits<float>::infinity();
    }
    softmax_rows(Eigen::Map<Matrix>(p.data(), 1, static_cast<Eigen::Index>(p.size())));
    return multinomial(p, rng);
}

}  // namespace nn
