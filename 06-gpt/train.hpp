// 06-gpt: the training settings, the table of every setting, and the
// learning-rate schedule (tooling beside the concept).
//
// Every setting that shapes a run is one line of for_each_setting below. The
// command line (main.cpp), the checkpoint (checkpoint.hpp) and the check that
// a resumed run uses the settings it was trained with all walk that table,
// so a new setting is one edit: a field in Config or TrainConfig, one line here.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

#include "06-gpt/model.hpp"
#include "common/error.hpp"
#include "common/settings.hpp"
#include "common/training.hpp"

using nn::Bound;
using nn::EvalRecord;
using nn::setting_text;

enum class Schedule { cosine, constant };  // warm-up then cosine decay, or one learning rate throughout
inline constexpr std::array<const char*, 2> kScheduleNames{"cosine", "constant"};

struct TrainConfig {
    int batch_size = 12;      // B
    int max_iters = 2000;     // training steps
    int warmup_iters = 100;   // steps of linear warm-up of the learning rate
    int eval_interval = 250;  // estimate the losses every this many steps
    int eval_iters = 200;     // batches per split in each estimate
    float learning_rate = 1e-3f, min_lr = 1e-4f;
    Schedule lr_schedule = Schedule::cosine;
    float weight_decay = 0.1f, beta1 = 0.9f, beta2 = 0.99f;
    float grad_clip = 1.0f;  // the most the global gradient norm may be (0: no clipping)
    std::uint64_t seed = 1337;

    // InputError, naming the flag to change, unless the settings can train.
    void validate() const {
        if (batch_size < 1 || max_iters < 0 || warmup_iters < 1 || eval_interval < 1 || eval_iters < 1)
            nn::fail("impossible training settings (batch {}, max-iters {}, warmup {}, eval every {} on {})",
                     batch_size, max_iters, warmup_iters, eval_interval, eval_iters);
        if (!(learning_rate > 0) || !(min_lr >= 0)) nn::fail("--lr must be above 0 and --min-lr not below");
        if (min_lr > learning_rate) nn::fail("--min-lr ({}) is above --lr ({})", min_lr, learning_rate);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) nn::fail("--beta1 and --beta2 must be in [0, 1)");
        if (!(weight_decay >= 0) || !(grad_clip >= 0)) nn::fail("--weight-decay and --grad-clip must be 0 or more");
    }
};

// The names of an enum setting's values, for the command line and messages.
inline std::span<const char* const> names_of(Activation) { return kActivationNames; }
inline std::span<const char* const> names_of(Schedule) { return kScheduleNames; }
inline std::span<const char* const> names_of(Init) { return kInitNames; }
inline std::span<const char* const> names_of(Score) { return kScoreNames; }

// Calls visit(flag, field, help, bound) for every setting of the model (Config)
// and of training (TrainConfig), in the order a checkpoint stores them. Works
// on const and non-const configs alike. A bool field's flag switches it off.
template <typename ConfigT, typename TrainT, typename Visit>
void for_each_setting(ConfigT& c, TrainT& t, Visit&& visit) {
    static_assert(std::is_same_v<std::remove_const_t<ConfigT>, Config> &&
                  std::is_same_v<std::remove_const_t<TrainT>, TrainConfig>);
    // The model
    visit("--block-size", c.block_size, "T: characters per sequence (context length)", Bound::in(1, 8192));
    visit("--n-embd", c.n_embd, "C: channels of the residual stream", Bound::in(1, 16384));
    visit("--n-head", c.n_head, "nh: attention heads per block, each of C / nh channels", Bound::in(1, 1024));
    visit("--n-layer", c.n_layer, "Transformer blocks", Bound::in(1, 256));
    visit("--dropout", c.dropout, "Probability of zeroing an activation while training", Bound::nonnegative);
    visit("--no-residual", c.residual, "Blocks without residual connections: x = f(x), not x + f(x)", Bound::none);
    visit("--no-layernorm", c.layernorm, "No LayerNorm (ln1, ln2, ln_f become the identity)", Bound::none);
    visit("--no-proj", c.projection, "No output projection after attention and in the feed-forward layer "
          "(needs --ffwd-mult 1)", Bound::none);
    visit("--activation", c.activation, "The feed-forward nonlinearity: gelu, or relu (05's)", Bound::none);
    visit("--ffwd-mult", c.ffwd_mult, "The feed-forward layer's hidden width, in units of C", Bound::in(1, 64));
    visit("--no-tie", c.tie, "An lm head of its own, not the token embedding table", Bound::none);
    visit("--init", c.init, "Initial weights: gpt2 (N(0, 0.02), smaller for the residual projections) or pytorch "
          "(PyTorch's defaults, as in the lecture)", Bound::none);
    visit("--no-scale", c.scale, "Attention scores without the 1/sqrt(hs): q.k, not q.k / sqrt(hs)", Bound::none);
    visit("--score", c.score, "Attention score, as 04's: dot (q.k), squared-dot, squared-elements, negative-dot, "
          "distance, reciprocal (1/(q.k)) or inverse-distance (1/(1 + |q-k|^2)), each scaled to the dot's spread",
          Bound::none);
    // Training
    visit("--batch-size", t.batch_size, "B: sequences per batch", Bound::in(1, 4096));
    visit("--max-iters", t.max_iters, "Training steps", Bound::in(0, 1000000));
    visit("--warmup-iters", t.warmup_iters, "Steps of linear learning-rate warm-up (cosine schedule)", Bound::in(1, 1000000));
    visit("--eval-interval", t.eval_interval, "Estimate the losses every this many steps", Bound::in(1, 1000000));
    visit("--eval-iters", t.eval_iters, "Batches per split in each loss estimate", Bound::in(1, 10000));
    visit("--lr", t.learning_rate, "Peak AdamW learning rate", Bound::positive);
    visit("--min-lr", t.min_lr, "Learning rate at the last step, after the cosine decay", Bound::nonnegative);
    visit("--lr-schedule", t.lr_schedule, "cosine: warm-up then cosine decay to --min-lr; constant: --lr throughout",
          Bound::none);
    visit("--weight-decay", t.weight_decay, "AdamW decoupled weight decay (matrices only)", Bound::nonnegative);
    visit("--beta1", t.beta1, "AdamW beta1", Bound::nonnegative);
    visit("--beta2", t.beta2, "AdamW beta2", Bound::nonnegative);
    visit("--grad-clip", t.grad_clip, "Clip the global gradient norm to this (0: off)", Bound::nonnegative);
    visit("--seed", t.seed, "Seed for the weights, the batches, dropout and the sampling", Bound::seed);
}

// The learning rate for step `step` (0-based). cosine: linear warm-up from
// lr / warmup to lr, then a cosine from lr down to min_lr at the last step.
inline float get_lr(const TrainConfig& t, int step) {
    if (t.lr_schedule == Schedule::constant) return t.learning_rate;
    if (step < t.warmup_iters) return t.learning_rate * static_cast<float>(step + 1) / static_cast<float>(t.warmup_iters);
    const int span = std::max(1, t.max_iters - 1 - t.warmup_iters);
    const double ratio = std::min(1.0, static_cast<double>(step - t.warmup_iters) / span);
    const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));  // 1 -> 0
    return static_cast<float>(t.min_lr + coeff * (t.learning_rate - t.min_lr));
}
