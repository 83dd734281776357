// 07-encoder-decoder as a program: a short run on the dates that prints the
// shapes and ends with the exact-match line, the same for the same seed;
// --pairs with its line-numbered errors; checkpoints that `translate` reads,
// with its cross-attention map and its refusals of bad input; the plots.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "lm_helpers.hpp"

namespace {
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;

const std::string kLesson = "07-encoder-decoder";
// A model small enough to learn the dates a little in a second or two.
const std::string kSmall = " --threads 1 --d-model 32 --d-ff 64 --n-layer 1 --batch-size 32 --eval-iters 2 --show 2";

// One short training run on the dates with --out, shared by the tests below.
struct TrainedRun {
    test::ScratchDir dir;
    test::RunResult result;
    std::filesystem::path ckpt() const { return dir / "ckpt"; }
    TrainedRun() {
        result = test::run_lesson(kLesson, kSmall + " --max-iters 300 --eval-interval 150 --warmup-iters 100 --out " +
                                               ckpt().string() + " --plot-positions " + (dir / "pe.png").string());
    }
};
const TrainedRun& trained() {
    static const TrainedRun run;
    return run;
}

test::RunResult translate(const std::string& args) {
    return test::run_lesson(kLesson, "translate --checkpoint " + trained().ckpt().string() + " " + args);
}

// translate with `args`, its stdout and stderr apart.
struct Translation {
    int status = -1;
    std::string out, err;
};
Translation translate_apart(const std::string& args) {
    test::ScratchDir dir;
    const std::string err = (dir / "stderr").string();
    Translation t;
    const test::RunResult r = test::run_command("{ " + std::string(NN2GPT_BIN_DIR) + "/" + kLesson + " translate --checkpoint " +
                                                trained().ckpt().string() + " " + args + " 2>" + err + "; }");
    t.status = r.status, t.out = r.output;
    std::ifstream in(err);
    t.err.assign(std::istreambuf_iterator<char>(in), {});
    return t;
}

}  // namespace

TEST_CASE("07-encoder-decoder trains on the dates: shapes, losses, the exact-match line", "[07-encoder-decoder][run]") {
    const test::RunResult& r = trained().result;
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("dates from 1900 to 2099: 73049 sentence pairs"));
    CHECK_THAT(r.output, Contains("train: 62091 pairs, val: 3653, test: 7305"));
    CHECK_THAT(r.output, Contains("wei = softmax(pad_mask(q k^T / sqrt(hs)))") && Contains("(B*nh*Tt, Ts)"));
    CHECK_THAT(r.output, Contains("step 0: train loss") && Contains("step 300: train loss"));
    CHECK_THAT(r.output, Contains("checkpoints in"));
    static const std::regex last(R"(exact match on the test set: (\d+) / 7305 \([0-9.]+%\)\n$)");
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, last));
    CHECK(std::stoi(m[1]) > 6500);  // 300 steps of a small model: about 99.9%
    CHECK(std::filesystem::file_size(trained().dir / "pe.png") > 1000);
    // The losses fall.
    CHECK(test::val_loss_at(r.output, 300) < test::val_loss_at(r.output, 0) - 2.0);
}

