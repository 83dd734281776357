// 07-encoder-decoder: sentence pairs as numbers. Words (one word = one
// token), a word vocabulary per language, the deterministic train/val/test
// split, --pairs FILE.tsv, and batches of sentences of different lengths,
// padded, with their lengths (what the padding masks are made from).
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/error.hpp"
#include "common/fileio.hpp"
#include "common/random.hpp"
#include "common/text.hpp"

// The special tokens, the first three of both vocabularies.
inline constexpr int kPad = 0;  // fills a short sentence up to the batch's length
inline constexpr int kBos = 1;  // "beginning of sentence": the decoder's first input
inline constexpr int kEos = 2;  // "end of sentence": the decoder's last target; decoding stops there
inline constexpr std::array<const char*, 3> kSpecials{"<pad>", "<bos>", "<eos>"};

// A sentence split into words: on white space, and around punctuation, which
// becomes a word of its own ("¿qué?" -> "¿", "qué", "?"). A hyphen or an
// apostrophe inside a word stays in it ("twenty-eighth", "don't").
inline std::vector<std::string> split_words(std::string_view utf8, std::string_view what = "text") {
    static const std::u32string punctuation = U".,;:!?¿¡\"()[]{}«»…";
    const std::u32string text = nn::decode_utf8(utf8, what);
    std::vector<std::string> words;
    std::u32string word;
    auto flush = [&] {
        if (!word.empty()) words.push_back(nn::encode_utf8(word));
        word.clear();
    };
    for (char32_t c : text) {
        if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') {
            flush();
        } else if (punctuation.find(c) != std::u32string::npos) {
            flush();
            words.push_back(nn::encode_utf8(std::u32string(1, c)));
        } else {
            word += c;
        }
    }
    flush();
    return words;
}

// InputError if a word of `words` is one of the special tokens: text may not
// reach them ("<eos>" typed as a word would end a sentence, "<pad>" hide it).
inline void refuse_specials(const std::vector<std::string>& words, std::string_view what) {
    for (const std::string& w : words)
        if (std::find(kSpecials.begin(), kSpecials.end(), w) != kSpecials.end())
            nn::fail("{} holds the word {}, one of the special tokens <pad>, <bos>, <eos>, which text may not contain",
                     what, w);
}

// The words of one language; a token is an index into it. The specials come
// first, then the words in byte order.
class WordVocabulary {
public:
    WordVocabulary() : WordVocabulary(std::vector<std::string>{}) {}
    // From the words (specials excluded) of a language, in any order, repeats allowed.
    explicit WordVocabulary(std::vector<std::string> words) {
        std::sort(words.begin(), words.end());
        words.erase(std::unique(words.begin(), words.end()), words.end());
        words_.assign(kSpecials.begin(), kSpecials.end());
        for (std::string& w : words)
            if (std::find(kSpecials.begin(), kSpecials.end(), w) == kSpecials.end()) words_.push_back(std::move(w));
        for (std::size_t i = 0; i < words_.size(); ++i) index_[words_[i]] = static_cast<int>(i);
    }
    int size() const { return static_cast<int>(words_.size()); }
    const std::string& word(int token) const { return words_[static_cast<std::size_t>(token)]; }
    const std::vector<std::string>& words() const { return words_; }
    // -1 for a word outside the vocabulary.
    int find(const std::string& w) const {
        const auto it = index_.find(w);
        return it == index_.end() ? -1 : it->second;
    }
    // Words -> tokens; InputError naming every word outside the vocabulary.
    std::vector<int> encode(const std::vector<std::string>& sentence, std::string_view what) const {
        std::vector<int> out;
        std::string unknown;
        int n_unknown = 0;
        for (const std::string& w : sentence) {
            out.push_back(find(w));
            if (out.back() >= 0) continue;
            unknown += fmt::format("{}'{}'", n_unknown++ == 0 ? "" : ", ", w);
            std::string lower = w;  // "March" for "march": say so
            for (char& c : lower)
                if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (lower != w && find(lower) >= 0) unknown += fmt::format(" (did you mean '{}'?)", lower);
        }
        if (n_unknown > 0)
            nn::fail("{} has {} word{} outside the vocabulary: {}", what, n_unknown, n_unknown == 1 ? "" : "s", unknown);
        return out;
    }
    // Tokens -> words joined by spaces, the specials left out.
    std::string decode(std::span<const int> tokens) const {
        std::string out;
        for (int t : tokens)
            if (t >= static_cast<int>(kSpecials.size())) out += (out.empty() ? "" : " ") + word(t);
        return out;
    }

private:
    std::vector<std::string> words_;
    std::unordered_map<std::string, int> index_;
};

