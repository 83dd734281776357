// The end-to-end check of 03, 04 and 05: train the learner's model on Tiny
// Shakespeare for a few thousand steps, as the lesson's main() does, and
// estimate its losses. The model is the lesson's own BigramLanguageModel, so
// every exercise of the lesson takes part.
#pragma once
#include <filesystem>

#include "common/optim.hpp"
#include "common/text.hpp"
#include "tests/helpers.hpp"

namespace check {

// Steps of AdamW on batches of (B, T) characters with seed 1337, then the
// losses estimated over 100 batches per split. `make_model(vocab_size, rng)`
// builds the model, so that the batches and the weights share one generator,
// as in the lesson.
template <typename MakeModel>
nn::Losses train_language_model(MakeModel&& make_model, int steps, float lr, int B = 32, int T = 8) {
    const nn::TextData data = nn::load_text(std::filesystem::path(test::shakespeare_dir()) / "tinyshakespeare.txt");
    nn::Rng rng(1337);
    auto model = make_model(data.vocab.size(), rng);
    nn::AdamW optimizer(model.parameters(), {.lr = lr, .weight_decay = 0.01f});
    for (int iter = 0; iter < steps; ++iter) {
        const nn::Batch batch = nn::get_batch(data, nn::Split::train, B, T, rng);
        model.loss(batch);
        optimizer.zero_grad();
        model.backward();
        optimizer.step();
    }
    return nn::estimate_loss(data, 100, B, T, [&](const nn::Batch& batch) { return model.loss(batch); });
}

}  // namespace check
