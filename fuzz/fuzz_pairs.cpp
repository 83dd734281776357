// Fuzzes 07-encoder-decoder/data.hpp: read_pairs (the --pairs file), the split
// into vocabularies and examples, and a batch.
#include "07-encoder-decoder/data.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file({reinterpret_cast<const char*>(data), size}, "pairs.tsv");
    return fuzz::refuse_or_read([&] {
        const PairData pairs = make_pair_data(read_pairs(path), 8, path.string());
        nn::Rng rng(1);
        get_batch(pairs, Split::train, 2, rng);
    });
}

void write_seeds(const std::filesystem::path& dir) {
    std::ofstream out(dir / "pairs", std::ios::binary);
    for (int i = 1; i <= 24; ++i) out << "day " << i << " of june\tel " << i << " de junio\n";
}
