// The IDX reader: good files in both encodings, and each kind of bad file
// refused with a message that names the file and the fault.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/idx.hpp"
#include "common/mnist.hpp"
#include "helpers.hpp"

namespace {

using Catch::Matchers::Contains;

std::string idx_bytes(std::vector<std::uint32_t> dims, std::size_t data_bytes,
                      unsigned char type = 0x08) {
    std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
    for (std::uint32_t d : dims)
        for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((d >> shift) & 0xff);
    for (std::size_t i = 0; i < data_bytes; ++i) s += static_cast<char>(i % 251);
    return s;
}

void write(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

void write_gz(const std::filesystem::path& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
}

}  // namespace

TEST_CASE("read_idx reads plain and gzip files alike", "[idx]") {
    test::ScratchDir dir;
    const std::string bytes = idx_bytes({3, 2, 4}, 24);
    write(dir / "a-idx3-ubyte", bytes);
    write_gz(dir / "a-idx3-ubyte.gz", bytes);
    for (const char* name : {"a-idx3-ubyte", "a-idx3-ubyte.gz"}) {
        const nn::IdxArray a = nn::read_idx(dir / name);
        REQUIRE(a.dims == std::vector<std::uint32_t>{3, 2, 4});
        REQUIRE(a.data.size() == 24);
        CHECK(a.data[0] == 0);
        CHECK(a.data[23] == 23);
    }
}

TEST_CASE("read_idx refuses bad files with a message naming the file and fault", "[idx]") {
    test::ScratchDir dir;
    const auto path = dir / "bad-idx1-ubyte";

    SECTION("missing file") {
        REQUIRE_THROWS_WITH(nn::read_idx(dir / "nope"), Contains("nope") && Contains("No such file"));
    }
    SECTION("wrong magic number") {
        std::string bytes = idx_bytes({4}, 4);
        bytes[0] = 'P';
        write(path, bytes);
        REQUIRE_THROWS_WITH(nn::read_idx(path), Contains("bad-idx1-ubyte") && Contains("not an IDX file"));
    }
    SECTION("wrong element type") {
        write(path, idx_bytes({4}, 4, 0x0D));
        REQUIRE_THROWS_WITH(nn::read_idx(path), Contains("element type 0x0d"));
    }
    SECTION("truncated data") {
        write(path, idx_bytes({10, 28, 28}, 10 * 28 * 28 - 100));
        REQUIRE_THROWS_WITH(nn::read_idx(path), Contains("truncated") && Contains("7740") && Contains("7840"));
    }
    SECTION("truncated header") {
        write(path, idx_bytes({10, 28, 28}, 0).substr(0, 9));
        REQUIRE_THROWS_WITH(nn::read_idx(path), Contains("truncated header"));
    }
    SECTION("count mismatch: more data than the header says") {
        write(path, idx_bytes({5}, 6));
        REQUIRE_THROWS_WITH(nn::read_idx(path), Contains("longer than its header says"));
    }
    SECTION("gzip garbage") {
        std::string bytes = "\x1f\x8b\x08\x00";  // a gzip header, then noise
        bytes += std::string(200, '\x5a');
        write(dir / "garbage.gz", bytes);
        REQUIRE_THROWS_WITH(nn::read_idx(dir / "garbage.gz"), Contains("garbage.gz") && Contains("corrupt gzip"));
    }
    SECTION("gzip data whose check fails names the file, not zlib's descriptor") {
        std::string bytes = idx_bytes({4}, 4);
        write_gz(dir / "flipped.gz", bytes);
        std::string gz = nn::read_file(dir / "flipped.gz");
        gz[gz.size() - 8] ^= 0x01;  // the trailer's CRC-32
        write(dir / "flipped.gz", gz);
        REQUIRE_THROWS_WITH(nn::read_idx(dir / "flipped.gz"),
                            Contains("flipped.gz: corrupt gzip data (incorrect data check)") && !Contains("<fd:"));
    }
    SECTION("gzip file without its trailer (the CRC and length that prove it whole)") {
        // zlib's gzread, which the reader once used, noticed the 10 images'
        // cut but not the 100's: its last read there used up the input exactly.
        for (std::uint32_t images : {10u, 100u}) {
            write_gz(dir / "cut.gz", idx_bytes({images, 28, 28}, images * 28 * 28));
            const std::string gz = nn::read_file(dir / "cut.gz");
            for (std::size_t cut : {1, 5, 8}) {
                INFO(images << " images, the last " << cut << " bytes cut");
                write(dir / "cut.gz", gz.substr(0, gz.size() - cut));
                REQUIRE_THROWS_WITH(nn::read_idx(dir / "cut.gz"),
                                    Contains("cut.gz: truncated gzip file (unexpected end of file)"));
            }
        }
    }
    SECTION("gzip members one after another are one file; other bytes after the gzip data are refused") {
        const std::string bytes = idx_bytes({100}, 100);
        write_gz(dir / "a.gz", bytes.substr(0, 40));
        write_gz(dir / "b.gz", bytes.substr(40));
        write(dir / "two.gz", nn::read_file(dir / "a.gz") + nn::read_file(dir / "b.gz"));
        const nn::IdxArray a = nn::read_idx(dir / "two.gz");
        REQUIRE(a.data.size() == 100);
        CHECK(a.data[99] == 99);
        write(dir / "tail.gz", nn::read_file(dir / "two.gz") + "junk");
        REQUIRE_THROWS_WITH(nn::read_idx(dir / "tail.gz"), Contains("tail.gz: bytes after the end of its gzip data"));
    }
    SECTION("empty file") {
        write(path, "");
        REQUIRE_THROWS_WITH(nn::read_idx(path), Contains("too short"));
    }
}

TEST_CASE("load_mnist wants the 10,000 test images the lessons index into", "[idx]") {
    // The real training files, and a t10k pair that is valid IDX but holds 5 images.
    test::ScratchDir dir;
    std::filesystem::create_directory(dir / "mnist");
    for (const auto& entry : std::filesystem::directory_iterator(test::mnist_dir() + "/mnist"))
        if (entry.path().filename().string().starts_with("train-"))
            std::filesystem::create_symlink(entry.path(), dir / "mnist" / entry.path().filename());
    write(dir / "mnist" / "t10k-images-idx3-ubyte", idx_bytes({5, 28, 28}, 5 * 784));
    write(dir / "mnist" / "t10k-labels-idx1-ubyte", idx_bytes({5}, 5));
    REQUIRE_THROWS_WITH(nn::load_mnist(dir.path), Contains("expected the 10,000 MNIST test images, found 5"));
}
