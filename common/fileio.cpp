#include "common/fileio.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <mutex>

namespace nn {

// ---- Reading -------------------------------------------------------------

InputFile::InputFile(const fs::path& path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open {}: {}", path.string(), std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        const int err = errno;
        ::close(fd_);
        fail("cannot read {}: {}", path.string(), std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd_);
        fail("cannot read {}: {}", path.string(),
             S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file (a FIFO, a device or a socket)");
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
    if (fd_ >= 0) ::close(fd_);
}

int InputFile::release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
}

std::string read_file(const fs::path& path, std::uint64_t max_bytes) {
    InputFile file(path);
    if (file.size() > max_bytes)
        fail("{}: {} bytes, more than the {} this program reads", path.string(), file.size(), max_bytes);
    std::string bytes(file.size(), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(file.fd(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("cannot read {}: {}", path.string(), std::strerror(errno));
        if (n == 0) break;  // the file shrank while it was read
        done += static_cast<std::size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

std::vector<Line> split_lines(const std::string& bytes) {
    std::vector<Line> lines;
    std::size_t start = 0;
    for (int number = 1; start < bytes.size(); ++number) {
        std::size_t end = bytes.find('\n', start);
        if (end == std::string::npos) end = bytes.size();
        std::string text = bytes.substr(start, end - start);
        start = end + 1;
        if (!text.empty() && text.back() == '\r') text.pop_back();
        lines.push_back({number, std::move(text)});
    }
    return lines;
}

// ---- Writing -------------------------------------------------------------

namespace {
// The temporary files open now, for the signal handler. It may only call
// async-signal-safe functions, so the names sit in fixed arrays.
constexpr int kSlots = 8;
std::array<std::array<char, 4096>, kSlots> g_temporary;
volatile std::sig_atomic_t g_in_use[kSlots];
std::mutex g_slots_mutex;

extern "C" void remove_temporaries(int sig) {
    for (int i = 0; i < kSlots; ++i)
        if (g_in_use[i]) ::unlink(g_temporary[static_cast<std::size_t>(i)].data());
    // The handler was reset to the default (SA_RESETHAND): die of the same signal.
    ::raise(sig);
}

void install_signal_handlers() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
            struct sigaction old {};
            if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;  // not ours to take
            struct sigaction action {};
            action.sa_handler = remove_temporaries;
            sigemptyset(&action.sa_mask);
            action.sa_flags = static_cast<int>(SA_RESETHAND);
            ::sigaction(sig, &action, nullptr);
        }
    });
}

int claim_slot(const fs::path& tmp) {
    const std::string& name = tmp.native();
    if (name.size() >= g_temporary[0].size()) return -1;  // too long to remember: no clean-up on a signal
    install_signal_handlers();
    std::lock_guard lock(g_slots_mutex);
    for (int i = 0; i < kSlots; ++i) {
        if (g_in_use[i]) continue;
        auto& slot = g_temporary[static_cast<std::size_t>(i)];
        std::copy(name.begin(), name.end(), slot.begin());
        slot[name.size()] = '\0';
        g_in_use[i] = 1;
        return i;
    }
    return -1;
}

void release_slot(int slot) {
    if (slot < 0) return;
    std::lock_guard lock(g_slots_mutex);
    g_in_use[slot] = 0;
}
}  // namespace

AtomicFile::AtomicFile(const fs::path& path) : path_(path), tmp_(path.string() + ".tmp") {
    if (fs::is_directory(path)) fail("cannot write {}: it is a directory", path.string());
    slot_ = claim_slot(tmp_);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        const int err = errno;
        release_slot(slot_);
        fail("cannot write {}: {}", path_.string(), std::strerror(err));
    }
}

AtomicFile::~AtomicFile() {
    if (fd_ < 0) return;  // committed
    ::close(fd_);
    ::unlink(tmp_.c_str());
    release_slot(slot_);
}

void AtomicFile::write(std::string_view bytes) {
    write_at(end_, bytes);
    end_ += bytes.size();
}

void AtomicFile::write_at(std::uint64_t offset, std::string_view bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("cannot write {}: {}", path_.string(), std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
}

void AtomicFile::commit() {
    const int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp_.c_str());
        release_slot(slot_);
        fail("cannot write {}: {}", path_.string(), std::strerror(err));
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp_.c_str());
        release_slot(slot_);
        fail("cannot write {}: cannot rename its temporary file {} to it: {}", path_.string(), tmp_.string(),
             std::strerror(err));
    }
    release_slot(slot_);
}

