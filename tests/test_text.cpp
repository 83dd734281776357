// The text pipeline of the language-model lessons: UTF-8, the character
// vocabulary, the 90/10 split, batches of next-character targets, and the
// loss estimate over fixed batches.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "common/error.hpp"
#include "common/text.hpp"
#include "helpers.hpp"

namespace {
using Catch::Matchers::Contains;

void write(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
}

const nn::TextData& shakespeare() {
    static const nn::TextData data = nn::load_text(test::shakespeare_dir() + "/tinyshakespeare.txt");
    return data;
}
}  // namespace

TEST_CASE("Tiny Shakespeare has the lecture's 65-character vocabulary and 90/10 split", "[text]") {
    const nn::TextData& data = shakespeare();
    CHECK(data.vocab.size() == 65);
    CHECK(data.vocab.printable() ==
          "\\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    // 1,115,394 characters: n = int(0.9 * len) = 1,003,854 train, the rest val.
    CHECK(data.train.size() == 1003854);
    CHECK(data.val.size() == 111540);
    // The lecture's first characters, "First Citizen:", encode as in the video.
    CHECK(std::vector<int>(data.train.begin(), data.train.begin() + 5) ==
          std::vector<int>{18, 47, 56, 57, 58});
}

TEST_CASE("encode and decode are inverse", "[text]") {
    const nn::Vocabulary& vocab = shakespeare().vocab;
    const std::string s = "hii there\nROMEO: O, she doth teach the torches!";
    const std::vector<int> tokens = vocab.encode(std::string_view(s));
    CHECK(tokens.size() == s.size());
    CHECK(vocab.decode(tokens) == s);
    CHECK(vocab.encode(std::string_view("a\n")) == std::vector<int>{39, 0});

    // Characters beyond ASCII, sorted by code point.
    const std::u32string text = U"h\u00e9llo \u20ac\U0001D11E";
    const nn::Vocabulary wide(text);
    CHECK(wide.size() == 7);
    const std::string utf8 = nn::encode_utf8(text);
    CHECK(wide.decode(wide.encode(std::string_view(utf8))) == utf8);
    CHECK(wide.encode(std::u32string_view(U"\U0001D11E")) == std::vector<int>{6});
    CHECK(wide.encode(std::u32string_view(U" ")) == std::vector<int>{0});
    // The whole vocabulary in token order, as a checkpoint stores it: the
    // sorted characters, which rebuild the same vocabulary.
    CHECK(wide.utf8() == nn::encode_utf8(U" hlo\u00e9\u20ac\U0001D11E"));
    CHECK(nn::Vocabulary(nn::decode_utf8(wide.utf8())).utf8() == wide.utf8());
}

TEST_CASE("a prompt is its tokens, and an empty one the lecture's token 0", "[text]") {
    const nn::Vocabulary& vocab = shakespeare().vocab;
    CHECK(vocab.prompt("") == std::vector<int>{0});
    CHECK(vocab.decode(vocab.prompt("")) == "\n");
    CHECK(vocab.prompt("a\n") == std::vector<int>{39, 0});
    REQUIRE_THROWS_WITH(vocab.prompt("#"), Contains("the prompt has 1 character outside the vocabulary"));
}

TEST_CASE("a character outside the vocabulary is named in the error", "[text]") {
    const nn::Vocabulary& vocab = shakespeare().vocab;
    REQUIRE_THROWS_WITH(vocab.encode(std::string_view("caf\xc3\xa9 #1#"), "the prompt"),
                        Contains("the prompt has 3 characters outside the vocabulary") &&
                            Contains("'\xc3\xa9', '#', '1'") && Contains("abcdefghijklmnopqrstuvwxyz"));
}

TEST_CASE("invalid UTF-8 is refused with its byte offset", "[text]") {
    auto bad = [](std::string bytes) { return nn::decode_utf8(bytes, "f.txt"); };
    CHECK(bad("ok \xe2\x82\xac") == U"ok \u20ac");
    REQUIRE_THROWS_WITH(bad("ab\xff"), Contains("f.txt is not valid UTF-8: byte 2 is 0xff, which cannot start"));
    REQUIRE_THROWS_WITH(bad("ab\x82"), Contains("byte 2 is 0x82, which cannot start"));
    REQUIRE_THROWS_WITH(bad("ab\xe2\x82"), Contains("the character at byte 2 (0xe2) is incomplete"));
    REQUIRE_THROWS_WITH(bad("a\xc3(b"), Contains("the character at byte 1 (0xc3) is incomplete"));
    REQUIRE_THROWS_WITH(bad("\xc0\xaf"), Contains("bad character encoding at byte 0"));     // overlong '/'
    REQUIRE_THROWS_WITH(bad("x\xed\xa0\x80"), Contains("bad character encoding at byte 1"));  // surrogate
    REQUIRE_THROWS_WITH(bad("\xf4\x90\x80\x80"), Contains("bad character encoding"));        // > U+10FFFF
}

TEST_CASE("load_text refuses missing, empty and non-UTF-8 files", "[text]") {
    test::ScratchDir dir;
    REQUIRE_THROWS_WITH(nn::load_text(dir / "none.txt"), Contains("none.txt") && Contains("No such file"));
    write(dir / "empty.txt", "");
    REQUIRE_THROWS_WITH(nn::load_text(dir / "empty.txt"), Contains("empty.txt is empty"));
    write(dir / "latin1.txt", "caf\xe9\n");
    REQUIRE_THROWS_WITH(nn::load_text(dir / "latin1.txt"),
                        Contains("latin1.txt is not valid UTF-8: the character at byte 3 (0xe9) is incomplete"));
}

TEST_CASE("get_batch draws targets shifted by one, reproducibly", "[text]") {
    test::ScratchDir dir;
    // Every 4-character window of this text is distinct, so each row can be located.
    std::string text;
    for (char a = 'a'; a <= 'z'; ++a)
        for (char b = 'A'; b <= 'Z'; ++b) text += std::string{a, b};
    write(dir / "t.txt", text);
    const nn::TextData data = nn::load_text(dir / "t.txt");
    CHECK(data.train.size() + data.val.size() == text.size());
    CHECK(data.train.size() == static_cast<std::size_t>(0.9 * text.size()));

    for (nn::Split split : {nn::Split::train, nn::Split::val}) {
        const std::vector<int>& tokens = data.tokens(split);
        nn::Rng rng(7), again(7);
        const nn::Batch batch = nn::get_batch(data, split, 5, 4, rng);
        CHECK(batch.B == 5);
        CHECK(batch.T == 4);
        REQUIRE(batch.x.size() == 20);
        REQUIRE(batch.y.size() == 20);
        for (int b = 0; b < 5; ++b) {
            // Find the row's window in the split, and check the targets are the next characters.
            const auto row = batch.x.begin() + b * 4;
            const auto at = std::search(tokens.begin(), tokens.end(), row, row + 4);
            REQUIRE(at != tokens.end());
            REQUIRE(at + 5 <= tokens.end());
            CHECK(std::equal(at + 1, at + 5, batch.y.begin() + b * 4));
        }
        const nn::Batch same = nn::get_batch(data, split, 5, 4, again);
        CHECK(same.x == batch.x);
        CHECK(same.y == batch.y);
    }
    nn::Rng rng(1);
    REQUIRE_THROWS_WITH(nn::get_batch(data, nn::Split::val, 2, static_cast<int>(data.val.size()), rng),
                        Contains("too few for a context"));
}

TEST_CASE("get_batch covers every offset of a split", "[text]") {
    test::ScratchDir dir;
    // 62 distinct characters in code-point order, so token i is the character at offset i.
    write(dir / "t.txt", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
    const nn::TextData data = nn::load_text(dir / "t.txt");
    nn::Rng rng(3);
    std::set<int> firsts;
    for (int k = 0; k < 200; ++k) firsts.insert(nn::get_batch(data, nn::Split::train, 8, 3, rng).x[0]);
    // train has 55 tokens; offsets 0..51 can start a window of 3 with a target.
    CHECK(firsts.size() == data.train.size() - 3);
    CHECK(*firsts.rbegin() == static_cast<int>(data.train.size()) - 4);
}

TEST_CASE("estimate_loss averages fixed batches of each split", "[text]") {
    test::ScratchDir dir;
    std::string text(1000, 'a');
    text.replace(900, 100, std::string(100, 'b'));  // train is all 'a' (token 0), val all 'b' (1)
    write(dir / "t.txt", text);
    const nn::TextData data = nn::load_text(dir / "t.txt");
    int calls = 0;
    auto mean_token = [&](const nn::Batch& batch) {
        ++calls;
        double sum = 0;
        for (int t : batch.x) sum += t + 0.5;
        return static_cast<float>(sum / static_cast<double>(batch.x.size()));
    };
    const nn::Losses losses = nn::estimate_loss(data, 7, 4, 5, mean_token);
    CHECK(calls == 14);
    CHECK(losses.train == 0.5f);
    CHECK(losses.val == 1.5f);

    // The same batches on every call.
    std::vector<std::vector<int>> seen;
    auto record = [&](const nn::Batch& batch) { seen.push_back(batch.x); return 0.0f; };
    nn::estimate_loss(shakespeare(), 3, 4, 8, record);
    nn::estimate_loss(shakespeare(), 3, 4, 8, record);
    REQUIRE(seen.size() == 12);
    CHECK(std::equal(seen.begin(), seen.begin() + 6, seen.begin() + 6));
    CHECK(seen[0] != seen[1]);
}
