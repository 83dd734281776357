// scripts/fetch-data takes Tiny Shakespeare from the copy shipped in the
// repository (scripts/data/tinyshakespeare.txt.gz), with no network and no
// DATA_MIRROR, and refuses a shipped copy that is not the expected text. Each
// case runs the script from a scratch copy of the repository's scripts/, with
// MNIST already in its data/ (links to the test data), so that only the text
// is fetched.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::Matches;

namespace {

constexpr const char* kTextSha = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed";

// A scratch repository: scripts/fetch-data, scripts/data/ (the shipped text,
// or what the test puts there) and data/mnist/ linked to the test data.
struct ScratchRepo {
    test::ScratchDir dir;
    fs::path shipped;
    ScratchRepo() {
        const fs::path source = NN2GPT_SOURCE_DIR;
        const fs::path mnist = fs::path(test::mnist_dir()) / "mnist";
        fs::create_directories(dir / "scripts/data");
        fs::copy_file(source / "scripts/fetch-data", dir / "scripts/fetch-data");
        shipped = dir / "scripts/data/tinyshakespeare.txt.gz";
        fs::copy_file(source / "scripts/data/tinyshakespeare.txt.gz", shipped);
        fs::create_directories(dir / "data/mnist");
        for (const auto& e : fs::directory_iterator(mnist))
            fs::create_symlink(fs::absolute(e.path()), dir / "data/mnist" / e.path().filename());
    }
    // Runs the script with no mirror and no way to reach the network.
    test::RunResult fetch(const std::string& env = "DATA_MIRROR=") const {
        return test::run_command("env " + env + " https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 " +
                                 (dir / "scripts/fetch-data").string());
    }
    fs::path text() const { return dir / "data/tinyshakespeare.txt"; }
    // What fetch-data left in data/ besides mnist/: nothing, or the text.
    std::vector<std::string> data_entries() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir / "data"))
            if (e.path().filename() != "mnist") names.push_back(e.path().filename().string());
        return names;
    }
};

std::string sha256(const fs::path& file) {
    return test::run_command("sha256sum " + file.string() + " | cut -d' ' -f1").output;
}

void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

}  // namespace

TEST_CASE("fetch-data takes Tiny Shakespeare from the shipped copy, offline", "[scripts]") {
    ScratchRepo repo;
    const test::RunResult r = repo.fetch();
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output == "fetch-data: tinyshakespeare.txt from scripts/data/tinyshakespeare.txt.gz\n");
    CHECK(fs::file_size(repo.text()) == 1115394);
    CHECK(sha256(repo.text()) == std::string(kTextSha) + "\n");
    CHECK(repo.data_entries() == std::vector<std::string>{"tinyshakespeare.txt"});

    // Run again: everything is in place, nothing is said or written.
    const test::RunResult again = repo.fetch();
    CHECK(again.status == 0);
    CHECK(again.output.empty());
}

TEST_CASE("fetch-data refuses a shipped copy that is not the text, leaving nothing in data/", "[scripts]") {
    ScratchRepo repo;
    SECTION("whole gzip data of another text") {
        fs::remove(repo.shipped);
        REQUIRE(test::run_command("echo 'Not Shakespeare' | gzip -9 -n > " + repo.shipped.string()).status == 0);
        // Even with a mirror holding the right text at hand: a damaged repository is said, not papered over.
        const test::RunResult r = repo.fetch("DATA_MIRROR=" + test::shakespeare_dir());
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains("\nfetch-data: error: " + repo.shipped.string() + " has SHA-256 "));
        CHECK_THAT(r.output, Contains(std::string(", expected ") + kTextSha + "\n"));
        CHECK_THAT(r.output, Matches("[^\n]*\n[^\n]*\n"));  // what it was doing, then one line of error
    }
    SECTION("the shipped copy cut short") {
        const test::RunResult cut = test::run_command("head -c 200000 " + repo.shipped.string() + " > " +
                                                      repo.shipped.string() + ".cut && mv " +
                                                      repo.shipped.string() + ".cut " + repo.shipped.string());
        REQUIRE(cut.status == 0);
        const test::RunResult r = repo.fetch();
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains("\nfetch-data: error: " + repo.shipped.string() +
                                      " is not whole gzip data (git checkout scripts/data restores it)\n"));
        CHECK_THAT(r.output, Matches("[^\n]*\n[^\n]*\n"));
    }
    SECTION("garbage") {
        write_file(repo.shipped, std::string(1000, 'x'));
        const test::RunResult r = repo.fetch();
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains("is not whole gzip data"));
    }
    CHECK(repo.data_entries().empty());
}
