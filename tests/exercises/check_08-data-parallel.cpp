// The workbook's checks of 08-data-parallel, without MPI: the ranks are
// simulated in this one process. A global batch split over `world` ranks and
// K micro-batches must give the gradient 06 computes on the whole batch at
// once; each exercise is checked on its own (accumulate_gradients with the
// sum over ranks and the division done here, average_gradients with the
// micro-batches' gradients computed here).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <vector>

#include "08-data-parallel/gradients.hpp"
#include "tests/exercises/check.hpp"
#include "common/optim.hpp"
#include "common/runtime.hpp"
#include "tests/lm_helpers.hpp"

namespace {

using test::random_matrix;

const bool kOneThread = (nn::set_threads(1), true);

Config tiny_config() {
    return Config{.vocab_size = 11, .block_size = 6, .n_embd = 8, .n_head = 2, .n_layer = 2, .dropout = 0.1f};
}

// Every parameter's .grad, end to end (what the all-reduce sends).
std::vector<float> flat_gradients(const std::vector<nn::Parameter*>& params) {
    std::vector<float> flat;
    for (const nn::Parameter* p : params) flat.insert(flat.end(), p->grad.data(), p->grad.data() + p->grad.size());
    return flat;
}

void zero_gradients(const std::vector<nn::Parameter*>& params) {
    for (nn::Parameter* p : params) p->grad.setZero();
}

// The gradient of the mean loss over the whole batch, in one forward and
// backward, as 06 computes it (with each sequence's dropout masks seeded as
// in a step's batch): the flat gradients, and the loss.
std::pair<std::vector<float>, double> whole_batch(const nn::Batch& batch, int step) {
    nn::Rng rng(1);
    DataParallelGPT model(tiny_config(), rng);
    zero_gradients(model.parameters());
    model.seed_dropout(step, 0, batch.B);
    const double loss = model.loss(batch);
    model.backward();
    return {flat_gradients(model.parameters()), loss};
}

// The largest |a - b| over the largest |b|.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return diff / scale;
}

}  // namespace

TEST_CASE("Gradient accumulation: 2 ranks x 2 micro-batches of 2 sequences add up to the batch of 8",
          "[accumulate_gradients]") {
    const int step = 3, world = 2;
    nn::Rng data_rng(2);
    const nn::Batch batch = test::random_batch(8, 6, 11, data_rng);
    DataParallelTrainConfig t;
    t.batch_size = 8;
    t.grad_accum = 2;
    std::vector<float> summed;  // over the ranks: the all-reduce, done here
    double loss_sum = 0;
    for (int rank = 0; rank < world; ++rank) {
        nn::Rng rng(1);
        DataParallelGPT model(tiny_config(), rng);  // the same weights on every rank
        zero_gradients(model.parameters());
        const Split split(t, world, rank);
        loss_sum += accumulate_gradients(model, batch, split, step);
        const std::vector<float> g = flat_gradients(model.parameters());
        if (rank == 0) {
            check::shape("rank 0's token_embedding_table gradient", model.token_embedding_table.weight.grad, 11, 8);
            check::golden("rank 0's token_embedding_table gradient, the sum of its 2 micro-batches'",
                          model.token_embedding_table.weight.grad);
            check::golden("rank 0's first c_attn.weight gradient", model.blocks[0].sa.c_attn.weight.grad);
        }
        if (summed.empty()) summed = g;
        else std::transform(summed.begin(), summed.end(), g.begin(), summed.begin(), std::plus<>());
    }
    const auto [whole, whole_loss] = whole_batch(batch, step);
    // Each rank's loss is the mean of its micro-batches' means: the mean of the
    // ranks' losses is the whole batch's.
    INFO("the ranks' mean loss " << loss_sum / world << ", the whole batch's " << whole_loss);
    REQUIRE(std::abs(loss_sum / world - whole_loss) < 1e-5 * std::abs(whole_loss));
    for (float& g : summed) g /= static_cast<float>(world * t.grad_accum);
    const double diff = relative_difference(summed, whole);
    INFO("the sum over ranks of the accumulated gradients / (world K) differs from the whole batch's gradient by "
         << diff << " (relative to its largest entry)");
    REQUIRE(diff < 1e-4);
}