void write_file_atomically(const fs::path& path, std::string_view bytes) {
    AtomicFile file(path);
    file.write(bytes);
    file.commit();
}

void check_writable(const fs::path& path) {
    AtomicFile probe(path);  // never committed: its destructor removes the temporary file
}

void make_directory(const fs::path& dir, std::string_view flag) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (fs::exists(dir) && !fs::is_directory(dir)) fail("{} {}: cannot make it a directory (it is a file)", flag, dir.string());
    if (ec || !fs::is_directory(dir)) fail("{} {}: cannot make it a directory: {}", flag, dir.string(), ec.message());
}

// ---- The container ---------------------------------------------------------

namespace {
constexpr std::size_t kHeader = 8 + 4 + 8, kTrailer = 4;
constexpr std::size_t kWriteBuffer = std::size_t{1} << 16;

std::uint32_t crc_update(std::uint32_t crc, const char* data, std::size_t n) {
    uLong c = crc;
    std::size_t done = 0;
    while (done < n) {  // zlib takes 32-bit lengths
        const auto chunk = static_cast<uInt>(std::min<std::size_t>(n - done, 1u << 30));
        c = crc32(c, reinterpret_cast<const Bytef*>(data + done), chunk);
        done += chunk;
    }
    return static_cast<std::uint32_t>(c);
}
std::uint32_t crc32_of(std::string_view bytes) {
    return crc_update(static_cast<std::uint32_t>(crc32(0L, Z_NULL, 0)), bytes.data(), bytes.size());
}

std::string padded_magic(std::string_view magic) {
    std::string m(magic.substr(0, 8));
    m.resize(8, '\0');
    return m;
}
}  // namespace

BinaryWriter::BinaryWriter(const fs::path& path, std::string_view magic, std::uint32_t version)
    : file_(path), payload_crc_(crc32_of({})) {
    header_ = padded_magic(magic);
    header_.append(reinterpret_cast<const char*>(&version), 4);
    header_.append(8, '\0');  // the payload's length, written by commit()
    file_.write(header_);
    buffer_.reserve(kWriteBuffer);
}

void BinaryWriter::append(const char* data, std::size_t n) {
    length_ += n;
    if (buffer_.size() + n > kWriteBuffer) flush();
    if (n >= kWriteBuffer) {  // a tensor: straight from its memory to the file
        payload_crc_ = crc_update(payload_crc_, data, n);
        file_.write(std::string_view(data, n));
        return;
    }
    buffer_.append(data, n);
}

void BinaryWriter::flush() {
    payload_crc_ = crc_update(payload_crc_, buffer_.data(), buffer_.size());
    file_.write(buffer_);
    buffer_.clear();
}

void BinaryWriter::commit() {
    flush();
    std::memcpy(header_.data() + 12, &length_, 8);
    file_.write_at(12, std::string_view(header_).substr(12));
    const auto crc = static_cast<std::uint32_t>(
        crc32_combine(crc32_of(header_), payload_crc_, static_cast<z_off_t>(length_)));
    file_.write(std::string_view(reinterpret_cast<const char*>(&crc), 4));
    file_.commit();
}

BinaryReader::BinaryReader(const fs::path& path, std::string_view magic, std::uint32_t version)
    : path_(path), bytes_(read_file(path)) {
    const std::string name = path.string();
    const std::string expected = padded_magic(magic);
    if (bytes_.compare(0, 8, expected.substr(0, std::min<std::size_t>(8, bytes_.size()))) != 0)
        fail("{}: not a {} file (wrong magic number)", name, magic);
    if (bytes_.size() < kHeader + kTrailer)
        fail("{}: truncated ({} bytes, fewer than the {} of a {} file's header and checksum)", name, bytes_.size(),
             kHeader + kTrailer, magic);
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

std::string reseal_container(std::string bytes) {
    if (bytes.size() < kHeader + kTrailer) return bytes;
    const std::uint64_t length = bytes.size() - kHeader - kTrailer;
    std::memcpy(bytes.data() + 12, &length, 8);
    const std::uint32_t crc = crc32_of(std::string_view(bytes).substr(0, kHeader + length));
    std::memcpy(bytes.data() + kHeader + length, &crc, 4);
    return bytes;
}

}  // namespace nn
