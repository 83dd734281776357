// 06-gpt: the training settings, the learning-rate schedule, and checkpoints.
//
// A checkpoint is everything needed to continue training exactly where it
// stopped, or to sample: the model's configuration and weights, the training
// settings, the vocabulary, the AdamW moments, the step, the random-number
// generators' states and the loss history. It is one file in the checksummed
// container of common/fileio.hpp (magic "NN2GPTCK", version 1), written to a
// temporary file and renamed, so a crash while saving keeps the old one.
//
// Payload, in order (i32/i64/u64/f32/f64 little-endian; "floats" is a u64
// count then that many f32; "string" is a u64 length then the bytes):
//   model config    i32 vocab_size, block_size, n_embd, n_head, n_layer; f32 dropout
//   train config    i32 batch_size, max_iters, warmup_iters, eval_interval, eval_iters;
//                   f32 learning_rate, min_lr, weight_decay, beta1, beta2, grad_clip; u64 seed
//   vocabulary      string: its characters in order, UTF-8
//   progress        i64 step (training steps done); f32 best val loss
//   rng states      string: the batch generator's; string: the dropout generator's
//   history         u64 n, then n x (i32 step, f32 train loss, f32 val loss, f64 seconds)
//   parameters      u64 count, then per parameter: i64 rows, i64 cols, floats values
//   AdamW           i64 t, then per parameter: floats m, floats v
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include "06-gpt/model.hpp"
#include "common/fileio.hpp"
#include "common/optim.hpp"

struct TrainConfig {
    int batch_size = 12;      // B
    int max_iters = 2000;     // training steps
    int warmup_iters = 100;   // steps of linear warm-up of the learning rate
    int eval_interval = 250;  // estimate the losses every this many steps
    int eval_iters = 200;     // batches per split in each estimate
    float learning_rate = 1e-3f, min_lr = 1e-4f;
    float weight_decay = 0.1f, beta1 = 0.9f, beta2 = 0.99f;
    float grad_clip = 1.0f;  // the most the global gradient norm may be (0: no clipping)
    std::uint64_t seed = 1337;
};

// The learning rate for step `step` (0-based): linear warm-up from
// lr / warmup to lr, then a cosine from lr down to min_lr at the last step.
inline float get_lr(const TrainConfig& t, int step) {
    if (step < t.warmup_iters) return t.learning_rate * static_cast<float>(step + 1) / static_cast<float>(t.warmup_iters);
    const int span = std::max(1, t.max_iters - 1 - t.warmup_iters);
    const double ratio = std::min(1.0, static_cast<double>(step - t.warmup_iters) / span);
    const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));  // 1 -> 0
    return static_cast<float>(t.min_lr + coeff * (t.learning_rate - t.min_lr));
}

struct EvalRecord {
    int step;
    float train, val;
    double seconds;
};

struct Checkpoint {
    Config config;
    TrainConfig train;
    std::string vocabulary;  // UTF-8, in token order
    long step = 0;
    float best_val = INFINITY;
    std::string rng_state, dropout_rng_state;
    std::vector<EvalRecord> history;
    std::vector<nn::Matrix> params, m, v;
    long adam_t = 0;
};

inline constexpr const char* kCheckpointMagic = "NN2GPTCK";
inline constexpr std::uint32_t kCheckpointVersion = 1;

// The vocabulary's characters in token order, as UTF-8.
inline std::string vocabulary_text(const nn::Vocabulary& vocab) {
    std::vector<int> all(static_cast<std::size_t>(vocab.size()));
    for (int i = 0; i < vocab.size(); ++i) all[static_cast<std::size_t>(i)] = i;
    return vocab.decode(all);
}

// Writes the model, the optimizer and the training state to `path`, atomically.
inline void save_checkpoint(const std::filesystem::path& path, const Checkpoint& info,
                            GPTLanguageModel& model, nn::AdamW& optimizer) {
    nn::BinaryWriter w;
    const Config& c = info.config;
    for (int x : {c.vocab_size, c.block_size, c.n_embd, c.n_head, c.n_layer}) w.put<std::int32_t>(x);
    w.put<float>(c.dropout);
    const TrainConfig& t = info.train;
    for (int x : {t.batch_size, t.max_iters, t.warmup_iters, t.eval_interval, t.eval_iters}) w.put<std::int32_t>(x);
    for (float x : {t.learning_rate, t.min_lr, t.weight_decay, t.beta1, t.beta2, t.grad_clip}) w.put<float>(x);
    w.put<std::uint64_t>(t.seed);
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
    w.put<std::uint64_t>(params.size());
    auto put_matrix = [&](const nn::Matrix& m) {
        w.put_span(std::span<const float>(m.data(), static_cast<std::size_t>(m.size())));
    };
    for (const nn::Parameter* p : params) {
        w.put<std::int64_t>(p->value.rows());
        w.put<std::int64_t>(p->value.cols());
        put_matrix(p->value);
    }
    w.put<std::int64_t>(optimizer.steps_taken());
    for (std::size_t i = 0; i < params.size(); ++i) {
        put_matrix(optimizer.first_moments()[i]);
        put_matrix(optimizer.second_moments()[i]);
    }
    w.save(path, kCheckpointMagic, kCheckpointVersion);
}

