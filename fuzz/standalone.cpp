// The fuzz targets without libFuzzer, for every build:
//   fuzz_TARGET --seeds DIR   writes the seed corpus into DIR and checks that
//                             the reader accepts every seed (exit 1 if not)
//   fuzz_TARGET FILE...       runs each file through the target, as the fuzzer
//                             would (regression inputs: a crash fails the test)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "fuzz/fuzz.hpp"

namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return std::move(s).str();
}
}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::string(argv[1]) == "--seeds") {
        fs::create_directories(argv[2]);
        write_seeds(argv[2]);
        int seeds = 0, bad = 0;
        for (const auto& entry : fs::directory_iterator(argv[2])) {
            const std::string bytes = slurp(entry.path());
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
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
        const fs::path arg = argv[i];
        for (const fs::path& file : fs::is_directory(arg) ? [&] {
                 std::vector<fs::path> v;
                 for (const auto& e : fs::directory_iterator(arg)) v.push_back(e.path());
                 return v;
             }() : std::vector<fs::path>{arg}) {
            const std::string bytes = slurp(file);
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
            ++inputs;
        }
    }
    std::printf("%d inputs ran without a crash\n", inputs);
    return 0;
}