// One pair of sentences, as tokens: src without specials, tgt without <bos>/<eos>.
struct Example {
    std::vector<int> src, tgt;
};

enum class Split { train, val, test };

struct PairData {
    WordVocabulary src_vocab, tgt_vocab;
    std::vector<Example> train, val, test;
    std::vector<std::pair<std::string, std::string>> test_text;  // the test pairs as written
    std::vector<std::size_t> test_index;  // where each test pair was in the pairs given
    const std::vector<Example>& examples(Split s) const {
        return s == Split::train ? train : s == Split::val ? val : test;
    }
};

// The pairs of a tab-separated file: one "source<TAB>target" per line. Empty
// lines are skipped; anything else malformed is refused with its line number.
inline std::vector<std::pair<std::string, std::string>> read_pairs(const std::filesystem::path& path) {
    const std::string bytes = nn::read_file(path);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [line_no, line] : nn::split_lines(bytes)) {
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        const std::size_t tab = line.find('\t');
        if (tab == std::string::npos)
            nn::fail("{}: line {} has no tab: expected \"source<TAB>target\"", path.string(), line_no);
        if (line.find('\t', tab + 1) != std::string::npos)
            nn::fail("{}: line {} has more than one tab: expected \"source<TAB>target\"", path.string(), line_no);
        const std::string src = line.substr(0, tab), tgt = line.substr(tab + 1);
        const std::string where = fmt::format("{}: line {}", path.string(), line_no);
        const std::vector<std::string> src_words = split_words(src, where), tgt_words = split_words(tgt, where);
        if (src_words.empty()) nn::fail("{}: line {} has an empty source sentence", path.string(), line_no);
        if (tgt_words.empty()) nn::fail("{}: line {} has an empty target sentence", path.string(), line_no);
        refuse_specials(src_words, where);
        refuse_specials(tgt_words, where);
        out.emplace_back(src, tgt);
    }
    if (out.empty()) nn::fail("{} holds no sentence pairs", path.string());
    return out;
}

