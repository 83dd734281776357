// 08-data-parallel: 06's training settings, their table and the learning-rate
// schedule (06-gpt/train.hpp), and the one setting this lesson adds,
// --grad-accum (tooling beside the concept).
#pragma once
#include <type_traits>

#include "06-gpt/train.hpp"
#include "common/error.hpp"
#include "common/settings.hpp"

// 06's TrainConfig; its batch_size is the global batch, over all ranks.
struct DataParallelTrainConfig : TrainConfig {
    int grad_accum = 1;  // K: micro-batches each rank runs one after another per step

    // InputError, naming the flag to change, unless the settings can train.
    void validate() const {
        TrainConfig::validate();
        if (grad_accum < 1) nn::fail("impossible training settings (--grad-accum {})", grad_accum);
    }
};

// 06's table (for_each_setting), then --grad-accum: the order a checkpoint stores them in.
template <typename ConfigT, typename TrainT, typename Visit>
    requires std::is_same_v<std::remove_const_t<TrainT>, DataParallelTrainConfig>
void for_each_setting(ConfigT& c, TrainT& t, Visit&& visit) {
    using Base = std::conditional_t<std::is_const_v<TrainT>, const TrainConfig, TrainConfig>;
    for_each_setting(c, static_cast<Base&>(t), visit);
    visit("--grad-accum", t.grad_accum, "K: each rank runs its B / ranks sequences as K micro-batches, one after "
          "another, adding up their gradients (the same step in less memory)", Bound::in(1, 4096));
}
