// The fuzz targets without libFuzzer, for every build:
//   fuzz_TARGET --seeds DIR   writes the seed corpus into DIR and checks that
//                             the reader accepts every seed (exit 1 if not)
//   fuzz_TARGET FILE...       runs each file through the target, as the fuzzer
//                             would (regression inputs: a crash fails the test)
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/fileio.hpp"
#include "fuzz/fuzz.hpp"

namespace fs = std::filesystem;

namespace {
// Runs one file's bytes through the target.
void run(const fs::path& file) {
    const std::string bytes = nn::read_file(file);
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}
}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--seeds") {
        fs::create_directories(argv[2]);
        write_seeds(argv[2]);
        int seeds = 0, bad = 0;
        for (const auto& entry : fs::directory_iterator(argv[2])) {
            run(entry.path());
            ++seeds;
            if (fuzz::g_refused) {
                std::fprintf(stderr, "seed %s was refused by its reader\n", entry.path().c_str());
                ++bad;
            }
        }
        std::printf("%d seeds in %s, %d refused\n", seeds, argv[2], bad);
        return seeds > 0 && bad == 0 ? 0 : 1;
    }
    int inputs = 0;
    for (int i = 1; i < argc; ++i) {
        std::vector<fs::path> files{argv[i]};
        if (fs::is_directory(files[0])) files.assign(fs::directory_iterator(argv[i]), fs::directory_iterator());
        for (const fs::path& file : files) {
            run(file);
            ++inputs;
        }
    }
    std::printf("%d inputs ran without a crash\n", inputs);
    return 0;
}
