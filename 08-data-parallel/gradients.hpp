// 08-data-parallel: the concept, one step's gradient from ranks and
// micro-batches. A global batch of B sequences is split across `world` ranks,
// and each rank's slice into K micro-batches run one after another:
//   accumulate_gradients: this rank's K micro-batches, their gradients added
//                         up in .grad (06's layers add with +=)
//   average_gradients:    the all-reduce's sum of every rank's .grad, times
//                         1 / (world K): the gradient of the global batch's mean
// main.cpp runs them (with distributed.hpp's MPI_Allreduce between the two).
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "08-data-parallel/model.hpp"
#include "08-data-parallel/train.hpp"
#include "common/error.hpp"
#include "common/text.hpp"

// How a global batch of B sequences is split: `world` ranks take B / world
// each, which each runs as K micro-batches of B / (world K).
struct Split {
    int world, rank, K, micro;  // micro: sequences per micro-batch

    Split(const DataParallelTrainConfig& t, int world_, int rank_)
        : world(world_), rank(rank_), K(t.grad_accum), micro(t.batch_size / (world_ * t.grad_accum)) {
        if (t.batch_size % (world * K) != 0)
            nn::fail("--batch-size {} does not split into {} rank{} x --grad-accum {}: it must be a multiple of {}",
                     t.batch_size, world, world == 1 ? "" : "s", K, world * K);
    }
    // The first sequence of this rank's micro-batch k, in the global batch.
    int first(int k) const { return (rank * K + k) * micro; }
};

// Sequences [first, first + n) of a batch (B, T) -> (n, T).
inline nn::Batch rows(const nn::Batch& batch, int first, int n) {
    const auto from = static_cast<std::ptrdiff_t>(first) * batch.T, to = from + static_cast<std::ptrdiff_t>(n) * batch.T;
    return {n, batch.T, {batch.x.begin() + from, batch.x.begin() + to}, {batch.y.begin() + from, batch.y.begin() + to}};
}

// The global batch of training step `step` (B, T), with every .grad zeroed
// -> this rank's K micro-batches run one after another, each seeding its
// dropout masks, its loss (the mean over its micro rows) and backward, which
// adds the gradient of that mean to every .grad; returns the mean of the K
// losses (this rank's slice's loss, what the progress line shows).
// Exercise: accumulate_gradients
inline double accumulate_gradients(DataParallelGPT& model, const nn::Batch& batch, const Split& split, int step) {
    double loss = 0;
    for (int k = 0; k < split.K; ++k) {  // .grad adds up the micro-batches' gradients
        model.seed_dropout(step, split.first(k), split.micro);
        loss += model.loss(rows(batch, split.first(k), split.micro)) / split.K;
        model.backward();
    }
    return loss;
}

// summed: every parameter's .grad end to end (in params' order), summed over
// the `world` ranks (the all-reduce's result), each rank's the sum of its K
// micro-batches' gradients of means -> every .grad = summed / (world K), the
// gradient of the mean loss over the global batch, what 06 computes on one
// batch of B.
// Exercise: average_gradients
inline void average_gradients(std::span<const float> summed, int world, int K, const std::vector<nn::Parameter*>& params) {
    const float scale = 1.0f / static_cast<float>(world * K);
    const float* at = summed.data();
    for (nn::Parameter* p : params)
        for (Eigen::Index i = 0; i < p->grad.size(); ++i) p->grad.data()[i] = *at++ * scale;
}
