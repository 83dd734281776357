// 08-data-parallel: the checkpoint file format (tooling beside the concept).
//
// A checkpoint is everything needed to continue training exactly where it
// stopped, or to sample: the model's configuration and weights, the training
// settings, the vocabulary, the AdamW moments, the step, the random-number
// generators' states and the loss history. It is one file in the checksummed
// container of common/fileio.hpp (magic "NN2GPTDP", version 2), written to a
// temporary file and renamed, so a crash while saving keeps the old one.
// Only rank 0 writes it. It is 06's format with two differences, so it has a
// magic of its own (06 refuses it rather than misreading it): the settings
// include --grad-accum, and there is no dropout generator to store, since
// every mask is seeded by the step and the sequence (model.hpp). It holds no
// number of ranks: a run may resume on any number.
//
// Payload, in order (i32/i64/u64/f32/f64 little-endian, u8 for on/off; "floats"
// is a u64 count then that many f32; "string" is a u64 length then the bytes):
//   vocab size      i32
//   settings        every setting of train.hpp's for_each_setting, in its order:
//                   int and choice i32, float f32, on/off u8, seed u64
//   vocabulary      string: its characters in order, UTF-8
//   progress        i64 step (training steps done); f32 best val loss
//   rng state       string: the batch generator's (the same on every rank)
//   history         u64 n, then n x (i32 step, f32 train loss, f32 val loss, f64 seconds)
//   parameters      u64 count, then per parameter of GPTLanguageModel::parameters():
//                   i64 rows, i64 cols, floats values
//   AdamW           i64 t, then per parameter: floats m, floats v
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "06-gpt/size.hpp"
#include "08-data-parallel/model.hpp"
#include "08-data-parallel/train.hpp"
#include "common/checkpoint.hpp"
#include "common/fileio.hpp"
#include "common/optim.hpp"

inline constexpr const char* kCheckpointMagic = "NN2GPTDP";
inline constexpr std::uint32_t kCheckpointVersion = 2;  // 2: 06's table of settings, then --grad-accum

// What a checkpoint holds besides the weights and the optimizer's moments.
struct Checkpoint {
    Config config;
    DataParallelTrainConfig train;
    std::string vocabulary;  // UTF-8, in token order
    long step = 0;
    float best_val = INFINITY;
    std::string rng_state;
    std::vector<EvalRecord> history;
};

// Writes the model, the optimizer and the training state to `path`, atomically.
inline void save_checkpoint(const std::filesystem::path& path, const Checkpoint& info, GPTLanguageModel& model,
                            nn::AdamW& optimizer) {
    nn::BinaryWriter w(path, kCheckpointMagic, kCheckpointVersion);  // streams to path.tmp
    w.put<std::int32_t>(info.config.vocab_size);
    nn::put_settings(w, info.config, info.train);
    w.put_string(info.vocabulary);
    w.put<std::int64_t>(info.step);
    w.put<float>(info.best_val);
    w.put_string(info.rng_state);
    nn::put_history(w, info.history);
    nn::put_parameters(w, model.parameters());
    nn::put_moments(w, optimizer);
    w.commit();  // renames it over path
}

// A checkpoint being read: the constructor opens the file, checks the
// container and reads and validates everything up to the weights; restore()
// then reads the weights straight into a model built from info.config.
// InputError if the file is missing, truncated, corrupt, of another version,
// or holds anything the command line itself would refuse.
class CheckpointReader {
public:
    Checkpoint info;

    explicit CheckpointReader(const std::filesystem::path& path)
        : r_(path, kCheckpointMagic, kCheckpointVersion), name_(path.string()) {
        Config& c = info.config;
        c.vocab_size = r_.get<std::int32_t>();
        nn::get_settings(r_, c, info.train, name_);
        if (info.train.batch_size % info.train.grad_accum != 0)  // it was saved by a run that split its batch so
            nn::fail("{}: holds --grad-accum {}, which does not divide its --batch-size {}", name_,
                     info.train.grad_accum, info.train.batch_size);
        info.vocabulary = r_.get_string();
        const std::u32string chars = nn::decode_utf8(info.vocabulary, name_ + "'s vocabulary");
        if (static_cast<int>(chars.size()) != c.vocab_size)
            nn::fail("{}: the vocabulary has {} characters, the model {}", name_, chars.size(), c.vocab_size);
        if (std::set<char32_t>(chars.begin(), chars.end()).size() != chars.size())
            nn::fail("{}: the vocabulary holds a character twice", name_);
        info.step = static_cast<long>(r_.get<std::int64_t>());
        if (info.step < 0 || info.step > info.train.max_iters)
            nn::fail("{}: step {} is outside [0, --max-iters {}]", name_, info.step, info.train.max_iters);
        info.best_val = r_.get<float>();
        if (!(info.best_val >= 0)) nn::fail("{}: corrupt best validation loss {}", name_, info.best_val);  // NaN or below 0
        info.rng_state = r_.get_string();
        info.history = nn::get_history(r_, name_);
        // The weights come next: refuse a file too short for its settings' model
        // before that model is built.
        const double needed = 4.0 * parameter_count(c);
        if (needed > static_cast<double>(r_.remaining()))
            nn::fail("{}: holds {} bytes after its settings, where the weights of a model with those settings "
                     "take {:.0f}", name_, r_.remaining(), needed);
    }

    // Reads the weights into `model` (built from info.config: it fixes how many
    // parameters of which shapes the file must hold), and the AdamW state into
    // `optimizer` if given.
    void restore(GPTLanguageModel& model, nn::AdamW* optimizer) {
        const std::vector<nn::Parameter*> params = model.parameters();
        nn::get_parameters(r_, params, name_);
        nn::get_moments(r_, optimizer, params.size(), info.step, name_);
        r_.expect_end();
    }

private:
    nn::BinaryReader r_;
    std::string name_;
};

using nn::checkpoint_file;
