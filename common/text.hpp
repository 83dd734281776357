// Text as numbers, for the language-model lessons: a UTF-8 file read into code
// points, a character vocabulary, a 90/10 train/validation split, random
// batches of (input, next character) pairs, and the loss estimate that is
// printed during training.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/random.hpp"

namespace nn {

// Decodes UTF-8; InputError naming `what` and the byte offset if it is not
// valid (overlong forms, surrogates and code points past U+10FFFF included).
std::u32string decode_utf8(std::string_view bytes, std::string_view what = "text");
std::string encode_utf8(std::u32string_view text);

// The characters of a text, sorted by code point; a token is an index into it.
class Vocabulary {
public:
    explicit Vocabulary(std::u32string_view text);
    int size() const { return static_cast<int>(chars_.size()); }
    // Characters to tokens; InputError listing any character not in the
    // vocabulary. `what` names the text in that message ("the prompt").
    std::vector<int> encode(std::u32string_view text, std::string_view what = "text") const;
    std::vector<int> encode(std::string_view utf8, std::string_view what = "text") const;
    // Tokens to UTF-8 text.
    std::string decode(std::span<const int> tokens) const;
    // A prompt's tokens; an empty prompt is token 0 (a newline in Tiny
    // Shakespeare), where the lecture's generate starts.
    std::vector<int> prompt(std::string_view utf8) const;
    // Every character in token order, as UTF-8: what a checkpoint stores.
    std::string utf8() const { return encode_utf8(chars_); }
    // The vocabulary as one printable string, newline shown as \n.
    std::string printable() const;
    // One token as it reads in a message or a label: \n, \t, or the character.
    std::string show(int token) const;

private:
    std::u32string chars_;
    std::unordered_map<char32_t, int> index_;
};

enum class Split { train, val };

struct TextData {
    Vocabulary vocab;
    std::vector<int> train;  // the first 90% of the tokens
    std::vector<int> val;    // the last 10%
    std::string source;      // the file it was read from, for messages
    const std::vector<int>& tokens(Split split) const { return split == Split::train ? train : val; }
};

// Reads a UTF-8 text file, builds its vocabulary and splits it 90/10.
// InputError if the file is missing, empty or not UTF-8.
TextData load_text(const std::filesystem::path& path);

// B sequences of T inputs each, with their targets: y[b][t] = x[b][t + 1] in the text.
struct Batch {
    int B = 0, T = 0;
    std::vector<int> x;  // (B*T): row b holds text[i_b .. i_b + T)
    std::vector<int> y;  // (B*T): row b holds text[i_b + 1 .. i_b + T + 1)
};

// InputError unless both splits hold a context of T characters plus its
// target: checked once after loading, before a model of that size is built.
void check_context(const TextData& data, int T);

// Draws B random offsets into a split; InputError if the split is shorter than T + 1.
Batch get_batch(const TextData& data, Split split, int B, int T, Rng& rng);

struct Losses {
    float train = 0, val = 0;
};

// The mean loss over `eval_iters` batches of each split. `loss(batch)` runs the
// model forward (in evaluation mode) and returns its loss. The batches come
// from a generator seeded with `seed` on every call, so each estimate sees the
// same batches and two estimates differ only because the model did.
template <typename LossFn>
Losses estimate_loss(const TextData& data, int eval_iters, int B, int T, LossFn&& loss,
                     std::uint64_t seed = 0) {
    Losses out;
    for (Split split : {Split::train, Split::val}) {
        Rng rng(seed);
        double sum = 0;
        for (int k = 0; k < eval_iters; ++k) sum += loss(get_batch(data, split, B, T, rng));
        (split == Split::train ? out.train : out.val) = static_cast<float>(sum / eval_iters);
    }
    return out;
}

}  // namespace nn
