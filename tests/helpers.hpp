// Helpers shared by the test files: scratch directories, running a built
// lesson and capturing what it prints, and where the data lives.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>
#include <sys/wait.h>

namespace test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed when it goes out of scope.
struct ScratchDir {
    fs::path path;
    ScratchDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("nn2gpt-test-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path operator/(const std::string& name) const { return path / name; }
};

// ctest counts a test that exits with this status as skipped (SKIP_RETURN_CODE).
constexpr int kSkipStatus = 77;

// The data directory the lessons use: $NN2GPT_TEST_DATA, or the repository's
// data/. Every test reads its data through this function. A test whose data
// is missing is skipped, with a line naming the file, rather than failing on
// something other than what it checks.
inline std::string data_dir(std::initializer_list<const char*> needs = {}) {
    const char* env = std::getenv("NN2GPT_TEST_DATA");
    const std::string dir = env != nullptr ? env : std::string(NN2GPT_SOURCE_DIR) + "/data";
    for (const char* name : needs) {
        const fs::path file = fs::path(dir) / name;
        if (!fs::exists(file) && !fs::exists(file.string() + ".gz")) {
            std::fprintf(stderr, "SKIPPED: %s is missing (run scripts/fetch-data, or set NN2GPT_TEST_DATA)\n",
                         file.c_str());
            std::exit(kSkipStatus);
        }
    }
    return dir;
}
inline std::string shakespeare_dir() { return data_dir({"tinyshakespeare.txt"}); }
inline std::string mnist_dir() {
    return data_dir({"mnist/train-images-idx3-ubyte", "mnist/train-labels-idx1-ubyte",
                     "mnist/t10k-images-idx3-ubyte", "mnist/t10k-labels-idx1-ubyte"});
}

struct RunResult {
    int status = -1;     // the exit status
    std::string output;  // stdout and stderr together
};

// Runs a shell command and captures what it prints (stdout and stderr together).
inline RunResult run_command(const std::string& command) {
    RunResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (pipe == nullptr) return result;
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    const int raw = ::pclose(pipe);
    result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return result;
}

// `command` with no allocation above about `mb` megabytes allowed: one that
// allocates what a file claims before checking the claim then fails with "out
// of memory" instead of naming the file's fault. Release builds cap the
// address space; under the sanitizers (NN2GPT_SANITIZED), which reserve
// terabytes of it, AddressSanitizer refuses each allocation above the cap.
inline std::string memory_capped(const std::string& command, int mb = 1024) {
    if (std::getenv("NN2GPT_SANITIZED") != nullptr)
        return "ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=" + std::to_string(mb) +
               " " + command;
    return "ulimit -v " + std::to_string(mb * 1024) + "; " + command;
}

// Runs bin/LESSON with `args` (a shell-quoted string) and captures its output.
inline RunResult run_lesson(const std::string& lesson, const std::string& args) {
    return run_command(std::string(NN2GPT_BIN_DIR) + "/" + lesson + " " + args);
}

}  // namespace test