TEST_CASE("07-encoder-decoder translate: one line from a checkpoint, a map, and bad input refused", "[07-encoder-decoder][run]") {
    REQUIRE(trained().result.status == 0);
    test::ScratchDir dir;
    const test::RunResult r = translate("--text 'november twenty-eighth two thousand twenty-six' --cross-attention-map " +
                                        (dir / "map.png").string());
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains(" de "));  // a Spanish date, right or not after 300 steps
    CHECK(std::filesystem::file_size(dir / "map.png") > 1000);
    const test::RunResult beam = translate("--beam 3 --text 'march third nineteen ninety-nine'");
    CHECK(beam.status == 0);
    CHECK(std::count(beam.output.begin(), beam.output.end(), '\n') == 1);
    auto refuses = [&](const std::string& args, const std::string& message) {
        const test::RunResult bad = translate(args);
        INFO(args << "\n" << bad.output);
        CHECK(bad.status == 2);
        CHECK_THAT(bad.output, Contains(message));
        CHECK(std::count(bad.output.begin(), bad.output.end(), '\n') == 1);
    };
    refuses("--text 'march thirty-third nineteen ninety-nine'", "--text has 1 word outside the vocabulary: 'thirty-third'\n");
    // A capitalised word the vocabulary has in lower case: refused with a hint.
    refuses("--text 'March third nineteen Ninety-nine'",
            "--text has 2 words outside the vocabulary: 'March' (did you mean 'march'?), "
            "'Ninety-nine' (did you mean 'ninety-nine'?)\n");
    refuses("--text 'MARCH Thirty-third'",
            "--text has 2 words outside the vocabulary: 'MARCH' (did you mean 'march'?), 'Thirty-third'\n");
    refuses("--text ''", "--text is empty");
    // The special tokens are not words: "<eos>" would end the sentence, "<pad>" hide it.
    refuses("--text '<eos>'", "--text holds the word <eos>, one of the special tokens");
    refuses("--text '<pad> <pad>'", "--text holds the word <pad>, one of the special tokens");
    refuses("--text 'may first <bos> nineteen ten'", "--text holds the word <bos>");
    refuses("--text '   '", "--text is empty");
    refuses("--text 'march march march march march march march march march march march march march march march march'",
            "--text has 16 words, more than the 15 this model takes (--max-len 16)");
    // A map that cannot be written is refused before the translation, not after it.
    refuses("--text 'may first nineteen ten' --cross-attention-map /no/such/dir/map.png",
            "cannot write /no/such/dir/map.png");
    refuses("--text 'may first nineteen ten' --encoder-attention-map /no/such/dir/enc.png",
            "cannot write /no/such/dir/enc.png");
    const test::RunResult missing = test::run_lesson(kLesson, "translate --checkpoint /no/such/dir --text 'may first nineteen ten'");
    CHECK(missing.status == 2);
    CHECK_THAT(missing.output, Contains("no checkpoint at /no/such/dir"));
}

TEST_CASE("07-encoder-decoder --pairs trains on a TSV file and refuses a malformed line by number", "[07-encoder-decoder][run]") {
    test::ScratchDir dir;
    std::string tsv;
    const char* en[] = {"the cat", "the dog", "a cat", "a dog", "the red cat", "the red dog", "a red cat", "a red dog"};
    const char* es[] = {"el gato", "el perro", "un gato", "un perro", "el gato rojo", "el perro rojo", "un gato rojo", "un perro rojo"};
    for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 8; ++i) tsv += std::string(en[i]) + (k % 2 ? " !" : " .") + "\t" + es[i] + (k % 2 ? " !" : " .") + "\n";
    test::write_text(dir / "p.tsv", tsv);
    const std::string args = kSmall + " --max-iters 20 --eval-interval 10 --pairs " + (dir / "p.tsv").string();
    const test::RunResult r = test::run_lesson(kLesson, args);
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("32 sentence pairs") && Contains("vocabularies: 10 source words, 10 target words"));
    CHECK_THAT(r.output, Contains("train: 26 pairs, val: 2, test: 4"));
    CHECK_THAT(r.output, Contains("exact match on the test set: "));
    // The same seed gives the same run.
    const test::RunResult again = test::run_lesson(kLesson, args);
    auto without_seconds = [](const std::string& s) { return std::regex_replace(test::without_timings(s), std::regex(R"(translated in [0-9.]+ s|[0-9.]+ s \([0-9.]+ s of it|step \d+/\d+ \|[^\n]*\n)"), ""); };
    CHECK(without_seconds(again.output) == without_seconds(r.output));
    test::write_text(dir / "bad.tsv", tsv + "un gato\n");
    const test::RunResult bad = test::run_lesson(kLesson, kSmall + " --pairs " + (dir / "bad.tsv").string());
    CHECK(bad.status == 2);
    CHECK_THAT(bad.output, Contains("bad.tsv: line 33 has no tab"));
    // A special token written as a word, on either side, refused by line number.
    for (const std::string& line : {std::string("un gato\t<pad>\n"), std::string("<eos> gato\tun gato\n")}) {
        test::write_text(dir / "special.tsv", tsv + "\n" + line);
        const test::RunResult special = test::run_lesson(kLesson, kSmall + " --pairs " + (dir / "special.tsv").string());
        INFO(special.output);
        CHECK(special.status == 2);
        CHECK_THAT(special.output, Contains("special.tsv: line 34 holds the word <"));
    }
}