TEST_CASE("Averaging the ranks' gradients: 3 ranks x 2 micro-batches, then 2 ranks x 2 of a real model",
          "[average_gradients]") {
    // 1. Three parameters, three ranks' random gradients.
    {
        nn::Rng rng(4);
        std::vector<std::unique_ptr<nn::Parameter>> owned;
        std::vector<nn::Parameter*> params;
        for (auto [r, c] : {std::pair{2, 3}, {1, 4}, {3, 1}}) {
            owned.push_back(std::make_unique<nn::Parameter>());
            owned.back()->resize(r, c);
            params.push_back(owned.back().get());
        }
        std::vector<float> summed(2 * 3 + 4 + 3, 0.0f);
        for (int rank = 0; rank < 3; ++rank)
            for (float& s : summed) s += rng.normal();
        for (nn::Parameter* p : params) p->grad.setConstant(99.0f);  // overwritten, not added to
        average_gradients(summed, 3, 2, params);
        check::shape("the first parameter's gradient", params[0]->grad, 2, 3);
        check::shape("the second parameter's gradient", params[1]->grad, 1, 4);
        check::shape("the third parameter's gradient", params[2]->grad, 3, 1);
        check::golden("the first parameter's averaged gradient", params[0]->grad);
        check::golden("the second parameter's averaged gradient", params[1]->grad);
        check::golden("the third parameter's averaged gradient", params[2]->grad);
    }
    // 2. A model's gradients: 2 ranks x 2 micro-batches of 2 sequences, each
    //    micro-batch's gradient computed here, summed per rank and over ranks;
    //    averaged, the gradient of the whole batch of 8.
    const int step = 5, world = 2, K = 2, micro = 2;
    nn::Rng data_rng(6);
    const nn::Batch batch = test::random_batch(8, 6, 11, data_rng);
    nn::Rng rng(1);
    DataParallelGPT model(tiny_config(), rng);
    zero_gradients(model.parameters());
    for (int m = 0; m < world * K; ++m) {  // every rank's micro-batches: .grad adds them all up
        model.seed_dropout(step, m * micro, micro);
        model.loss(rows(batch, m * micro, micro));
        model.backward();
    }
    const std::vector<float> summed = flat_gradients(model.parameters());
    average_gradients(summed, world, K, model.parameters());
    check::golden("the averaged gradient of the first c_attn.weight", model.blocks[0].sa.c_attn.weight.grad);
    const auto [whole, whole_loss] = whole_batch(batch, step);
    const double diff = relative_difference(flat_gradients(model.parameters()), whole);
    INFO("the averaged gradient differs from the whole batch's gradient by " << diff
                                                                             << " (relative to its largest entry)");
    REQUIRE(diff < 1e-4);
}

TEST_CASE("08-data-parallel end to end: 2 micro-batches a step learn Tiny Shakespeare in 150 steps", "[end-to-end]") {
    const nn::TextData data = nn::load_text(std::filesystem::path(test::shakespeare_dir()) / "tinyshakespeare.txt");
    const int T = 32;
    DataParallelTrainConfig t;
    t.batch_size = 16;
    t.grad_accum = 2;
    Config c{.vocab_size = data.vocab.size(), .block_size = T, .n_embd = 32, .n_head = 4, .n_layer = 2, .dropout = 0.1f};
    nn::Rng rng(1337);
    DataParallelGPT model(c, rng);
    nn::AdamW optimizer(model.parameters(), {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
    const Split split(t, 1, 0);
    const int steps = 150;
    for (int step = 0; step < steps; ++step) {
        const nn::Batch batch = nn::get_batch(data, nn::Split::train, t.batch_size, T, rng);
        optimizer.zero_grad();
        accumulate_gradients(model, batch, split, step);
        const std::vector<float> summed = flat_gradients(model.parameters());  // one rank: the sum is its own
        average_gradients(summed, 1, t.grad_accum, model.parameters());
        nn::clip_grad_norm(model.parameters(), 1.0f);
        optimizer.step();
    }
    model.train(false);
    const nn::Losses losses =
        nn::estimate_loss(data, 20, t.batch_size, T, [&](const nn::Batch& b) { return model.loss(b); });
    WARN("val loss after " << steps << " steps: " << losses.val);
    REQUIRE(losses.val < 2.70);  // the reference: 2.62
}
