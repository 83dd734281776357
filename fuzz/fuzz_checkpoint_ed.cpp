// Fuzzes 07-encoder-decoder/checkpoint.hpp: CheckpointReader and restore(),
// as `07-encoder-decoder translate` uses them. The container's CRC is fixed
// up first, so the mutations reach the reader's own checks.
#include "07-encoder-decoder/checkpoint.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file(nn::reseal_container({reinterpret_cast<const char*>(data), size}), "ed.ckpt");
    return fuzz::refuse_or_read([&] {
        CheckpointReader reader(path);
        nn::Rng rng(0);
        Transformer model(reader.info.config, rng);
        reader.restore(model);
    });
}

void write_seeds(const std::filesystem::path& dir) {
    int k = 0;
    for (Norm norm : {Norm::post, Norm::pre}) {
        Checkpoint info;
        info.src_vocab = WordVocabulary({"june", "1", "2"});
        info.tgt_vocab = WordVocabulary({"junio", "de", "1", "2"});
        info.config = {.src_vocab_size = info.src_vocab.size(), .tgt_vocab_size = info.tgt_vocab.size(), .max_len = 4,
                       .d_model = 4, .n_head = 2, .n_layer = 1, .d_ff = 8, .norm = norm,
                       .position = norm == Norm::pre ? Position::learned : Position::sinusoidal};
        info.step = 2;
        info.best_val = 2.0f;
        info.history = {{0, 2.5f, 2.6f, 0.1}};
        nn::Rng rng(1);
        Transformer model(info.config, rng);
        save_checkpoint(dir / ("ed-" + std::to_string(k++)), info, model);
    }
}