TEST_CASE("07-encoder-decoder refuses a model that cannot fit, up front, with the bytes it needs",
          "[07-encoder-decoder][run]") {
    const test::RunResult r = test::run_lesson(kLesson, "--d-model 16384");
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("trained on batches of 64 pairs of up to 12 words would need") && Contains(" bytes)"));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

TEST_CASE("07-encoder-decoder: an untrained model, which never ends a sentence, decodes in bounded time",
          "[07-encoder-decoder][run]") {
    // Every test date decoded to its length + 50 words, with the cache; the
    // plain decoder took minutes and gigabytes here.
    const test::RunResult r = test::run_command(test::memory_capped(
        std::string(NN2GPT_BIN_DIR) + "/07-encoder-decoder --threads 1 --max-len 1024 --max-iters 0 --show 1", 2048));
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("exact match on the test set: 0 / 7305"));
}

TEST_CASE("07-encoder-decoder: --help lists the settings, and bad flags exit with 2", "[07-encoder-decoder][run]") {
    test::check_help(kLesson, {"--norm", "post", "--position", "sinusoidal", "--label-smoothing", "0.1", "--beta2",
                               "0.98", "--beam", "--pairs", "--plot-positions", "translate"});
    for (const std::string& bad : {std::string("--norm middle"), std::string("--d-model 30 --n-head 4"),
                                   std::string("--label-smoothing 1"), std::string("--pairs /no/such.tsv")}) {
        const test::RunResult r = test::run_lesson(kLesson, bad);
        INFO(bad << "\n" << r.output);
        CHECK(r.status == 2);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    }
}

TEST_CASE("07-encoder-decoder translate --verbose: each word's probability, and warnings outside the grammar",
          "[07-encoder-decoder][run]") {
    REQUIRE(trained().result.status == 0);
    // Each word written, with its probability, then <eos>; their mean log-probability.
    const Translation date = translate_apart("--verbose --text 'march third nineteen ninety-nine'");
    INFO(date.out << date.err);
    REQUIRE(date.status == 0);
    std::vector<std::string> written;
    {
        std::istringstream words(date.out);
        for (std::string w; words >> w;) written.push_back(w);
    }
    REQUIRE(written.size() >= 5);
    static const std::regex word_line(R"(  (\S+) +p ([0-9.]+)\n)"), mean_line(R"(mean log-probability (-[0-9.]+) over (\d+) words and <eos> \(a warning below -0\.2\)\n$)");
    std::vector<std::string> listed;
    double sum = 0;
    for (auto it = std::sregex_iterator(date.err.begin(), date.err.end(), word_line); it != std::sregex_iterator(); ++it) {
        listed.push_back((*it)[1]);
        const double p = std::stod((*it)[2]);
        CHECK(p > 0);
        CHECK(p <= 1);
        sum += std::log(p);
    }
    written.push_back("<eos>");
    CHECK(listed == written);
    std::smatch m;
    REQUIRE(std::regex_search(date.err, m, mean_line));
    CHECK(std::stoul(m[2]) == written.size() - 1);
    CHECK(std::stod(m[1]) == Approx(sum / static_cast<double>(listed.size())).margin(2e-3));
    CHECK(std::stod(m[1]) > -0.2);  // a date the model knows: no warning
    CHECK_THAT(date.err, !Contains(": warning:"));
    // Without --verbose, nothing but the translation.
    const Translation quiet = translate_apart("--text 'march third nineteen ninety-nine'");
    CHECK(quiet.status == 0);
    CHECK(quiet.out == date.out);
    CHECK(quiet.err.empty());

    // Outside the grammar: an empty translation, or a low mean log-probability,
    // is a warning on stderr; the exit status stays 0.
    int empty = 0, low = 0;
    for (const char* text : {"march first", "march", "first", "twenty", "oh", "hundred", "two thousand"}) {
        const Translation t = translate_apart(std::string("--verbose --text '") + text + "'");
        INFO(text << "\n" << t.out << t.err);
        CHECK(t.status == 0);
        REQUIRE(std::count(t.out.begin(), t.out.end(), '\n') == 1);
        static const std::regex mean(R"(mean log-probability (-[0-9.]+) over)");
        REQUIRE(std::regex_search(t.err, m, mean));
        const double mean_logp = std::stod(m[1]);
        if (t.out == "\n") {
            ++empty;
            CHECK_THAT(t.err, Contains("mean log-probability") && Contains("over <eos> alone"));
            CHECK_THAT(t.err, Contains("07-encoder-decoder: warning: the translation is empty: the model wrote <eos> first"));
        } else if (mean_logp < -0.2) {
            ++low;
            CHECK_THAT(t.err, Contains("07-encoder-decoder: warning: low confidence: mean log-probability " +
                                       std::string(m[1]) + " per word, below -0.2"));
        } else {
            CHECK_THAT(t.err, !Contains(": warning:"));
        }
    }
    CHECK(empty >= 1);  // "hundred" and "two thousand" here
    CHECK(low >= 3);    // the others
}

