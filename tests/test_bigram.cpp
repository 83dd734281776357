// 03-bigram: the model's backward against finite differences, and runs of the lesson.
#include <catch2/catch.hpp>

#include "03-bigram/model.hpp"
#include "common/fileio.hpp"
#include "lm_helpers.hpp"

TEST_CASE("03: the bigram model's backward matches finite differences", "[03-bigram]") {
    nn::Rng rng(11);
    BigramLanguageModel model(7, rng);
    test::check_model_gradients(model, test::random_batch(3, 4, 7, rng));
}

TEST_CASE("03: logits are the table rows of the input tokens", "[03-bigram]") {
    nn::Rng rng(12);
    BigramLanguageModel model(5, rng);
    const std::vector<int> idx{3, 1, 3};
    const nn::Matrix& logits = model.forward(idx);
    CHECK(logits.rows() == 3);
    CHECK(logits.row(2) == model.token_embedding_table.weight.value.row(3));
    // generate appends exactly max_new_tokens tokens from the vocabulary, reproducibly.
    nn::Rng a(1), b(1);
    const std::vector<int> out = model.generate({0}, 30, a);
    CHECK(out.size() == 31);
    CHECK(std::all_of(out.begin(), out.end(), [](int t) { return t >= 0 && t < 5; }));
    CHECK(model.generate({0}, 30, b) == out);
}

TEST_CASE("03: a short run prints shapes, losses and a sample, and learns", "[03-bigram][run]") {
    const std::string output = test::check_short_run("03-bigram");
    // The backward's shapes, for B = 32, T = 8, V = 65.
    CHECK_THAT(output, Catch::Matchers::Contains("dlogits                                      (256, 65)  (B*T, V)") &&
                           Catch::Matchers::Contains("d token_embedding_table                      (65, 65)  (V, V)"));
    test::check_learns("03-bigram", 4.3, 3.0);
}

TEST_CASE("03: --help lists every flag with its default", "[03-bigram][run]") {
    test::check_help("03-bigram", {"--batch-size", "32", "--block-size", "--max-iters", "3000",
                                   "--eval-interval", "300", "--eval-iters", "200", "--lr", "0.01",
                                   "--weight-decay", "--seed", "1337", "--max-new-tokens", "500",
                                   "--prompt", "--temperature", "--top-k", "--metrics", "--data"});
}

TEST_CASE("03: bad input is one line and exit status 2", "[03-bigram][run]") {
    test::check_refuses_bad_input("03-bigram");
}

TEST_CASE("03: a batch whose (B*T, V) logits cannot fit is refused up front", "[03-bigram][run]") {
    test::ScratchDir dir;
    std::u32string text;  // 100,000 characters, 20,000 of them distinct: the table fits, the logits do not
    for (int i = 0; i < 100000; ++i) text += static_cast<char32_t>(0x10000 + i % 20000);
    test::write_text(dir / "tinyshakespeare.txt", nn::encode_utf8(text));
    test::check_refuses_what_cannot_fit("03-bigram", "--data " + dir.path.string() + " --batch-size 64 --block-size 8192",
                                        "the bigram table and the logits of B = 64 sequences of T = 8192 over V = 20000 characters");
}

TEST_CASE("03: a text of 50,000 distinct characters is refused before its (V, V) table is allocated",
          "[03-bigram][run]") {
    test::ScratchDir dir;
    std::u32string text;
    for (char32_t c = 0x10000; c < 0x10000 + 50000; ++c) text += c;  // 4-byte UTF-8, no surrogates
    test::write_text(dir / "tinyshakespeare.txt", nn::encode_utf8(text));
    const auto r = test::run_command(
        test::memory_capped(std::string(NN2GPT_BIN_DIR) + "/03-bigram --data " + dir.path.string()));
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Catch::Contains("the bigram table for V = 50000 characters would need 40.0 GB"));
    CHECK_THAT(r.output, !Catch::Contains("out of memory"));
}
