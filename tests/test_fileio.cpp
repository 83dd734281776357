// The checksummed container behind saved networks and checkpoints, the
// atomic file writer, the line splitter of text files, and the files a
// training run writes (metrics, summary, its outputs checked first).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "common/fileio.hpp"
#include "common/limits.hpp"
#include "common/metrics.hpp"
#include "common/training.hpp"
#include "helpers.hpp"

namespace {
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using Catch::Matchers::StartsWith;

void save_sample(const std::filesystem::path& path) {
    nn::BinaryWriter w(path, "NN2GTEST", 3);
    w.put<std::uint32_t>(42);
    const std::vector<float> values{1.5f, -2.0f, 3.25f};
    w.put_span(std::span<const float>(values));
    w.put_string("hello");
    w.commit();
}
}  // namespace

TEST_CASE("the binary container round-trips", "[fileio]") {
    test::ScratchDir dir;
    save_sample(dir / "f.bin");
    nn::BinaryReader r(dir / "f.bin", "NN2GTEST", 3);
    CHECK(r.get<std::uint32_t>() == 42);
    std::vector<float> values(3);
    r.get_span(std::span<float>(values));
    CHECK(values == std::vector<float>{1.5f, -2.0f, 3.25f});
    CHECK(r.get_string() == "hello");
    r.expect_end();
    CHECK_FALSE(std::filesystem::exists(dir / "f.bin.tmp"));
}

TEST_CASE("the binary container streams large values to the file, CRC and all", "[fileio]") {
    test::ScratchDir dir;
    // Larger than the writer's buffer, so they go straight from memory to the file.
    std::vector<float> big(300000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.5f;
    {
        nn::BinaryWriter w(dir / "big.bin", "NN2GTEST", 3);
        w.put<std::uint8_t>(7);
        w.put_span(std::span<const float>(big));
        w.put_string("tail");
        CHECK_FALSE(std::filesystem::exists(dir / "big.bin"));  // nothing at the path before commit
        CHECK(std::filesystem::exists(dir / "big.bin.tmp"));
        w.commit();
    }
    nn::BinaryReader r(dir / "big.bin", "NN2GTEST", 3);  // checks length and CRC
    CHECK(r.get<std::uint8_t>() == 7);
    std::vector<float> back(big.size());
    r.get_span(std::span<float>(back));
    CHECK(back == big);
    CHECK(r.get_string() == "tail");
    r.expect_end();
}

TEST_CASE("a writer that never commits leaves no file behind", "[fileio]") {
    test::ScratchDir dir;
    nn::write_file_atomically(dir / "keep.bin", "old");
    {
        nn::BinaryWriter w(dir / "keep.bin", "NN2GTEST", 3);
        w.put<std::uint32_t>(1);
    }  // destroyed without commit(), as when an exception passes
    CHECK(nn::read_file(dir / "keep.bin") == "old");
    CHECK_FALSE(std::filesystem::exists(dir / "keep.bin.tmp"));
}

TEST_CASE("only regular files are read: a FIFO, a device or a directory is refused at once", "[fileio]") {
    test::ScratchDir dir;
    const auto fifo = dir / "pipe";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Without the check, this would block forever waiting for a writer.
    REQUIRE_THROWS_WITH(nn::read_file(fifo), Contains("not a regular file"));
    REQUIRE_THROWS_WITH(nn::BinaryReader(fifo, "NN2GTEST", 3), Contains("not a regular file"));
    REQUIRE_THROWS_WITH(nn::read_file("/dev/zero"), Contains("not a regular file"));
    REQUIRE_THROWS_WITH(nn::read_file(dir.path), Contains("it is a directory"));
    nn::write_file_atomically(dir / "five", "12345");
    // A file that cannot be written is named as the user gave it, not as its temporary file.
    REQUIRE_THROWS_WITH(nn::write_file_atomically(dir / "no-such-dir" / "out.png", "x"),
                        Contains("cannot write " + (dir / "no-such-dir" / "out.png").string() + ": No such file") &&
                            !Contains(".tmp"));
    REQUIRE_THROWS_WITH(nn::read_file(dir / "five", 4), Contains("5 bytes, more than the 4"));
    CHECK(nn::read_file(dir / "five", 5) == "12345");
}

TEST_CASE("make_directory makes a flag's directory with its parents, and refuses a file in its place", "[fileio]") {
    test::ScratchDir dir;
    nn::make_directory(dir / "a" / "b", "--out");
    CHECK(std::filesystem::is_directory(dir / "a" / "b"));
    nn::make_directory(dir / "a" / "b", "--out");  // already there: nothing to do
    nn::write_file_atomically(dir / "f", "x");
    REQUIRE_THROWS_WITH(nn::make_directory(dir / "f", "--out"),
                        Equals("--out " + (dir / "f").string() + ": cannot make it a directory (it is a file)"));
    REQUIRE_THROWS_WITH(nn::make_directory(dir / "f" / "g", "--write-lines"),
                        StartsWith("--write-lines " + (dir / "f" / "g").string() + ": cannot make it a directory: "));
}

TEST_CASE("the binary container refuses bad files", "[fileio]") {
    test::ScratchDir dir;
    const auto path = dir / "f.bin";
    save_sample(path);
    std::string bytes = nn::read_file(path);
    auto rewrite = [&](const std::string& b) { std::ofstream(path, std::ios::binary | std::ios::trunc) << b; };

    SECTION("wrong magic") {
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "OTHERMAG", 3), Contains("wrong magic"));
    }
    SECTION("wrong version") {
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 4), Contains("format version 3"));
    }
    SECTION("truncated") {
        rewrite(bytes.substr(0, bytes.size() - 7));
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 3), Contains("truncated"));
    }
    SECTION("cut inside its header: the magic number is right, the file is truncated") {
        for (std::size_t size : {1, 8, 12, 20, 23}) {
            rewrite(bytes.substr(0, size));
            REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 3),
                                Contains("f.bin: truncated (" + std::to_string(size) + " bytes, fewer than the 24"));
        }
        rewrite("");
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 3), Contains("f.bin: truncated (0 bytes"));
        rewrite("NN2");
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 3), Contains("truncated (3 bytes"));
        rewrite("XY");
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 3), Contains("wrong magic"));
    }
    SECTION("one flipped bit") {
        bytes[25] ^= 0x10;
        rewrite(bytes);
        REQUIRE_THROWS_WITH(nn::BinaryReader(path, "NN2GTEST", 3), Contains("checksum mismatch"));
    }
    SECTION("reading past the end") {
        nn::BinaryReader r(path, "NN2GTEST", 3);
        r.get<std::uint32_t>();
        std::vector<float> wrong_size(5);
        REQUIRE_THROWS_WITH(r.get_span(std::span<float>(wrong_size)), Contains("holds 3 values where 5"));
    }
    SECTION("missing file") {
        REQUIRE_THROWS_WITH(nn::BinaryReader(dir / "none.bin", "NN2GTEST", 3), Contains("cannot open"));
    }
}

