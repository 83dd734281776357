#include "common/text.hpp"

#include <algorithm>
#include <set>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/limits.hpp"

namespace nn {

std::u32string decode_utf8(std::string_view bytes, std::string_view what) {
    std::u32string out;
    out.reserve(bytes.size());
    std::size_t i = 0;
    while (i < bytes.size()) {
        const auto lead = static_cast<unsigned char>(bytes[i]);
        int extra;
        char32_t cp, min;
        if (lead < 0x80) { extra = 0; cp = lead; min = 0; }
        else if ((lead & 0xE0) == 0xC0) { extra = 1; cp = lead & 0x1F; min = 0x80; }
        else if ((lead & 0xF0) == 0xE0) { extra = 2; cp = lead & 0x0F; min = 0x800; }
        else if ((lead & 0xF8) == 0xF0) { extra = 3; cp = lead & 0x07; min = 0x10000; }
        else fail("{} is not valid UTF-8: byte {} is 0x{:02x}, which cannot start a character", what, i, lead);
        for (int k = 1; k <= extra; ++k) {
            if (i + k >= bytes.size() || (static_cast<unsigned char>(bytes[i + k]) & 0xC0) != 0x80)
                fail("{} is not valid UTF-8: the character at byte {} (0x{:02x}) is incomplete", what, i, lead);
            cp = (cp << 6) | (static_cast<unsigned char>(bytes[i + k]) & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            fail("{} is not valid UTF-8: bad character encoding at byte {}", what, i);
        out += cp;
        i += extra + 1;
    }
    return out;
}

std::string encode_utf8(std::u32string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char32_t cp : text) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    return out;
}

namespace {
// One character as it reads in a message: \n, \t, or itself.
std::string show(char32_t c) {
    if (c == U'\n') return "\\n";
    if (c == U'\t') return "\\t";
    if (c < 0x20 || c == 0x7F) return fmt::format("\\x{:02x}", static_cast<unsigned>(c));
    return encode_utf8(std::u32string_view(&c, 1));
}
}  // namespace

Vocabulary::Vocabulary(std::u32string_view text) {
    const std::set<char32_t> unique(text.begin(), text.end());
    chars_.assign(unique.begin(), unique.end());  // std::set is sorted: by code point
    for (std::size_t i = 0; i < chars_.size(); ++i) index_[chars_[i]] = static_cast<int>(i);
}

std::vector<int> Vocabulary::encode(std::u32string_view text, std::string_view what) const {
    std::vector<int> tokens;
    tokens.reserve(text.size());
    std::u32string unknown;
    for (char32_t c : text) {
        const auto it = index_.find(c);
        if (it != index_.end()) tokens.push_back(it->second);
        else if (unknown.find(c) == std::u32string::npos) unknown += c;
    }
    if (!unknown.empty()) {
        std::string list;
        for (char32_t c : unknown) list += (list.empty() ? "'" : ", '") + nn::show(c) + "'";
        fail("{} has {} character{} outside the vocabulary: {} (the vocabulary is: {})", what,
             unknown.size(), unknown.size() == 1 ? "" : "s", list, printable());
    }
    return tokens;
}

std::vector<int> Vocabulary::encode(std::string_view utf8, std::string_view what) const {
    return encode(decode_utf8(utf8, what), what);
}

std::string Vocabulary::decode(std::span<const int> tokens) const {
    std::u32string text;
    text.reserve(tokens.size());
    for (int t : tokens) text += chars_.at(static_cast<std::size_t>(t));
    return encode_utf8(text);
}

std::vector<int> Vocabulary::prompt(std::string_view utf8) const {
    return utf8.empty() ? std::vector<int>{0} : encode(utf8, "the prompt");
}

std::string Vocabulary::show(int token) const {
    return nn::show(chars_.at(static_cast<std::size_t>(token)));
}

std::string Vocabulary::printable() const {
    std::string out;
    for (char32_t c : chars_) out += nn::show(c);
    return out;
}

TextData load_text(const std::filesystem::path& path) {
    // At most 1 GiB of text: as code points and tokens it takes 9 times that.
    const std::string bytes = read_file(path, std::uint64_t{1} << 30);
    if (bytes.empty()) fail("{} is empty", path.string());
    check_fits(9.0 * static_cast<double>(bytes.size()), fmt::format("the {} bytes of {}", bytes.size(), path.string()));
    const std::u32string text = decode_utf8(bytes, path.string());
    Vocabulary vocab(text);
    std::vector<int> tokens = vocab.encode(text);
    // The lecture's split: n = int(0.9 * len(data)).
    const auto n = static_cast<std::ptrdiff_t>(0.9 * static_cast<double>(tokens.size()));
    TextData data{std::move(vocab), {}, {}, path.string()};
    data.train.assign(tokens.begin(), tokens.begin() + n);
    data.val.assign(tokens.begin() + n, tokens.end());
    return data;
}

namespace {
void check_split(const TextData& data, Split split, int T) {
    const std::vector<int>& tokens = data.tokens(split);
    if (tokens.size() < static_cast<std::size_t>(T) + 1)
        fail("{}{} split has {} characters, too few for a context of {} plus its target",
             data.source.empty() ? "the " : data.source + ": its ", split == Split::train ? "training" : "validation",
             tokens.size(), T);
}
}  // namespace

void check_context(const TextData& data, int T) {
    check_split(data, Split::train, T);
    check_split(data, Split::val, T);
}

Batch get_batch(const TextData& data, Split split, int B, int T, Rng& rng) {
    const std::vector<int>& tokens = data.tokens(split);
    if (B < 1 || T < 1) fail("a batch needs B >= 1 and T >= 1, not B={}, T={}", B, T);
    check_split(data, split, T);
    Batch batch{B, T, std::vector<int>(static_cast<std::size_t>(B) * T),
                std::vector<int>(static_cast<std::size_t>(B) * T)};
    for (int b = 0; b < B; ++b) {
        const std::size_t i = rng.below(tokens.size() - static_cast<std::size_t>(T));
        std::copy_n(tokens.begin() + i, T, batch.x.begin() + b * T);
        std::copy_n(tokens.begin() + i + 1, T, batch.y.begin() + b * T);
    }
    return batch;
}

}  // namespace nn
