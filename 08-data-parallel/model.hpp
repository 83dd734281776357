// 08-data-parallel: 06's model, with dropout masks that do not depend on how a
// step's batch is split.
//
// The model is 06-gpt/model.hpp, unchanged. One thing must change for a step
// to be the same on any number of ranks and micro-batches: 06 draws every
// dropout mask from one generator, so a sequence's masks depend on which
// sequences were drawn before it. Here each sequence of the batch draws its
// rows of every mask from its own generator, seeded by the step and the
// sequence's place in the global batch, whichever rank and micro-batch it
// lands in.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "06-gpt/model.hpp"
#include "common/random.hpp"
#include "common/text.hpp"

struct DataParallelGPT : GPTLanguageModel {
    std::vector<nn::Rng> dropout_rngs;  // (B): the generator of each sequence of the batch

    // The weights as 06 draws them; dropout_seed, drawn first, seeds every mask.
    DataParallelGPT(const Config& c, nn::Rng& rng) : GPTLanguageModel(c, rng) {
        for (Dropout* d : dropouts()) d->draw = [this](DropMask& mask, float p) { draw_mask(mask, p); };
    }
    DataParallelGPT(const DataParallelGPT&) = delete;  // the dropouts point at this model

    // Seeds the dropout masks of the next forward of B sequences: sequence i
    // is sequence first + i of step `step`'s global batch, and its generator
    // depends on nothing else, so the masks do not depend on how the global
    // batch is split across ranks and micro-batches.
    void seed_dropout(long step, int first, int B) {
        dropout_rngs.clear();
        for (int i = 0; i < B; ++i)
            dropout_rngs.emplace_back(splitmix64(dropout_seed ^ splitmix64((static_cast<std::uint64_t>(step) << 32) |
                                                                          static_cast<std::uint32_t>(first + i))));
    }
    static std::uint64_t splitmix64(std::uint64_t x) {  // a 64-bit hash that mixes every bit
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
    }

    // batch x, y (B*T) -> loss (): 06's, seeding the masks first when this is
    // not a training step's batch (seed_dropout was not called for it)
    double loss(const nn::Batch& batch) {
        if (dropout_rngs.size() != static_cast<std::size_t>(batch.B)) seed_dropout(-1, 0, batch.B);
        return GPTLanguageModel::loss(batch);
    }

    // Draws a (rows, cols) mask: the rows are the batch's sequences' rows,
    // rows / B of them each, and sequence b's come from dropout_rngs[b], row
    // by row: one uniform draw per value, kept when it is not below p.
    void draw_mask(DropMask& mask, float p) {
        if (dropout_rngs.empty()) throw std::logic_error("a dropout mask before seed_dropout");
        const Eigen::Index rows = mask.rows, cols = mask.cols;
        const Eigen::Index per_sequence = rows / static_cast<Eigen::Index>(dropout_rngs.size());
        std::vector<float> u(static_cast<std::size_t>(cols));  // row r's draws: as many calls of uniform()
        for (Eigen::Index r = 0; r < rows; ++r) {
            dropout_rngs[static_cast<std::size_t>(r / per_sequence)].fill_uniform(u);
            for (Eigen::Index j = 0; j < cols; ++j) {  // no branch: the draws are random
                const std::uint64_t kept = !(u[static_cast<std::size_t>(j)] < p);
                const auto k = static_cast<std::size_t>(j * rows + r);
                mask.bits[k >> 6] |= kept << (k & 63);
            }
        }
    }
};