// Splits the pairs by a shuffle with a fixed seed (the same for every run,
// whatever --seed says): ceil(10%) of them are test, ceil(5%) validation, the
// rest training. A date is in exactly one split. A task that holds out by a
// rule of its own (pronouns.hpp) gives each pair's split in `assigned`; the
// pairs are still taken in the shuffle's order. The vocabularies are built
// from all the pairs. InputError if a sentence has more than max_len - 1
// words (the decoder also reads <bos>, and the target ends with <eos>).
inline PairData make_pair_data(const std::vector<std::pair<std::string, std::string>>& pairs, int max_len,
                               const std::string& source_name, std::span<const Split> assigned = {}) {
    if (pairs.size() < 20) nn::fail("{} has {} pairs: at least 20 are needed to split them", source_name, pairs.size());
    if (!assigned.empty() && assigned.size() != pairs.size())
        nn::fail("{}: {} splits given for {} pairs", source_name, assigned.size(), pairs.size());
    std::vector<std::vector<std::string>> src_words, tgt_words;
    std::vector<std::string> all_src, all_tgt;
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        src_words.push_back(split_words(pairs[i].first));
        tgt_words.push_back(split_words(pairs[i].second));
        for (const auto* side : {&src_words.back(), &tgt_words.back()})
            if (static_cast<int>(side->size()) > max_len - 1)
                nn::fail("{}: pair {} has a sentence of {} words, more than --max-len {} allows ({})", source_name,
                         i + 1, side->size(), max_len, max_len - 1);
        all_src.insert(all_src.end(), src_words.back().begin(), src_words.back().end());
        all_tgt.insert(all_tgt.end(), tgt_words.back().begin(), tgt_words.back().end());
    }
    PairData data{WordVocabulary(all_src), WordVocabulary(all_tgt), {}, {}, {}, {}, {}};
    std::vector<std::size_t> order(pairs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    nn::Rng split_rng(20260101);  // fixed: the split never depends on the run
    split_rng.shuffle(order);
    const std::size_t n_test = (pairs.size() + 9) / 10, n_val = (pairs.size() + 19) / 20;
    for (std::size_t k = 0; k < order.size(); ++k) {
        const std::size_t i = order[k];
        Example e{data.src_vocab.encode(src_words[i], "a source sentence"), data.tgt_vocab.encode(tgt_words[i], "a target sentence")};
        const Split split = !assigned.empty()  ? assigned[i]
                            : k < n_test          ? Split::test
                            : k < n_test + n_val ? Split::val
                                                  : Split::train;
        if (split == Split::test) {
            data.test.push_back(std::move(e));
            data.test_text.push_back(pairs[i]);
            data.test_index.push_back(i);
        } else if (split == Split::val) {
            data.val.push_back(std::move(e));
        } else {
            data.train.push_back(std::move(e));
        }
    }
    return data;
}

// B sentence pairs, padded with <pad> to the longest of the batch:
//   src     (B*Ts)   the source words, row b padded after src_len[b] words
//   tgt_in  (B*Tt)   <bos> y_1 ... y_n  (the decoder's input: teacher forcing)
//   tgt_out (B*Tt)   y_1 ... y_n <eos>  (the targets, shifted by one)
struct Batch {
    int B = 0, Ts = 0, Tt = 0;
    std::vector<int> src, src_len, tgt_in, tgt_out;
};

inline Batch make_batch(std::span<const Example* const> examples) {
    Batch b;
    b.B = static_cast<int>(examples.size());
    for (const Example* e : examples) {
        b.Ts = std::max(b.Ts, static_cast<int>(e->src.size()));
        b.Tt = std::max(b.Tt, static_cast<int>(e->tgt.size()) + 1);
    }
    b.src.assign(static_cast<std::size_t>(b.B * b.Ts), kPad);
    b.tgt_in.assign(static_cast<std::size_t>(b.B * b.Tt), kPad);
    b.tgt_out.assign(static_cast<std::size_t>(b.B * b.Tt), kPad);
    for (int i = 0; i < b.B; ++i) {
        const Example& e = *examples[static_cast<std::size_t>(i)];
        std::copy(e.src.begin(), e.src.end(), b.src.begin() + i * b.Ts);
        b.src_len.push_back(static_cast<int>(e.src.size()));
        b.tgt_in[static_cast<std::size_t>(i * b.Tt)] = kBos;
        std::copy(e.tgt.begin(), e.tgt.end(), b.tgt_in.begin() + i * b.Tt + 1);
        std::copy(e.tgt.begin(), e.tgt.end(), b.tgt_out.begin() + i * b.Tt);
        b.tgt_out[static_cast<std::size_t>(i * b.Tt) + e.tgt.size()] = kEos;
    }
    return b;
}

// B random pairs of a split.
inline Batch get_batch(const PairData& data, Split split, int B, nn::Rng& rng) {
    const std::vector<Example>& all = data.examples(split);
    std::vector<const Example*> picked;
    for (int i = 0; i < B; ++i) picked.push_back(&all[rng.below(all.size())]);
    return make_batch(picked);
}
