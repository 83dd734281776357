// Files read only when they are regular files, files written whole or not at
// all, and a small checksummed binary container for saved networks and
// checkpoints.
//
// Container layout (all integers little-endian):
//   offset 0   8 bytes   magic, names what the file holds (e.g. "NN2GPMLP")
//   offset 8   u32       format version
//   offset 12  u64       payload length in bytes, N
//   offset 20  N bytes   payload: what the writer put, in order
//   offset 20+N u32      CRC-32 (zlib) of bytes [0, 20+N)
// A reader checks all four before handing out a single value, so a truncated,
// corrupt, foreign or newer file is refused with a message that says which.
// The CRC guards against accidents, not against a crafted file: every reader
// still checks each count against the bytes that remain before allocating.
#pragma once
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.hpp"

namespace nn {

namespace fs = std::filesystem;

// A file opened for reading: InputError unless it is a regular file. A FIFO,
// a device or a directory is refused before a byte is read, so nothing blocks.
class InputFile {
public:
    explicit InputFile(const fs::path& path);
    ~InputFile();
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;
    int fd() const { return fd_; }
    std::uint64_t size() const { return size_; }  // in bytes, when opened
    int release();                                // the caller closes it now
private:
    int fd_ = -1;
    std::uint64_t size_ = 0;
};

// Reads a whole regular file; InputError if it is missing, unreadable, not a
// regular file, or larger than `max_bytes`.
std::string read_file(const fs::path& path, std::uint64_t max_bytes = std::uint64_t{1} << 32);

// One line of a text: its number, from 1, and its text without the "\n" or
// "\r\n" that ends it.
struct Line {
    int number;
    std::string text;
};
// The lines of `bytes`, the last one whether or not it ends in "\n" (so ""
// has none, "a\n" and "a" one). Blank lines are kept and numbered; one "\r"
// before each "\n" (or at the very end) is dropped, any other stays.
std::vector<Line> split_lines(const std::string& bytes);

// A file written to PATH.tmp and renamed over PATH by commit(): a crash
// leaves either the old file or the new one. If the object is destroyed
// before commit() (an exception), or the program gets SIGINT or SIGTERM while
// it is open, the temporary file is removed.
class AtomicFile {
public:
    explicit AtomicFile(const fs::path& path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    void write(std::string_view bytes);                            // after what was written
    void write_at(std::uint64_t offset, std::string_view bytes);  // over bytes written before
    void commit();  // flushes to disk and renames over the path
private:
    fs::path path_, tmp_;
    int fd_ = -1;
    int slot_ = -1;           // where the signal handler finds tmp_
    std::uint64_t end_ = 0;   // bytes written so far
};

// Writes `bytes` to `path` atomically (through an AtomicFile).
void write_file_atomically(const fs::path& path, std::string_view bytes);
// Fails now, before a long run, if `path` could not be written at its end
// (no such directory, no permission). Leaves nothing behind.
void check_writable(const fs::path& path);
// Makes `dir`, with its parents, for a flag that names a directory of several
// files (--out, --write-lines); fails with one line naming `flag` if it cannot
// (a file already there, no permission).
void make_directory(const fs::path& dir, std::string_view flag);

// Writes the container straight to the file as values are put: the payload
// is never held whole in memory, and its CRC is computed on the way. Nothing
// appears at `path` until commit().
class BinaryWriter {
public:
    BinaryWriter(const fs::path& path, std::string_view magic, std::uint32_t version);

    template <typename T>
        requires std::is_trivially_copyable_v<T>
    void put(const T& value) {
        append(reinterpret_cast<const char*>(&value), sizeof(T));
    }
    template <typename T>  // T may be const
    void put_span(std::span<T> values) {
        put<std::uint64_t>(values.size());
        append(reinterpret_cast<const char*>(values.data()), values.size_bytes());
    }
    void put_string(std::string_view s) { put_span(std::span<const char>(s.data(), s.size())); }

    // Writes the length and the CRC, then renames the file into place.
    void commit();

private:
    void append(const char* data, std::size_t n);
    void flush();
    AtomicFile file_;
    std::string buffer_, header_;
    std::uint64_t length_ = 0;
    std::uint32_t payload_crc_;
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

// A container's bytes with their length field and CRC-32 rewritten to match
// what they hold, so that a payload changed on purpose (by a fuzzer, by a
// test) gets past the checksum to the reader's own checks. Bytes too short to
// be a container are returned as they are.
std::string reseal_container(std::string bytes);

}  // namespace nn
