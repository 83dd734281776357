#include "common/idx.hpp"

#include <zlib.h>

#include <memory>
#include <string>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/limits.hpp"

namespace nn {

namespace {

// A gzip (or plain) file opened through zlib, closed on every path out. Only
// a regular file is opened (nn::InputFile): a FIFO or a device is refused.
struct GzFile {
    explicit GzFile(const std::filesystem::path& path) : name(path.string()) {
        InputFile file(path);
        size = file.size();
        handle = gzdopen(file.fd(), "rb");
        if (handle == nullptr) fail("{}: cannot open", name);
        file.release();  // zlib closes it now
    }
    ~GzFile() {
        if (handle) gzclose(handle);
    }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;

    // Reads up to n bytes; returns how many were read. Corrupt gzip data is an error.
    std::size_t read(void* out, std::size_t n) {
        std::size_t done = 0;
        while (done < n) {
            const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
            const int got = gzread(handle, static_cast<char*>(out) + done, chunk);
            if (got < 0) fail("{}: corrupt gzip data ({})", name, zlib_message());
            if (got == 0) {
                // zlib reports a gzip stream cut short (its CRC and length,
                // which prove the file whole, missing) only when asked.
                int code = Z_OK;
                gzerror(handle, &code);
                if (code == Z_BUF_ERROR) fail("{}: truncated gzip file ({})", name, zlib_message());
                break;
            }
            done += static_cast<std::size_t>(got);
        }
        return done;
    }

    // zlib's message without the "<fd:N>: " it puts first: the file is `name`.
    std::string zlib_message() const {
        int code = 0;
        const std::string message = gzerror(handle, &code);
        const auto colon = message.find(": ");
        return message.starts_with("<fd:") && colon != std::string::npos ? message.substr(colon + 2) : message;
    }

    std::string name;
    std::uint64_t size = 0;  // on disk, compressed or not
    gzFile handle = nullptr;
};

}  // namespace

// Exercise: idx_dims
std::vector<std::uint32_t> idx_dims(std::span<const unsigned char> sizes) {
    std::vector<std::uint32_t> dims;
    for (std::size_t at = 0; at + 4 <= sizes.size(); at += 4) {
        const unsigned char* b = sizes.data() + at;
        dims.push_back((std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
                       std::uint32_t{b[3]});
    }
    return dims;
}

IdxArray read_idx(const std::filesystem::path& path) {
    GzFile file(path);
    unsigned char magic[4];
    if (file.read(magic, 4) != 4) fail("{}: too short to be an IDX file", file.name);
    if (magic[0] != 0 || magic[1] != 0)
        fail("{}: not an IDX file (magic number {:02x}{:02x}{:02x}{:02x})", file.name, magic[0],
             magic[1], magic[2], magic[3]);
    if (magic[2] != 0x08)
        fail("{}: element type 0x{:02x}, expected 0x08 (unsigned byte)", file.name, magic[2]);
    const int ndims = magic[3];
    if (ndims < 1 || ndims > 4) fail("{}: {} dimensions, expected 1 to 4", file.name, ndims);

    unsigned char sizes[16];
    if (file.read(sizes, 4 * std::size_t(ndims)) != 4 * std::size_t(ndims)) fail("{}: truncated header", file.name);
    IdxArray array;
    array.dims = idx_dims({sizes, 4 * std::size_t(ndims)});
    if (array.dims.size() != std::size_t(ndims))
        fail("{}: {} dimension sizes read from a header of {} dimensions", file.name, array.dims.size(), ndims);
    std::uint64_t count = 1;
    for (int d = 0; d < ndims; ++d) {
        const std::uint32_t size = array.dims[d];
        if (size == 0) fail("{}: dimension {} is zero", file.name, d);
        count = checked_mul(count, size, file.name + "'s dimensions");
        if (count > (std::uint64_t{1} << 32)) fail("{}: implausibly large dimensions", file.name);
    }
    // Nothing is allocated for what the header claims until the file shows it
    // holds it. A plain file's size says so up front; a gzip file's data is
    // read in pieces, so memory grows only with the bytes that really come.
    const std::uint64_t header = 4 + 4 * static_cast<std::uint64_t>(ndims);
    if (gzdirect(file.handle) && count > file.size - header)
        fail("{}: truncated, {} data bytes where the header says {}", file.name, file.size - header, count);
    std::uint64_t got = 0;
    while (got < count) {
        const std::uint64_t want = std::min<std::uint64_t>(count - got, std::uint64_t{1} << 22);
        array.data.resize(got + want);
        const std::size_t n = file.read(array.data.data() + got, want);
        got += n;
        if (n < want) break;
    }
    if (got != count)
        fail("{}: truncated, {} data bytes where the header says {}", file.name, got, count);
    unsigned char extra;
    if (file.read(&extra, 1) != 0)
        fail("{}: longer than its header says ({} data bytes expected)", file.name, count);
    return array;
}

}  // namespace nn
