// The fuzz target and seeds for a GPT checkpoint, shared by 06-gpt's and
// 08-data-parallel's (the same reader and model, each in its own lesson): the
// including file first includes its lesson's checkpoint.hpp and names the
// scratch file kScratchName.
#pragma once
#include <string>

#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file(nn::reseal_container({reinterpret_cast<const char*>(data), size}), kScratchName);
    return fuzz::refuse_or_read([&] {
        CheckpointReader reader(path);
        nn::Rng rng(0);
        GPTLanguageModel model(reader.info.config, rng);
        nn::AdamW optimizer(model.parameters(), {});
        reader.restore(model, &optimizer);
    });
}

void write_seeds(const std::filesystem::path& dir) {
    int k = 0;
    for (bool tie : {true, false}) {
        Checkpoint info;
        info.config = {.vocab_size = 6, .block_size = 4, .n_embd = 4, .n_head = 2, .n_layer = 1, .tie = tie};
        info.vocabulary = "\nabc d";
        info.step = 3;
        info.best_val = 1.5f;
        info.rng_state = nn::Rng(7).state();
        info.history = {{0, 1.8f, 1.9f, 0.5}, {3, 1.4f, 1.5f, 1.0}};
        nn::Rng rng(1);
        GPTLanguageModel model(info.config, rng);
        nn::AdamW optimizer(model.parameters(), {});
        save_checkpoint(dir / (std::string(kScratchName) + "-" + std::to_string(k++)), info, model, optimizer);
    }
}