TEST_CASE("write_file_atomically replaces a file whole", "[fileio]") {
    test::ScratchDir dir;
    nn::write_file_atomically(dir / "x.txt", "first");
    nn::write_file_atomically(dir / "x.txt", "second");
    CHECK(nn::read_file(dir / "x.txt") == "second");
    REQUIRE_THROWS_WITH(nn::write_file_atomically(dir / "no-such-dir" / "x.txt", "x"),
                        Contains("cannot write"));
}

TEST_CASE("checked_mul refuses a product that overflows 64 bits", "[fileio]") {
    CHECK(nn::checked_mul(std::uint64_t{1} << 31, std::uint64_t{1} << 32, "x") == std::uint64_t{1} << 63);
    REQUIRE_THROWS_WITH(nn::checked_mul(std::uint64_t{1} << 32, std::uint64_t{1} << 32, "the header's sizes"),
                        Contains("the header's sizes is too large: 4294967296 x 4294967296 overflows 64 bits"));
}

TEST_CASE("reseal_container makes a changed payload pass the checksum, and nothing else", "[fileio]") {
    test::ScratchDir dir;
    save_sample(dir / "f.bin");
    std::string bytes = nn::read_file(dir / "f.bin");
    bytes[20] = 43;  // the first payload value, 42 -> 43
    nn::write_file_atomically(dir / "changed.bin", bytes);
    CHECK_THROWS_WITH(nn::BinaryReader(dir / "changed.bin", "NN2GTEST", 3), Contains("checksum mismatch"));
    nn::write_file_atomically(dir / "resealed.bin", nn::reseal_container(bytes));
    nn::BinaryReader r(dir / "resealed.bin", "NN2GTEST", 3);
    CHECK(r.get<std::uint32_t>() == 43);
    // Bytes appended to the payload: the length follows them, so the reader finds them unread.
    nn::write_file_atomically(dir / "longer.bin", nn::reseal_container(bytes.substr(0, bytes.size() - 4) + "xyz" +
                                                                       bytes.substr(bytes.size() - 4)));
    nn::BinaryReader longer(dir / "longer.bin", "NN2GTEST", 3);
    CHECK(longer.remaining() == r.remaining() + 4 + 3);
    // Too short to be a container: returned as it is.
    CHECK(nn::reseal_container("short") == "short");
}

