// A SIGINT or SIGTERM while a file is being written leaves either the old file
// or the new one, whole, and never a stray temporary file: the writer is
// killed at random moments, then what it left is read back.
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <regex>
#include <thread>

#include "06-gpt/checkpoint.hpp"
#include "common/fileio.hpp"
#include "helpers.hpp"

extern char** environ;

namespace {

// Starts `argv` with its output thrown away, waits `delay`, sends `sig`, and
// returns how the program ended (waitpid's status).
int kill_after(std::vector<std::string> args, std::chrono::microseconds delay, int sig) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    REQUIRE(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    std::this_thread::sleep_for(delay);
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

// The names in `dir` that end in .tmp.
std::vector<std::string> temporaries(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
        if (e.path().extension() == ".tmp") out.push_back(e.path().string());
    return out;
}

}  // namespace

TEST_CASE("a signal during a write leaves the old file or the new one, and no temporary file", "[fileio]") {
    test::ScratchDir dir;
    const auto path = dir / "big.bin";
    std::mt19937 gen(20261203);
    std::uniform_int_distribution<int> delay_us(0, 800000);
    int killed_by_signal = 0, files_read = 0;
    for (int k = 0; k < 24; ++k) {
        const int sig = k % 2 == 0 ? SIGINT : SIGTERM;
        const int status = kill_after({std::string(NN2GPT_BIN_DIR) + "/write_loop", path.string()},
                                      std::chrono::microseconds(delay_us(gen)), sig);
        INFO("kill " << k);
        CHECK(WIFSIGNALED(status));
        if (WIFSIGNALED(status) && WTERMSIG(status) == sig) ++killed_by_signal;
        CHECK(temporaries(dir.path).empty());
        if (std::filesystem::exists(path)) {  // whole, or the reader would refuse it
            nn::BinaryReader r(path, "NN2GLOOP", 1);
            const auto round = r.get<std::uint32_t>();
            std::vector<float> values(std::size_t{1} << 20);
            r.get_span(std::span<float>(values));
            r.expect_end();
            CHECK(values[5] == static_cast<float>(5 + round));
            ++files_read;
        }
        if (std::filesystem::exists(path.string() + ".txt"))
            CHECK_THAT(nn::read_file(path.string() + ".txt"), Catch::Matches("round [0-9]+\n"));
    }
    CHECK(killed_by_signal == 24);
    CHECK(files_read > 0);
}

TEST_CASE("06-gpt killed while it trains and saves leaves whole checkpoints and metrics, and no temporary file",
          "[06-gpt][run]") {
    test::ScratchDir dir;
    const std::string data = test::shakespeare_dir();
    std::mt19937 gen(7);
    std::uniform_int_distribution<int> delay_us(200000, 1500000);
    for (int k = 0; k < 8; ++k) {
        const int sig = k % 2 == 0 ? SIGTERM : SIGINT;
        const auto out = dir / fmt::format("run{}", k);
        const int status = kill_after({std::string(NN2GPT_BIN_DIR) + "/06-gpt", "--data", data, "--threads", "1",
                                       "--n-layer", "2", "--n-embd", "64", "--n-head", "2", "--block-size", "32",
                                       "--eval-interval", "1", "--eval-iters", "1", "--max-iters", "100000",
                                       "--out", out.string(), "--metrics", (dir / fmt::format("m{}", k)).string()},
                                      std::chrono::microseconds(delay_us(gen)), sig);
        INFO("kill " << k);
        CHECK(WIFSIGNALED(status));
        CHECK(temporaries(dir.path).empty());
        for (const char* name : {"best.ckpt", "last.ckpt"})
            if (std::filesystem::exists(out / name)) CHECK_NOTHROW(CheckpointReader(out / name));
        const auto metrics = dir / fmt::format("m{}", k);
        if (std::filesystem::exists(metrics)) {
            const std::string text = nn::read_file(metrics);
            CHECK((text.empty() || text.back() == '\n'));
        }
    }
}
