// 06-gpt: the checkpoint file format (tooling beside the concept).
//
// A checkpoint is everything needed to continue training exactly where it
// stopped, or to sample: the model's configuration and weights, the training
// settings, the vocabulary, the AdamW moments, the step, the random-number
// generators' states and the loss history. It is one file in the checksummed
// container of common/fileio.hpp (magic "NN2GPTCK", version 2), written to a
// temporary file and renamed, so a crash while saving keeps the old one.
//
// Payload, in order (i32/i64/u64/f32/f64 little-endian, u8 for on/off; "floats"
// is a u64 count then that many f32; "string" is a u64 length then the bytes):
//   vocab size      i32
//   settings        every setting of train.hpp's for_each_setting, in its order:
//                   int and choice i32, float f32, on/off u8, seed u64
//   vocabulary      string: its characters in order, UTF-8
//   progress        i64 step (training steps done); f32 best val loss
//   rng states      string: the batch generator's; string: the dropout generator's
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

#include "06-gpt/model.hpp"
#include "06-gpt/train.hpp"
#include "common/fileio.hpp"
#include "common/optim.hpp"

inline constexpr const char* kCheckpointMagic = "NN2GPTCK";
inline constexpr std::uint32_t kCheckpointVersion = 2;

// What a checkpoint holds besides the weights and the optimizer's moments.
struct Checkpoint {
    Config config;
    TrainConfig train;
    std::string vocabulary;  // UTF-8, in token order
    long step = 0;
    float best_val = INFINITY;
    std::string rng_state, dropout_rng_state;
    std::vector<EvalRecord> history;
};

// The vocabulary's characters in token order, as UTF-8.
inline std::string vocabulary_text(const nn::Vocabulary& vocab) {
    std::vector<int> all(static_cast<std::size_t>(vocab.size()));
    for (int i = 0; i < vocab.size(); ++i) all[static_cast<std::size_t>(i)] = i;
    return vocab.decode(all);
}

// How each type of setting is stored.
template <typename T>
using StoredAs = std::conditional_t<std::is_same_v<T, bool>, std::uint8_t,
                 std::conditional_t<std::is_enum_v<T> || std::is_same_v<T, int>, std::int32_t, T>>;

// How many values the parameters() of a model of config `c` hold: the
// checkpoint must hold that many floats before a model is built to read them,
// so a crafted file cannot make this program allocate what it does not have.
inline double parameter_count(const Config& c) {
    const double V = c.vocab_size, T = c.block_size, C = c.n_embd, H = double(c.ffwd_mult) * c.n_embd;
    const double ln = c.layernorm ? 2 * C : 0;  // gain and bias
    const double block = (C * 3 * C + 3 * C) + (c.projection ? C * C + C : 0) + (C * H + H) +
                         (c.projection ? H * C + C : 0) + 2 * ln;
    return V * C + T * C + c.n_layer * block + ln + (c.tie ? 0 : V * C);
}

// The "parameters" part of the format: u64 count, then per parameter i64
// rows, i64 cols, floats values. With `field` = &nn::Parameter::grad, the
// gradients in the same layout.
inline void put_parameters(nn::BinaryWriter& w, const std::vector<nn::Parameter*>& params,
                           nn::Matrix nn::Parameter::*field = &nn::Parameter::value) {
    w.put<std::uint64_t>(params.size());
    for (const nn::Parameter* p : params) {
        const nn::Matrix& m = p->*field;
        w.put<std::int64_t>(m.rows());
        w.put<std::int64_t>(m.cols());
        w.put_span(nn::as_span(m));
    }
}