TEST_CASE("07-encoder-decoder --task pronouns: the held-out split, agreement, the heads; translate --explain and "
          "--ablate-head", "[07-encoder-decoder][run]") {
    test::ScratchDir dir;
    const std::string ckpt = (dir / "ckpt").string();
    const test::RunResult r =
        test::run_lesson(kLesson, kSmall + " --task pronouns --max-iters 60 --eval-interval 30 --warmup-iters 30 --out " +
                                      ckpt + " --summary-json " + (dir / "s.json").string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("\"it\" and two nouns: 5200 sentence pairs"));
    CHECK_THAT(r.output, Contains("train: 3344 pairs, val: 176, test: 1680"));
    CHECK_THAT(r.output, Contains("the C held the F and it was A                      420"));
    CHECK_THAT(r.output, Contains("the two nouns of two genders                       928"));
    CHECK_THAT(r.output, Contains("encoder self-attention, from \"it\":") && Contains("cross-attention, writing the adjective:"));
    CHECK_THAT(r.output, Contains("head zeroed") && Contains("\n  self:1.1 ") && Contains("\n  cross:1.* "));
    static const std::regex last(R"(exact match on the test set: \d+ / 1680 \([0-9.]+%\)\n$)");
    CHECK(std::regex_search(r.output, last));
    // The summary holds the shares printed in the table's last row.
    const std::string json = nn::read_file(dir / "s.json");
    auto field = [&](const std::string& key) {
        const auto at = json.find("\"" + key + "\": ");
        REQUIRE(at != std::string::npos);
        return std::stod(json.substr(at + key.size() + 4));
    };
    std::smatch all;
    REQUIRE(std::regex_search(r.output, all, std::regex(R"(\n  all +1680 +(\d+) \([0-9.]+%\) +(\d+) \()")));
    CHECK(field("test_exact_match") == Approx(std::stod(all[1]) / 1680).epsilon(1e-6));
    CHECK(field("test_agreement") == Approx(std::stod(all[2]) / 1680).epsilon(1e-6));

    auto translate_p = [&](const std::string& args) {
        return test::run_lesson(kLesson, "translate --checkpoint " + ckpt + " --text 'the pizza came out of the oven and "
                                         "it was delicious' " + args);
    };
    const test::RunResult e = translate_p("--explain it");
    INFO(e.output);
    REQUIRE(e.status == 0);
    CHECK_THAT(e.output, Contains("\"it\" (word 9 of 11) in the encoder's self-attention"));
    CHECK_THAT(e.output, Contains("the decoder's cross-attention when it writes"));
    // Each head's weights are the softmax of its printed scores (rounded to 0.01).
    const std::size_t table = e.output.find("  layer 1\n");
    REQUIRE(table != std::string::npos);
    std::istringstream lines(e.output.substr(table));
    std::string line;
    std::getline(lines, line), std::getline(lines, line);  // "layer 1", the header
    const int nh = 4;
    std::vector<std::vector<double>> scores(nh), weights(nh);
    for (int j = 0; j < 11 && std::getline(lines, line); ++j) {
        std::istringstream words(line);
        std::string word;
        words >> word;
        for (int h = 0; h < nh; ++h) {
            double s = 0, w = 0;
            words >> s >> w;
            scores[h].push_back(s), weights[h].push_back(w);
        }
    }
    for (int h = 0; h < nh; ++h) {
        REQUIRE(scores[h].size() == 11);
        double z = 0;
        for (double s : scores[h]) z += std::exp(s);
        for (std::size_t j = 0; j < 11; ++j) CHECK(std::exp(scores[h][j]) / z == Approx(weights[h][j]).margin(0.02));
    }
    auto refuses = [&](const test::RunResult& bad, const std::string& message) {
        INFO(bad.output);
        CHECK(bad.status == 2);
        CHECK_THAT(bad.output, Contains(message));
        CHECK(std::count(bad.output.begin(), bad.output.end(), '\n') == 1);
    };
    refuses(translate_p("--explain she"), "--explain 'she' is not a word of --text");
    const test::RunResult map = translate_p("--encoder-attention-map " + (dir / "enc.png").string());
    INFO(map.output);
    CHECK(map.status == 0);
    CHECK_THAT(map.output, Contains("wrote the encoder's self-attention, 1 layers x 4 heads, to"));
    CHECK(std::filesystem::file_size(dir / "enc.png") > 1000);
    refuses(translate_p("--ablate-head 2.1"), "there is no head 2.1: this model has 1 layers of 4 heads on each side");
    refuses(translate_p("--ablate-head two"), "--ablate-head takes LAYER.HEAD");
    refuses(translate_p("--ablate-head 1.1,"), "--ablate-head takes LAYER.HEAD");
    CHECK(translate_p("--ablate-head 1.1,self:1.2,cross:1.*").status == 0);
    // Refused before training: a head the model will not have, and two sources of pairs.
    refuses(test::run_lesson(kLesson, kSmall + " --task pronouns --ablate-head cross:1.5"), "there is no head cross:1.5");
    refuses(test::run_lesson(kLesson, kSmall + " --task pronouns --pairs " + (dir / "p.tsv").string()),
            "--pairs and --task pronouns both name the sentence pairs");
    // Zeroing all of the only encoder layer's heads: the run says so and still ends with the exact-match line.
    const test::RunResult a = test::run_lesson(kLesson, kSmall + " --task pronouns --max-iters 10 --eval-interval 10 "
                                                                 "--ablate-head 1.*");
    INFO(a.output);
    CHECK(a.status == 0);
    CHECK_THAT(a.output, Contains("heads zeroed: 1.1,1.2,1.3,1.4"));
    CHECK(std::regex_search(a.output, last));
}

