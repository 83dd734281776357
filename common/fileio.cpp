#include "common/fileio.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace nn {

std::string read_file(const fs::path& path) {
    if (fs::is_directory(path)) fail("cannot read {}: it is a directory", path.string());
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open {}: {}", path.string(), std::strerror(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) fail("cannot read {}", path.string());
    return std::move(buffer).str();
}

namespace {
// Where a file is written before it is renamed over `path`.
fs::path temporary_for(const fs::path& path) { return path.string() + ".tmp"; }
}  // namespace

void write_file_atomically(const fs::path& path, std::string_view bytes) {
    const fs::path tmp = temporary_for(path);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            fail("cannot write {}: {}", tmp.string(), std::strerror(err));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        fail("cannot rename {} to {}: {}", tmp.string(), path.string(), std::strerror(err));
    }
}

void check_writable(const fs::path& path) {
    if (fs::is_directory(path)) fail("cannot write {}: it is a directory", path.string());
    const fs::path tmp = temporary_for(path);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail("cannot write {}: {}", tmp.string(), std::strerror(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
}

namespace {
constexpr std::size_t kHeader = 8 + 4 + 8, kTrailer = 4;

std::uint32_t crc32_of(std::string_view bytes) {
    uLong crc = crc32(0L, Z_NULL, 0);
    std::size_t done = 0;
    while (done < bytes.size()) {  // zlib takes 32-bit lengths
        const auto chunk = static_cast<uInt>(std::min<std::size_t>(bytes.size() - done, 1u << 30));
        crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), chunk);
        done += chunk;
    }
    return static_cast<std::uint32_t>(crc);
}

std::string padded_magic(std::string_view magic) {
    std::string m(magic.substr(0, 8));
    m.resize(8, '\0');
    return m;
}
}  // namespace

void BinaryWriter::save(const fs::path& path, std::string_view magic,
                        std::uint32_t version) const {
    std::string file = padded_magic(magic);
    file.append(reinterpret_cast<const char*>(&version), 4);
    const std::uint64_t length = bytes_.size();
    file.append(reinterpret_cast<const char*>(&length), 8);
    file += bytes_;
    const std::uint32_t crc = crc32_of(file);
    file.append(reinterpret_cast<const char*>(&crc), 4);
    write_file_atomically(path, file);
}

BinaryReader::BinaryReader(const fs::path& path, std::string_view magic, std::uint32_t version)
    : path_(path), bytes_(read_file(path)) {
    const std::string name = path.string();
    if (bytes_.size() < kHeader + kTrailer || bytes_.compare(0, 8, padded_magic(magic)) != 0)
        fail("{}: not a {} file (wrong magic number)", name, magic);
    std::uint32_t file_version;
    std::memcpy(&file_version, bytes_.data() + 8, 4);
    if (file_version != version)
        fail("{}: format version {}, but this program reads version {}", name, file_version,
             version);
    std::uint64_t length;
    std::memcpy(&length, bytes_.data() + 12, 8);
    if (length > bytes_.size() - kHeader - kTrailer)
        fail("{}: truncated ({} bytes, the header promises {})", name, bytes_.size(),
             kHeader + length + kTrailer);
    if (length < bytes_.size() - kHeader - kTrailer)
        fail("{}: {} unexpected bytes after the data", name,
             bytes_.size() - kHeader - kTrailer - length);
    std::uint32_t stored;
    std::memcpy(&stored, bytes_.data() + kHeader + length, 4);
    if (stored != crc32_of(std::string_view(bytes_).substr(0, kHeader + length)))
        fail("{}: checksum mismatch, the file is corrupt", name);
    pos_ = kHeader;
    end_ = kHeader + length;
}

const char* BinaryReader::take(std::size_t n) {
    if (n > end_ - pos_) fail("{}: ends before all its values were read", path_.string());
    const char* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
}

std::string BinaryReader::get_string() {
    const auto n = get<std::uint64_t>();
    if (n > end_ - pos_) fail("{}: ends before all its values were read", path_.string());
    return std::string(take(n), n);
}

void BinaryReader::expect_end() const {
    if (pos_ != end_) fail("{}: {} unexpected bytes at the end", path_.string(), end_ - pos_);
}

}  // namespace nn
