// The checkpoint plumbing of the lessons whose settings are one table (06, 07,
// 08): the parts of their formats that do not depend on the lesson, in the
// checksummed container of common/fileio.hpp. Each lesson's checkpoint.hpp
// says what its file holds, in which order, under which magic and version; the
// parts it takes from here are stored as follows (i32/i64/u64/f32/f64
// little-endian, u8 for on/off; "floats" is a u64 count then that many f32):
//   settings     every setting of the lesson's for_each_setting table, in its
//                order: int and choice i32, float f32, on/off u8, seed u64
//   history      u64 count, then per record: i32 step, f32 train, f32 val, f64 seconds
//   parameters   u64 count, then per parameter of the model's parameters():
//                i64 rows, i64 cols, floats values
//   AdamW        i64 t, then per parameter: floats m, floats v
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/layers.hpp"
#include "common/optim.hpp"
#include "common/settings.hpp"
#include "common/tensor.hpp"
#include "common/training.hpp"

namespace nn {

// How each type of setting is stored.
template <typename T>
using StoredAs = std::conditional_t<std::is_same_v<T, bool>, std::uint8_t,
                 std::conditional_t<std::is_enum_v<T> || std::is_same_v<T, int>, std::int32_t, T>>;

// The "settings" part.
template <typename ConfigT, typename TrainT>
void put_settings(BinaryWriter& w, const ConfigT& config, const TrainT& train) {
    for_each_setting(config, train, [&](const char*, const auto& value, const char*, Bound) {
        using T = std::remove_cvref_t<decltype(value)>;
        w.put<StoredAs<T>>(static_cast<StoredAs<T>>(value));
    });
}

// Reads the "settings" part into config and train, then validates them:
// InputError (naming the file `name`) for anything the command line refuses.
template <typename ConfigT, typename TrainT>
void get_settings(BinaryReader& r, ConfigT& config, TrainT& train, const std::string& name) {
    for_each_setting(config, train, [&](const char* flag, auto& value, const char*, Bound bound) {
        using T = std::remove_cvref_t<decltype(value)>;
        const auto stored = r.get<StoredAs<T>>();
        if (!bound.accepts(stored)) fail("{}: holds {} {}, which the command line refuses", name, flag, stored);
        if constexpr (std::is_same_v<T, bool>) {
            if (stored > 1) fail("{}: corrupt setting {}", name, flag);
        } else if constexpr (std::is_enum_v<T>) {
            if (stored < 0 || static_cast<std::size_t>(stored) >= names_of(T{}).size())
                fail("{}: corrupt setting {}", name, flag);
        }
        value = static_cast<T>(stored);
    });
    try {
        config.validate();
        train.validate();
    } catch (const InputError& e) {
        fail("{}: holds settings this program refuses: {}", name, e.what());
    }
}

// The "history" part.
inline void put_history(BinaryWriter& w, const std::vector<EvalRecord>& history) {
    w.put<std::uint64_t>(history.size());
    for (const EvalRecord& e : history) {
        w.put<std::int32_t>(e.step);
        w.put<float>(e.train);
        w.put<float>(e.val);
        w.put<double>(e.seconds);
    }
}
inline std::vector<EvalRecord> get_history(BinaryReader& r, const std::string& name) {
    const auto n_history = r.get<std::uint64_t>();
    if (n_history > r.remaining() / 20) fail("{}: corrupt loss history", name);  // 20 bytes a record
    std::vector<EvalRecord> history;
    for (std::uint64_t i = 0; i < n_history; ++i) {
        EvalRecord e{};
        e.step = r.get<std::int32_t>();
        e.train = r.get<float>();
        e.val = r.get<float>();
        e.seconds = r.get<double>();
        history.push_back(e);
    }
    return history;
}

// The "parameters" part. With `field` = &Parameter::grad, the gradients in
// the same layout.
inline void put_parameters(BinaryWriter& w, const std::vector<Parameter*>& params,
                           Matrix Parameter::*field = &Parameter::value) {
    w.put<std::uint64_t>(params.size());
    for (const Parameter* p : params) {
        const Matrix& m = p->*field;
        w.put<std::int64_t>(m.rows());
        w.put<std::int64_t>(m.cols());
        w.put_span(as_span(m));
    }
}
// Reads the "parameters" part into the values of `params`, which fix how many
// parameters of which shapes the file must hold.
inline void get_parameters(BinaryReader& r, const std::vector<Parameter*>& params, const std::string& name) {
    const auto n_params = r.get<std::uint64_t>();
    if (n_params != params.size()) fail("{}: holds {} parameters, where this model has {}", name, n_params, params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        Matrix& value = params[i]->value;
        const auto rows = r.get<std::int64_t>(), cols = r.get<std::int64_t>();
        if (rows != value.rows() || cols != value.cols())
            fail("{}: parameter {} is ({}, {}), the model's ({}, {})", name, i, rows, cols, value.rows(), value.cols());
        r.get_span(as_span(value));
    }
}

// The "AdamW" part.
inline void put_moments(BinaryWriter& w, AdamW& optimizer) {
    w.put<std::int64_t>(optimizer.steps_taken());
    for (std::size_t i = 0; i < optimizer.first_moments().size(); ++i) {
        w.put_span(as_span(optimizer.first_moments()[i]));
        w.put_span(as_span(optimizer.second_moments()[i]));
    }
}
// Reads the "AdamW" part of a model of n_params parameters, trained for at
// most `step` steps, into `optimizer`, or skips it if optimizer is null.
inline void get_moments(BinaryReader& r, AdamW* optimizer, std::size_t n_params, long step, const std::string& name) {
    const auto adam_t = r.get<std::int64_t>();
    if (adam_t < 0 || adam_t > step) fail("{}: corrupt optimizer step {}", name, adam_t);
    for (std::size_t i = 0; i < n_params; ++i) {
        if (optimizer != nullptr) {
            r.get_span(as_span(optimizer->first_moments()[i]));
            r.get_span(as_span(optimizer->second_moments()[i]));
        } else {
            for (int skip = 0; skip < 2; ++skip) r.skip_span<float>();
        }
    }
    if (optimizer != nullptr) optimizer->set_steps_taken(static_cast<long>(adam_t));
}

// The checkpoint file in DIR: DIR/`prefer`, else DIR/best.ckpt or DIR/last.ckpt
// (or DIR itself, if it is a file).
inline std::filesystem::path checkpoint_file(const std::filesystem::path& dir, const char* prefer) {
    if (std::filesystem::is_regular_file(dir)) return dir;
    if (!std::filesystem::is_directory(dir)) fail("no checkpoint at {}: not a file or directory", dir.string());
    for (const char* name : {prefer, "best.ckpt", "last.ckpt"})
        if (std::filesystem::exists(dir / name)) return dir / name;
    fail("no checkpoint in {} (expected best.ckpt or last.ckpt)", dir.string());
}

}  // namespace nn