TEST_CASE("write_summary_json writes one JSON line, in order, null for what is not finite", "[fileio]") {
    test::ScratchDir dir;
    const std::string path = (dir / "summary.json").string();
    nn::write_summary_json(path, {{"steps", 2000}, {"ms_per_step_median", 17.71234567}, {"val_loss", 1.9063999652862549},
                                  {"missing", std::nan("")}});
    CHECK(nn::read_file(path) ==
          "{\"steps\": 2000, \"ms_per_step_median\": 17.71235, \"val_loss\": 1.9064, \"missing\": null}\n");
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    nn::write_summary_json("", {{"steps", 1}});  // an empty path writes nothing
}

TEST_CASE("a metrics file holds one JSON line per loss estimate, the losses to 4 places", "[fileio]") {
    test::ScratchDir dir;
    const std::string path = (dir / "metrics.jsonl").string();
    nn::MetricsLog log(path);
    log.write_losses(0, 4.19661f, 4.19444f, 0.031);
    log.write_losses(250, 2.01234f, 2.04567f, 6.2149);
    CHECK(nn::read_file(path) == "{\"step\": 0, \"train_loss\": 4.1966, \"val_loss\": 4.1944, \"seconds\": 0.03}\n"
                                 "{\"step\": 250, \"train_loss\": 2.0123, \"val_loss\": 2.0457, \"seconds\": 6.21}\n");
}

TEST_CASE("a training loop's median step, its last losses, and its outputs checked before it starts", "[fileio]") {
    nn::LoopStats stats;
    CHECK(stats.median_step_ms() == 0.0);  // no step
    stats.step_ms = {30.0, 10.0, 20.0};
    CHECK(stats.median_step_ms() == 20.0);
    stats.step_ms.push_back(90.0);         // an even count: the upper of the middle two
    CHECK(stats.median_step_ms() == 30.0);
    CHECK(stats.step_ms.front() == 30.0);  // left in the order measured

    const nn::EvalRecord none = nn::last_losses({});
    CHECK((none.step == 0 && std::isnan(none.train) && std::isnan(none.val)));
    CHECK(nn::last_losses({{0, 4.2f, 4.3f, 0.1}, {250, 2.0f, 2.1f, 6.0}}).val == 2.1f);

    test::ScratchDir dir;
    nn::check_outputs((dir / "out").string(), {"", (dir / "plot.png").string()});
    CHECK(std::filesystem::is_directory(dir / "out"));  // made before training
    CHECK_THROWS_WITH(nn::check_outputs("", {(dir / "no-such-dir" / "plot.png").string()}), Contains("no-such-dir"));
}

namespace {
// The lines split_lines returns, as "number:text" strings, for a short CHECK.
std::vector<std::string> numbered(const std::string& bytes) {
    std::vector<std::string> out;
    for (const auto& [number, text] : nn::split_lines(bytes)) out.push_back(std::to_string(number) + ":" + text);
    return out;
}
}  // namespace

TEST_CASE("split_lines numbers the lines of a text from 1, with or without a final newline", "[fileio]") {
    using V = std::vector<std::string>;
    CHECK(numbered("").empty());
    CHECK(numbered("a") == V{"1:a"});
    CHECK(numbered("a\n") == V{"1:a"});
    CHECK(numbered("a\nbc") == V{"1:a", "2:bc"});
    CHECK(numbered("a\nbc\n") == V{"1:a", "2:bc"});
    // Blank lines are kept, and count for the numbers of the lines after them.
    CHECK(numbered("\n") == V{"1:"});
    CHECK(numbered("\n\n") == V{"1:", "2:"});
    CHECK(numbered("a\n\n\nb\n") == V{"1:a", "2:", "3:", "4:b"});
    CHECK(numbered("a\n \t\nb") == V{"1:a", "2: \t", "3:b"});
}

TEST_CASE("split_lines drops the \\r of a \\r\\n line end and keeps every other \\r", "[fileio]") {
    using V = std::vector<std::string>;
    CHECK(numbered("a\r\nb\r\n") == V{"1:a", "2:b"});
    CHECK(numbered("a\r\nb") == V{"1:a", "2:b"});
    CHECK(numbered("a\r\n\r\nb\n") == V{"1:a", "2:", "3:b"});
    CHECK(numbered("a\r") == V{"1:a"});              // a last line ending in \r alone
    CHECK(numbered("\r") == V{"1:"});
    CHECK(numbered("a\r\r\n") == V{"1:a\r"});        // only one \r goes
    CHECK(numbered("a\rb\n") == V{"1:a\rb"});        // a \r inside a line is text
    CHECK(numbered("a\n\rb") == V{"1:a", "2:\rb"});
}