// Reads and checks a checkpoint file: InputError if it is missing, truncated,
// corrupt, of another version, or holds an impossible configuration.
inline Checkpoint read_checkpoint(const std::filesystem::path& path) {
    nn::BinaryReader r(path, kCheckpointMagic, kCheckpointVersion);
    const std::string name = path.string();
    Checkpoint k;
    Config& c = k.config;
    c.vocab_size = r.get<std::int32_t>();
    c.block_size = r.get<std::int32_t>();
    c.n_embd = r.get<std::int32_t>();
    c.n_head = r.get<std::int32_t>();
    c.n_layer = r.get<std::int32_t>();
    c.dropout = r.get<float>();
    if (c.vocab_size < 1 || c.block_size < 1 || c.n_embd < 1 || c.n_head < 1 || c.n_layer < 1 ||
        c.n_embd % c.n_head != 0 || !(c.dropout >= 0 && c.dropout < 1) || c.n_embd > 65536 ||
        c.n_layer > 1024 || c.block_size > (1 << 20) || c.vocab_size > (1 << 21))
        nn::fail("{}: impossible model configuration (V {}, block {}, C {}, heads {}, layers {})", name,
                 c.vocab_size, c.block_size, c.n_embd, c.n_head, c.n_layer);
    TrainConfig& t = k.train;
    for (int* x : {&t.batch_size, &t.max_iters, &t.warmup_iters, &t.eval_interval, &t.eval_iters}) *x = r.get<std::int32_t>();
    for (float* x : {&t.learning_rate, &t.min_lr, &t.weight_decay, &t.beta1, &t.beta2, &t.grad_clip}) *x = r.get<float>();
    t.seed = r.get<std::uint64_t>();
    k.vocabulary = r.get_string();
    k.step = static_cast<long>(r.get<std::int64_t>());
    k.best_val = r.get<float>();
    k.rng_state = r.get_string();
    k.dropout_rng_state = r.get_string();
    const auto n_history = r.get<std::uint64_t>();
    if (n_history > 1'000'000) nn::fail("{}: corrupt loss history", name);
    for (std::uint64_t i = 0; i < n_history; ++i) {
        EvalRecord e;
        e.step = r.get<std::int32_t>();
        e.train = r.get<float>();
        e.val = r.get<float>();
        e.seconds = r.get<double>();
        k.history.push_back(e);
    }
    const auto n_params = r.get<std::uint64_t>();
    const std::uint64_t expected = 2 + 12 * static_cast<std::uint64_t>(c.n_layer) + 2;
    if (n_params != expected)
        nn::fail("{}: holds {} parameters, where a {}-layer model has {}", name, n_params, c.n_layer, expected);
    auto get_matrix = [&](nn::Matrix& m) { r.get_span(std::span<float>(m.data(), static_cast<std::size_t>(m.size()))); };
    for (std::uint64_t i = 0; i < n_params; ++i) {
        const auto rows = r.get<std::int64_t>(), cols = r.get<std::int64_t>();
        if (rows < 1 || cols < 1 || rows * cols > (std::int64_t{1} << 32))
            nn::fail("{}: parameter {} has an impossible shape ({}, {})", name, i, rows, cols);
        k.params.emplace_back(rows, cols);
        get_matrix(k.params.back());
    }
    k.adam_t = static_cast<long>(r.get<std::int64_t>());
    for (const nn::Matrix& p : k.params) {
        k.m.emplace_back(p.rows(), p.cols());
        get_matrix(k.m.back());
        k.v.emplace_back(p.rows(), p.cols());
        get_matrix(k.v.back());
    }
    r.expect_end();
    const std::u32string chars = nn::decode_utf8(k.vocabulary, name + "'s vocabulary");
    if (static_cast<int>(chars.size()) != c.vocab_size)
        nn::fail("{}: the vocabulary has {} characters, the model {}", name, chars.size(), c.vocab_size);
    return k;
}

// Copies a checkpoint's weights into `model` (built from k.config), its
// optimizer state into `optimizer` if given, and its dropout generator state.
inline void restore(const Checkpoint& k, GPTLanguageModel& model, nn::AdamW* optimizer) {
    const std::vector<nn::Parameter*> params = model.parameters();
    if (params.size() != k.params.size()) nn::fail("checkpoint does not fit the model: {} parameters, not {}", k.params.size(), params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (params[i]->value.rows() != k.params[i].rows() || params[i]->value.cols() != k.params[i].cols())
            nn::fail("checkpoint does not fit the model: parameter {} is ({}, {}), the model's ({}, {})", i,
                     k.params[i].rows(), k.params[i].cols(), params[i]->value.rows(), params[i]->value.cols());
        params[i]->value = k.params[i];
    }
    model.dropout_rng.set_state(k.dropout_rng_state);
    if (optimizer != nullptr) {
        optimizer->first_moments() = k.m;
        optimizer->second_moments() = k.v;
        optimizer->set_steps_taken(k.adam_t);
    }
}

// The checkpoint file in DIR to sample from or resume: DIR/best.ckpt or DIR/last.ckpt
// (or DIR itself, if it is a file).
inline std::filesystem::path checkpoint_file(const std::filesystem::path& dir, const char* prefer) {
    if (std::filesystem::is_regular_file(dir)) return dir;
    if (!std::filesystem::is_directory(dir)) nn::fail("no checkpoint at {}: not a file or directory", dir.string());
    for (const char* name : {prefer, "best.ckpt", "last.ckpt"})
        if (std::filesystem::exists(dir / name)) return dir / name;
    nn::fail("no checkpoint in {} (expected best.ckpt or last.ckpt)", dir.string());
}
