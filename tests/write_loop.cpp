// A program that does nothing but write: a 4 MB container to PATH, then a
// text file to PATH.txt, again and again until it is killed. test_signals
// kills it at random moments to show that a signal during a write leaves the
// old file or the new one, and no temporary file.
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "common/fileio.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: write_loop PATH\n");
        return 2;
    }
    const std::string path = argv[1];
    std::vector<float> values(std::size_t{1} << 20);
    for (unsigned round = 0;; ++round) {
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i + round);
        nn::BinaryWriter w(path, "NN2GLOOP", 1);
        w.put<std::uint32_t>(round);
        w.put_span(std::span<const float>(values));
        w.commit();
        nn::write_file_atomically(path + ".txt", "round " + std::to_string(round) + "\n");
        std::printf("%u\n", round);
        std::fflush(stdout);
    }
}