TEST_CASE("07-encoder-decoder --train-max-len: the lengths, the short pairs trained, the test set by length; "
          "bad values refused", "[07-encoder-decoder][run]") {
    const test::RunResult r = test::run_lesson(kLesson, kSmall + " --task digits --train-max-len 9 --max-iters 20 "
                                                                 "--eval-interval 20 --warmup-iters 10");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("strings of 1 to 15 digits: 13110 sentence pairs"));
    CHECK_THAT(r.output, Contains("positions a pair needs (source words, or target words + 1): pairs\n"
                                  "    2: 10, 3: 100, 4: 1000, 5: 1000, 6: 1000, 7: 1000, 8: 1000, 9: 1000, 10: 1000, "
                                  "11: 1000, 12: 1000, 13: 1000, 14: 1000, 15: 1000, 16: 1000\n"));
    // The test set whole (10% of 13110), split by length; its two groups add up to it.
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, std::regex(R"(train: (\d+) pairs, val: (\d+), test: 1311 )")));
    const std::regex within(R"(exact match within 9 positions: (\d+) / (\d+) \(\d+\.\d\d%\), words in place \d+\.\d\d%)");
    const std::regex beyond(R"(exact match beyond 9 positions: (\d+) / (\d+) \(\d+\.\d\d%\), words in place \d+\.\d\d%)");
    std::smatch w, b;
    REQUIRE(std::regex_search(r.output, w, within));
    REQUIRE(std::regex_search(r.output, b, beyond));
    CHECK(std::stoi(w[2]) + std::stoi(b[2]) == 1311);
    CHECK(std::stoi(w[2]) > 400);  // strings of up to 8 digits: 5110 of the 13110
    CHECK(std::regex_search(r.output, std::regex(R"(teacher-forced, <eos> left out, the pairs beyond 9 positions: )"
                                                 R"(words 1-8 right \d+\.\d\d% \(\d+ words\), word 9 and after)")));
    // Refused before training, in one line: below 1, --max-len or beyond, and a length no pair fits.
    for (const auto& [args, message] :
         {std::pair<std::string, std::string>{"--train-max-len 0", "--train-max-len: must be a whole number in [1, 4096], not 0"},
          {"--train-max-len 16", "--train-max-len 16 must be from 1 to --max-len - 1 = 15"},
          {"--max-len 12 --train-max-len 12", "--train-max-len 12 must be from 1 to --max-len - 1 = 11"},
          {"--train-max-len 6", "--train-max-len 6 leaves no training pair: the shortest needs 7 positions"}}) {
        const test::RunResult bad = test::run_lesson(kLesson, kSmall + " " + args);
        INFO(args << "\n" << bad.output);
        CHECK(bad.status == 2);
        CHECK_THAT(bad.output, Contains(message));
        CHECK(std::count(bad.output.begin(), bad.output.end(), '\n') == 1);
    }
}

