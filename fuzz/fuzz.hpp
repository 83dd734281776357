// What every fuzz target shares. A target is one reader of the project's
// files, fed whatever bytes libFuzzer makes up:
//
//   extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
//       Writes the bytes to a file and reads it the way the lessons do. An
//       nn::InputError (a clear refusal) is the right answer to a bad file;
//       a crash, a sanitizer report, a hang, another exception or an
//       allocation above -malloc_limit_mb is a finding.
//   void write_seeds(const std::filesystem::path& dir);
//       Writes valid files, the seed corpus the fuzzer starts from.
//
// The same source builds two ways: with clang's -fsanitize=fuzzer (the fuzz
// preset), and with standalone.cpp's main in every build, which writes the
// seeds and checks that the reader accepts each, or replays saved inputs
// (fuzz/regressions/TARGET/) as regression tests.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fileio.hpp"

namespace fuzz {

// A file of this process's own holding `bytes`, rewritten for each input.
inline std::filesystem::path as_file(std::string_view bytes, const char* name) {
    static const std::filesystem::path dir = [] {
        const std::filesystem::path shm = "/dev/shm";
        const std::filesystem::path base = std::filesystem::is_directory(shm) ? shm : std::filesystem::temp_directory_path();
        auto d = base / ("nn2gpt-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    const auto path = dir / name;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
}

// Whether the last input was refused (standalone.cpp checks that no seed is).
inline bool g_refused = false;

// Runs `read`: an InputError is a refusal, the expected outcome for most inputs.
template <typename Read>
int refuse_or_read(Read&& read) {
    g_refused = false;
    try {
        read();
    } catch (const nn::InputError&) {
        g_refused = true;
    }
    return 0;
}

}  // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
void write_seeds(const std::filesystem::path& dir);
