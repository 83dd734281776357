// 07-encoder-decoder: the checkpoint file format (tooling beside the concept).
//
// A checkpoint is what `translate` needs: the model's configuration and
// weights, the training settings, both vocabularies, the step and the loss
// history. It is one file in the checksummed container of common/fileio.hpp
// (magic "NN2GPTED", version 2), written to a temporary file and renamed, so
// a crash while saving keeps the old one. (06's also holds the optimizer and
// the random-number states, to resume; this lesson trains in a minute and
// does not resume.)
//
// Payload, in order (i32/i64/u64/f32/f64 little-endian; "floats" is a u64
// count then that many f32; "string" is a u64 length then the bytes):
//   vocab sizes     i32 source, i32 target
//   settings        every setting of train.hpp's for_each_setting, in its order:
//                   int and choice i32, float f32, seed u64 (version 2:
//                   --activation is 06's choice, gelu 0 and relu 1; version 1
//                   had relu 0, gelu 1, and is refused)
//   vocabularies    string, string: the source's and the target's words in
//                   token order, each followed by '\n', UTF-8
//   progress        i64 step (training steps done); f32 best val loss
//   history         u64 n, then n x (i32 step, f32 train loss, f32 val loss, f64 seconds)
//   parameters      u64 count, then per parameter of Transformer::parameters():
//                   i64 rows, i64 cols, floats values
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/train.hpp"
#include "common/checkpoint.hpp"
#include "common/fileio.hpp"

inline constexpr const char* kCheckpointMagic = "NN2GPTED";
inline constexpr std::uint32_t kCheckpointVersion = 2;

// What a checkpoint holds besides the weights.
struct Checkpoint {
    Config config;
    TrainConfig train;
    WordVocabulary src_vocab, tgt_vocab;
    long step = 0;
    float best_val = INFINITY;
    std::vector<EvalRecord> history;
};

// A vocabulary's words in token order, one per line.
inline std::string vocabulary_text(const WordVocabulary& vocab) {
    std::string out;
    for (const std::string& w : vocab.words()) out += w + '\n';
    return out;
}

// How many values the parameters() of a model of config `c` hold: the
// checkpoint must hold that many floats before a model is built to read them,
// so a crafted file cannot make this program allocate what it does not have.
inline double parameter_count(const Config& c) {
    const double C = c.d_model, F = c.d_ff, ln = 2 * C;
    const double attention = (C * 3 * C + 3 * C) + (C * C + C);
    const double cross = (C * C + C) + (C * 2 * C + 2 * C) + (C * C + C);
    const double ffwd = (C * F + F) + (F * C + C);
    return (c.src_vocab_size + c.tgt_vocab_size) * C + (c.position == Position::learned ? double(c.max_len) * C : 0) +
           c.n_layer * (attention + ffwd + 2 * ln) + c.n_layer * (attention + cross + ffwd + 3 * ln) +
           (c.norm == Norm::pre ? 2 * ln : 0);
}

// Writes the model and the training state to `path`, atomically.
inline void save_checkpoint(const std::filesystem::path& path, const Checkpoint& info, Transformer& model) {
    nn::BinaryWriter w(path, kCheckpointMagic, kCheckpointVersion);  // streams to path.tmp
    w.put<std::int32_t>(info.config.src_vocab_size);
    w.put<std::int32_t>(info.config.tgt_vocab_size);
    nn::put_settings(w, info.config, info.train);
    w.put_string(vocabulary_text(info.src_vocab));
    w.put_string(vocabulary_text(info.tgt_vocab));
    w.put<std::int64_t>(info.step);
    w.put<float>(info.best_val);
    nn::put_history(w, info.history);
    nn::put_parameters(w, model.parameters());
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
        c.src_vocab_size = r_.get<std::int32_t>();
        c.tgt_vocab_size = r_.get<std::int32_t>();
        nn::get_settings(r_, c, info.train, name_);
        info.src_vocab = read_vocabulary(c.src_vocab_size, "source");
        info.tgt_vocab = read_vocabulary(c.tgt_vocab_size, "target");
        info.step = static_cast<long>(r_.get<std::int64_t>());
        if (info.step < 0 || info.step > info.train.max_iters)
            nn::fail("{}: step {} is outside [0, --max-iters {}]", name_, info.step, info.train.max_iters);
        info.best_val = r_.get<float>();
        if (!(info.best_val >= 0)) nn::fail("{}: corrupt best validation loss {}", name_, info.best_val);  // NaN or below 0
        info.history = nn::get_history(r_, name_);
        // The weights come next: refuse a file too short for its settings' model
        // before that model is built.
        const double needed = 4.0 * parameter_count(c);
        if (needed > static_cast<double>(r_.remaining()))
            nn::fail("{}: holds {} bytes after its settings, where the weights of a model with those settings "
                     "take {:.0f}", name_, r_.remaining(), needed);
    }

    // Reads the weights into `model` (built from info.config: it fixes how many
    // parameters of which shapes the file must hold).
    void restore(Transformer& model) {
        nn::get_parameters(r_, model.parameters(), name_);
        r_.expect_end();
    }

private:
    // One vocabulary: `size` words, each ending in '\n', the specials first, no word twice.
    WordVocabulary read_vocabulary(int size, const char* side) {
        const std::string text = r_.get_string();
        nn::decode_utf8(text, name_ + "'s " + side + " vocabulary");
        std::vector<std::string> words;
        for (std::size_t start = 0; start < text.size();) {
            const std::size_t end = text.find('\n', start);
            if (end == std::string::npos) nn::fail("{}: corrupt {} vocabulary", name_, side);
            words.push_back(text.substr(start, end - start));
            start = end + 1;
        }
        WordVocabulary vocab(words);
        if (static_cast<int>(words.size()) != size || vocab.words() != words)
            nn::fail("{}: the {} vocabulary is corrupt (its words must be {}, unique, specials first, in order)",
                     name_, side, size);
        return vocab;
    }

    nn::BinaryReader r_;
    std::string name_;
};

using nn::checkpoint_file;