TEST_CASE("07-encoder-decoder --write-lines and --grade: the split as lines, translations graded from a file",
          "[07-encoder-decoder][run]") {
    test::ScratchDir dir;
    const test::RunResult w = test::run_lesson(kLesson, "--task pronouns --write-lines " + (dir / "lines").string());
    INFO(w.output);
    REQUIRE(w.status == 0);
    CHECK_THAT(w.output, Contains("wrote 3344 training, 176 validation and 1680 test pairs"));
    // The test lines, translated right (the reference itself) and graded: every row at 100%.
    std::istringstream test_lines(nn::read_file(dir / "lines" / "test.txt"));
    std::string tsv;
    for (std::string line; std::getline(test_lines, line);) {
        const std::size_t at = line.find(" = ");
        tsv += line.substr(0, at) + "\t" + line.substr(at + 3) + "\n";
    }
    test::write_text(dir / "right.tsv", tsv);
    const test::RunResult g = test::run_lesson(kLesson, "--task pronouns --grade " + (dir / "right.tsv").string());
    INFO(g.output);
    REQUIRE(g.status == 0);
    CHECK_THAT(g.output, Contains("1680 of the 1680 held-out test sentences"));
    CHECK_THAT(g.output, Contains("the two nouns of two genders                       928     928 (100.00%)     928 (100.00%)"));
    CHECK_THAT(g.output, EndsWith("  all                                               1680    1680 (100.00%)    1680 (100.00%)\n"));
    // Refused in one line, status 2.
    for (const std::string& args : {"--grade " + (dir / "right.tsv").string(),
                                    "--task pronouns --grade " + (dir / "lines" / "test.txt").string(),
                                    "--task pronouns --grade " + (dir / "right.tsv").string() + " --write-lines " +
                                        (dir / "again").string()}) {
        const test::RunResult bad = test::run_lesson(kLesson, args);
        INFO(bad.output);
        CHECK(bad.status == 2);
        CHECK(std::count(bad.output.begin(), bad.output.end(), '\n') == 1);
    }
}