// Writes the model, the optimizer and the training state to `path`, atomically.
// info.dropout_rng_state is taken from the model.
inline void save_checkpoint(const std::filesystem::path& path, const Checkpoint& info, GPTLanguageModel& model,
                            nn::AdamW& optimizer) {
    nn::BinaryWriter w(path, kCheckpointMagic, kCheckpointVersion);  // streams to path.tmp
    w.put<std::int32_t>(info.config.vocab_size);
    for_each_setting(info.config, info.train, [&](const char*, const auto& value, const char*, Bound) {
        using T = std::remove_cvref_t<decltype(value)>;
        w.put<StoredAs<T>>(static_cast<StoredAs<T>>(value));
    });
    w.put_string(info.vocabulary);
    w.put<std::int64_t>(info.step);
    w.put<float>(info.best_val);
    w.put_string(info.rng_state);
    w.put_string(model.dropout_rng.state());
    w.put<std::uint64_t>(info.history.size());
    for (const EvalRecord& e : info.history) {
        w.put<std::int32_t>(e.step);
        w.put<float>(e.train);
        w.put<float>(e.val);
        w.put<double>(e.seconds);
    }
    const std::vector<nn::Parameter*> params = model.parameters();
    put_parameters(w, params);
    w.put<std::int64_t>(optimizer.steps_taken());
    for (std::size_t i = 0; i < params.size(); ++i) {
        w.put_span(nn::as_span(optimizer.first_moments()[i]));
        w.put_span(nn::as_span(optimizer.second_moments()[i]));
    }
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
        for_each_setting(c, info.train, [&](const char* flag, auto& value, const char*, Bound bound) {
            using T = std::remove_cvref_t<decltype(value)>;
            const auto stored = r_.get<StoredAs<T>>();
            if (!bound.accepts(stored)) nn::fail("{}: holds {} {}, which the command line refuses", name_, flag, stored);
            if constexpr (std::is_same_v<T, bool>) {
                if (stored > 1) nn::fail("{}: corrupt setting {}", name_, flag);
            } else if constexpr (std::is_enum_v<T>) {
                if (stored < 0 || static_cast<std::size_t>(stored) >= names_of(T{}).size())
                    nn::fail("{}: corrupt setting {}", name_, flag);
            }
            value = static_cast<T>(stored);
        });
        try {
            c.validate();
            info.train.validate();
        } catch (const nn::InputError& e) {
            nn::fail("{}: holds settings this program refuses: {}", name_, e.what());
        }
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
        info.dropout_rng_state = r_.get_string();
        const auto n_history = r_.get<std::uint64_t>();
        if (n_history > r_.remaining() / 20) nn::fail("{}: corrupt loss history", name_);  // 20 bytes a record
        for (std::uint64_t i = 0; i < n_history; ++i) {
            EvalRecord e{};
            e.step = r_.get<std::int32_t>();
            e.train = r_.get<float>();
            e.val = r_.get<float>();
            e.seconds = r_.get<double>();
            info.history.push_back(e);
        }
        // The weights come next: refuse a file too short for its settings' model
        // before that model is built.
        const double needed = 4.0 * parameter_count(c);
        if (needed > static_cast<double>(r_.remaining()))
            nn::fail("{}: holds {} bytes after its settings, where the weights of a model with those settings "
                     "take {:.0f}", name_, r_.remaining(), needed);
    }

    // Reads the weights into `model` (built from info.config: it fixes how many
    // parameters of which shapes the file must hold), and, if `optimizer` is
    // given (to resume training), the AdamW state and the dropout generator's.
    void restore(GPTLanguageModel& model, nn::AdamW* optimizer) {
        const std::vector<nn::Parameter*> params = model.parameters();
        const auto n_params = r_.get<std::uint64_t>();
        if (n_params != params.size())
            nn::fail("{}: holds {} parameters, where this model has {}", name_, n_params, params.size());
        for (std::size_t i = 0; i < params.size(); ++i) {
            nn::Matrix& value = params[i]->value;
            const auto rows = r_.get<std::int64_t>(), cols = r_.get<std::int64_t>();
            if (rows != value.rows() || cols != value.cols())
                nn::fail("{}: parameter {} is ({}, {}), the model's ({}, {})", name_, i, rows, cols, value.rows(),
                         value.cols());
            r_.get_span(nn::as_span(value));
        }
        if (optimizer != nullptr) model.dropout_rng.set_state(info.dropout_rng_state, name_);  // sample and eval draw no masks
        const auto adam_t = r_.get<std::int64_t>();
        if (adam_t < 0 || adam_t > info.step) nn::fail("{}: corrupt optimizer step {}", name_, adam_t);
        for (std::size_t i = 0; i < params.size(); ++i) {
            if (optimizer != nullptr) {
                r_.get_span(nn::as_span(optimizer->first_moments()[i]));
                r_.get_span(nn::as_span(optimizer->second_moments()[i]));
            } else {
                for (int skip = 0; skip < 2; ++skip) r_.skip_span<float>();
            }
        }
        if (optimizer != nullptr) optimizer->set_steps_taken(static_cast<long>(adam_t));
        r_.expect_end();
    }

private:
    nn::BinaryReader r_;
    std::string name_;
};

// The checkpoint file in DIR to sample from or resume: DIR/best.ckpt or DIR/last.ckpt
// (or DIR itself, if it is a file).
inline std::filesystem::path checkpoint_file(const std::filesystem::path& dir, const char* prefer) {
    if (std::filesystem::is_regular_file(dir)) return dir;
    if (!std::filesystem::is_directory(dir)) nn::fail("no checkpoint at {}: not a file or directory", dir.string());
    for (const char* name : {prefer, "best.ckpt", "last.ckpt"})
        if (std::filesystem::exists(dir / name)) return dir / name;
    nn::fail("no checkpoint in {} (expected best.ckpt or last.ckpt)", dir.string());
}
