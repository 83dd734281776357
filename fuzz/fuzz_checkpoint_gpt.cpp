// Fuzzes 06-gpt/checkpoint.hpp: CheckpointReader and restore(), as `06-gpt
// sample` and `--resume` use them: the model is built from the settings the
// file holds, then its weights and AdamW's moments are read into it. The
// container's CRC is fixed up first, so the mutations reach these checks.
#include "06-gpt/checkpoint.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file(fuzz::with_valid_container({reinterpret_cast<const char*>(data), size}), "gpt.ckpt");
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
        save_checkpoint(dir / ("gpt-" + std::to_string(k++)), info, model, optimizer);
    }
}
