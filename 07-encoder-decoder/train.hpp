// 07-encoder-decoder: the training settings, the table of every setting, and
// the paper's learning-rate schedule (tooling beside the concept).
//
// Every setting that shapes a run is one line of for_each_setting below. The
// command line (main.cpp) and the checkpoint (checkpoint.hpp) both walk that
// table, so a new setting is one edit: a field in Config or TrainConfig, one
// line here.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

#include "07-encoder-decoder/model.hpp"
#include "common/error.hpp"
#include "common/settings.hpp"
#include "common/training.hpp"

using nn::Bound;
using nn::EvalRecord;
using nn::setting_text;

struct TrainConfig {
    int batch_size = 64;      // B: sentence pairs per step
    int max_iters = 800;      // training steps
    int warmup_iters = 200;   // steps of linear warm-up of the learning rate
    int eval_interval = 100;  // estimate the losses every this many steps
    int eval_iters = 20;      // batches per split in each estimate
    float lr_factor = 1.0f;   // the schedule's scale (the paper: 1)
    float label_smoothing = 0.1f;
    float beta1 = 0.9f, beta2 = 0.98f;  // the paper's Adam
    float grad_clip = 1.0f;  // the most the global gradient norm may be (0: no clipping)
    std::uint64_t seed = 1337;

    // InputError, naming the flag to change, unless the settings can train.
    void validate() const {
        if (batch_size < 1 || max_iters < 0 || warmup_iters < 1 || eval_interval < 1 || eval_iters < 1)
            nn::fail("impossible training settings (batch {}, max-iters {}, warmup {}, eval every {} on {})",
                     batch_size, max_iters, warmup_iters, eval_interval, eval_iters);
        if (!(lr_factor > 0)) nn::fail("--lr-factor must be above 0");
        if (!(label_smoothing >= 0 && label_smoothing < 1)) nn::fail("--label-smoothing must be in [0, 1)");
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) nn::fail("--beta1 and --beta2 must be in [0, 1)");
        if (!(grad_clip >= 0)) nn::fail("--grad-clip must be 0 or more");
    }
};

// The names of an enum setting's values, for the command line and messages.
inline std::span<const char* const> names_of(Activation) { return kActivationNames; }
inline std::span<const char* const> names_of(Norm) { return kNormNames; }
inline std::span<const char* const> names_of(Position) { return kPositionNames; }

// Calls visit(flag, field, help, bound) for every setting of the model (Config)
// and of training (TrainConfig), in the order a checkpoint stores them. Works
// on const and non-const configs alike.
template <typename ConfigT, typename TrainT, typename Visit>
void for_each_setting(ConfigT& c, TrainT& t, Visit&& visit) {
    static_assert(std::is_same_v<std::remove_const_t<ConfigT>, Config> &&
                  std::is_same_v<std::remove_const_t<TrainT>, TrainConfig>);
    // The model
    visit("--max-len", c.max_len, "The most tokens of a sentence, either side, <bos> or <eos> included", Bound::in(2, 1024));
    visit("--d-model", c.d_model, "C: channels of the residual stream", Bound::in(1, 16384));
    visit("--n-head", c.n_head, "nh: attention heads, each of C / nh channels", Bound::in(1, 1024));
    visit("--n-layer", c.n_layer, "N: encoder layers, and as many decoder layers", Bound::in(1, 256));
    visit("--d-ff", c.d_ff, "The feed-forward layer's hidden width", Bound::in(1, 65536));
    visit("--dropout", c.dropout, "Probability of zeroing an activation while training", Bound::nonnegative);
    visit("--norm", c.norm, "post: LayerNorm(x + f(x)), the paper's; pre: x + f(LayerNorm(x)), 06's", Bound::none);
    visit("--position", c.position, "sinusoidal: the paper's fixed waves; learned: 06's trained table", Bound::none);
    visit("--activation", c.activation, "The feed-forward nonlinearity: relu (the paper's) or gelu (06's)", Bound::none);
    // Training
    visit("--batch-size", t.batch_size, "B: sentence pairs per step", Bound::in(1, 4096));
    visit("--max-iters", t.max_iters, "Training steps", Bound::in(0, 1000000));
    visit("--warmup-iters", t.warmup_iters, "Steps of linear learning-rate warm-up", Bound::in(1, 1000000));
    visit("--eval-interval", t.eval_interval, "Estimate the losses every this many steps", Bound::in(1, 1000000));
    visit("--eval-iters", t.eval_iters, "Batches per split in each loss estimate", Bound::in(1, 10000));
    visit("--lr-factor", t.lr_factor, "Scales the paper's schedule, d_model^-0.5 min(step^-0.5, step warmup^-1.5)",
          Bound::positive);
    visit("--label-smoothing", t.label_smoothing, "eps: the share of the target spread over every word",
          Bound::nonnegative);
    visit("--beta1", t.beta1, "Adam beta1", Bound::nonnegative);
    visit("--beta2", t.beta2, "Adam beta2", Bound::nonnegative);
    visit("--grad-clip", t.grad_clip, "Clip the global gradient norm to this (0: off)", Bound::nonnegative);
    visit("--seed", t.seed, "Seed for the weights, the batches and dropout", Bound::seed);
}

// The paper's learning rate for step `step` (0-based; the paper counts from 1):
//   lr = factor * d_model^-0.5 * min(n^-0.5, n * warmup^-1.5),  n = step + 1
// a linear rise for `warmup` steps, to factor / sqrt(d_model * warmup), then a
// decay as 1 / sqrt(n).
inline float get_lr(const TrainConfig& t, int d_model, int step) {
    const double n = step + 1.0;
    return static_cast<float>(t.lr_factor / std::sqrt(static_cast<double>(d_model)) *
                              std::min(1.0 / std::sqrt(n), n * std::pow(t.warmup_iters, -1.5)));
}
