// Gradient checking: compares a hand-written backward pass with central finite
// differences, (f(p + eps) - f(p - eps)) / (2 eps), one parameter at a time.
// The tests use it on every layer; a dropped term or a wrong sign shows up as
// a relative error of order one, float32 rounding as one of order 1e-3.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <type_traits>

#include "common/random.hpp"

namespace nn {

struct GradCheck {
    double max_rel_error = 0;  // worst |analytic - numeric| / max(|analytic| + |numeric|, floor)
    std::size_t worst_index = 0;
    double analytic = 0, numeric = 0;  // at the worst index
    std::size_t checked = 0;
    std::size_t skipped = 0;  // indices at a kink (see below)
};

// `loss()` recomputes the loss from the current contents of `params`.
// `grad` holds d(loss)/d(params) from the backward pass. At most `samples`
// indices are checked, drawn at random when there are more.
//
// For a function with a kink (ReLU), `kinked()` is asked after each of the two
// evaluations around an index: true when that evaluation moved a
// pre-activation across the kink, where a finite difference measures the kink
// rather than the gradient. Such an index is counted in `skipped`, not checked.
template <typename LossFn, typename KinkFn>
    requires std::is_invocable_r_v<bool, KinkFn&>
GradCheck check_gradient(LossFn&& loss, std::span<float> params, std::span<const float> grad, KinkFn&& kinked,
                         double eps = 1e-2, std::size_t samples = 64, double floor = 1e-3, std::uint64_t seed = 1) {
    GradCheck result;
    Rng rng(seed);
    const std::size_t n = params.size();
    for (std::size_t k = 0; k < std::min(n, samples); ++k) {
        const std::size_t i = n <= samples ? k : rng.below(n);
        const float saved = params[i];
        params[i] = saved + static_cast<float>(eps);
        const double plus = loss();
        bool kink = kinked();
        params[i] = saved - static_cast<float>(eps);
        const double minus = loss();
        kink = kinked() || kink;
        params[i] = saved;
        if (kink) {
            ++result.skipped;
            continue;
        }
        // The step actually taken in float, not the one asked for.
        const double step = double(saved + float(eps)) - double(saved - float(eps));
        const double numeric = (plus - minus) / step;
        const double err = std::abs(grad[i] - numeric) /
                           std::max(std::abs(double(grad[i])) + std::abs(numeric), floor);
        if (err >= result.max_rel_error) {
            result.max_rel_error = err;
            result.worst_index = i;
            result.analytic = grad[i];
            result.numeric = numeric;
        }
        ++result.checked;
    }
    return result;
}

// The same for a smooth function: nothing is skipped.
template <typename LossFn>
GradCheck check_gradient(LossFn&& loss, std::span<float> params, std::span<const float> grad, double eps = 1e-2,
                         std::size_t samples = 64, double floor = 1e-3, std::uint64_t seed = 1) {
    return check_gradient(loss, params, grad, [] { return false; }, eps, samples, floor, seed);
}

}  // namespace nn
