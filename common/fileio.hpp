// Files written whole or not at all, and a small checksummed binary container
// for saved networks and checkpoints.
//
// Container layout (all integers little-endian):
//   offset 0   8 bytes   magic, names what the file holds (e.g. "NN2GPMLP")
//   offset 8   u32       format version
//   offset 12  u64       payload length in bytes, N
//   offset 20  N bytes   payload: what the writer put, in order
//   offset 20+N u32      CRC-32 (zlib) of bytes [0, 20+N)
// A reader checks all four before handing out a single value, so a truncated,
// corrupt, foreign or newer file is refused with a message that says which.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/error.hpp"

namespace nn {

namespace fs = std::filesystem;

// Reads a whole file; InputError if it is missing or unreadable.
std::string read_file(const fs::path& path);

// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
// renames it over `path`: a crash leaves either the old file or the new one.
void write_file_atomically(const fs::path& path, std::string_view bytes);
// Fails now, before a long run, if `path` could not be written at its end
// (no such directory, no permission). Leaves nothing behind.
void check_writable(const fs::path& path);

class BinaryWriter {
public:
    template <typename T>
        requires std::is_trivially_copyable_v<T>
    void put(const T& value) {
        bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
    }
    template <typename T>  // T may be const
    void put_span(std::span<T> values) {
        put<std::uint64_t>(values.size());
        bytes_.append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
    }
    void put_string(std::string_view s) { put_span(std::span<const char>(s.data(), s.size())); }

    // Wraps the payload in the container and writes it atomically to `path`.
    void save(const fs::path& path, std::string_view magic, std::uint32_t version) const;

private:
    std::string bytes_;
};

class BinaryReader {
public:
    // Opens `path` and checks magic, version, length and checksum.
    BinaryReader(const fs::path& path, std::string_view magic, std::uint32_t version);

    template <typename T>
        requires std::is_trivially_copyable_v<T>
    T get() {
        T value;
        std::memcpy(&value, take(sizeof(T)), sizeof(T));
        return value;
    }
    // Reads a span written by put_span into `out`, which must have its size.
    template <typename T>
    void get_span(std::span<T> out) {
        const auto n = get<std::uint64_t>();
        if (n != out.size())
            fail("{}: holds {} values where {} were expected", path_.string(), n, out.size());
        std::memcpy(out.data(), take(out.size_bytes()), out.size_bytes());
    }
    // Passes over a span written by put_span, without reading it anywhere.
    template <typename T>
    void skip_span() {
        const auto n = get<std::uint64_t>();
        if (n > remaining() / sizeof(T)) fail("{}: ends before all its values were read", path_.string());
        take(n * sizeof(T));
    }
    std::string get_string();
    // Refuses the file if anything is left unread.
    void expect_end() const;
    // Bytes not read yet: to check a size read from the file before allocating it.
    std::size_t remaining() const { return end_ - pos_; }
    const fs::path& path() const { return path_; }

private:
    const char* take(std::size_t n);
    fs::path path_;
    std::string bytes_;
    std::size_t pos_ = 0, end_ = 0;
};

}  // namespace nn
