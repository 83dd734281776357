// Fuzzes common/text.cpp: load_text (UTF-8, vocabulary, split), the context
// check, a batch, and encoding a prompt, as the language-model lessons do.
#include "common/text.hpp"
#include "fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = fuzz::as_file({reinterpret_cast<const char*>(data), size}, "text.txt");
    return fuzz::refuse_or_read([&] {
        const nn::TextData text = nn::load_text(path);
        const std::string prompt(reinterpret_cast<const char*>(data), std::min<std::size_t>(size, 16));
        text.vocab.decode(text.vocab.encode(prompt, "the prompt"));
        nn::check_context(text, 4);
        nn::Rng rng(1);
        nn::get_batch(text, nn::Split::val, 2, 4, rng);
    });
}

void write_seeds(const std::filesystem::path& dir) {
    std::ofstream(dir / "shakespeare", std::ios::binary)
        << "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
    std::ofstream(dir / "utf8", std::ios::binary) << "caf\xc3\xa9 cr\xc3\xa8me, a \xe2\x82\xac 5, \xf0\x9f\x98\x80 and more text, long enough that a tenth of it holds a context\n";
}
