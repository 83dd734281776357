#include "common/idx.hpp"

#include <zlib.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/limits.hpp"

namespace nn {

namespace {

// A file read in order, gzip or plain (its first two bytes say which), the
// gzip data inflated by zlib. zlib's gzread is not used: it notices a gzip
// stream cut short (the CRC and length that prove the file whole, missing)
// only sometimes. When a read fills its buffer with the last input that is
// there, the next read finds the input used up and says "end of file", with
// no error, even at gzclose: MNIST's t10k-images with its last 5 bytes cut
// was read as whole. Here the end of the file is an error unless inflate has
// said the stream ended (Z_STREAM_END, after checking its CRC and length).
struct GzFile {
    explicit GzFile(const std::filesystem::path& path) : name(path.string()), file(path) {
        size = file.size();
        refill();
        gzip = in_size >= 2 && in[0] == 0x1f && in[1] == 0x8b;
        if (gzip && inflateInit2(&strm, 15 + 16) != Z_OK) fail("{}: zlib cannot start", name);  // 16: gzip only
    }
    ~GzFile() {
        if (gzip) inflateEnd(&strm);
    }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;

    // Reads up to n bytes; returns how many were read (fewer only at the end
    // of the data). Corrupt or truncated gzip data is an error.
    std::size_t read(void* out, std::size_t n) {
        auto* to = static_cast<unsigned char*>(out);
        std::size_t done = 0;
        while (done < n) {
            if (in_pos == in_size && !refill()) {
                if (gzip && !ended) fail("{}: truncated gzip file (unexpected end of file)", name);
                break;
            }
            const std::size_t want = std::min<std::size_t>(n - done, 1u << 30);
            if (!gzip) {
                const std::size_t k = std::min(want, in_size - in_pos);
                std::memcpy(to + done, in.data() + in_pos, k);
                in_pos += k;
                done += k;
                continue;
            }
            if (ended) {  // more bytes after a gzip member: another member, or not gzip at all
                if (in[in_pos] != 0x1f) fail("{}: bytes after the end of its gzip data", name);
                inflateReset(&strm);
                ended = false;
            }
            strm.next_in = in.data() + in_pos;
            strm.avail_in = static_cast<uInt>(in_size - in_pos);
            strm.next_out = to + done;
            strm.avail_out = static_cast<uInt>(want);
            const int ret = inflate(&strm, Z_NO_FLUSH);
            in_pos = in_size - strm.avail_in;
            done += want - strm.avail_out;
            if (ret == Z_STREAM_END) ended = true;
            else if (ret == Z_DATA_ERROR) fail("{}: corrupt gzip data ({})", name, strm.msg ? strm.msg : "invalid data");
            else if (ret == Z_MEM_ERROR) fail("{}: out of memory inflating it", name);
            else if (ret != Z_OK && ret != Z_BUF_ERROR) fail("{}: zlib error {}", name, ret);
        }
        return done;
    }

    std::string name;
    InputFile file;
    std::uint64_t size = 0;  // on disk, compressed or not
    bool gzip = false;

private:
    // Reads the next piece of the file into `in`; false at its end.
    bool refill() {
        for (;;) {
            const ssize_t got = ::read(file.fd(), in.data(), in.size());
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) fail("{}: cannot read ({})", name, std::strerror(errno));
            in_pos = 0;
            in_size = static_cast<std::size_t>(got);
            return got > 0;
        }
    }

    std::array<unsigned char, 1 << 16> in{};
    std::size_t in_pos = 0, in_size = 0;
    z_stream strm{};
    bool ended = false;  // inflate said Z_STREAM_END: the member's CRC and length checked
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
    if (!file.gzip && count > file.size - header)
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
