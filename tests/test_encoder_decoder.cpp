// 07-encoder-decoder's pieces: the date generator against hand-written pairs,
// the split, the words and the TSV reader; and every backward against central
// finite differences: padding-masked and causal self-attention, cross-
// attention, post-norm and pre-norm layers, label-smoothed cross-entropy and
// the whole model's loss with respect to every parameter. Then decoding:
// padding does not change a sentence's translation, and one beam is greedy.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "07-encoder-decoder/checkpoint.hpp"
#include "07-encoder-decoder/dates.hpp"
#include "07-encoder-decoder/decode.hpp"
#include "07-encoder-decoder/digits.hpp"
#include "07-encoder-decoder/extrapolation.hpp"
#include "07-encoder-decoder/lines.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/pronouns.hpp"
#include "common/optim.hpp"
#include "common/runtime.hpp"
#include "lm_helpers.hpp"

namespace {

using Catch::Matchers::Contains;
using test::random_matrix;

constexpr test::GradOptions kLayer{.floor = 3e-2};
constexpr test::GradOptions kDeep{.floor = 3e-2, .tolerance = 4e-2};
constexpr test::GradOptions kModel{.floor = 3e-2, .tolerance = 4e-2, .samples = 12};

// The matrices here are tiny: with threads, every parallel loop would only
// wait for the others (seconds per test on a loaded machine). One thread.
const bool kOneThread = (nn::set_threads(1), true);

Config tiny_config(Norm norm = Norm::post, Position position = Position::sinusoidal) {
    return Config{.src_vocab_size = 9, .tgt_vocab_size = 8, .max_len = 6, .d_model = 8, .n_head = 2, .n_layer = 2,
                  .d_ff = 12, .dropout = 0.0f, .norm = norm, .position = position, .activation = Activation::gelu};
}

// Gives every parameter values of order one, so that no layer is nearly linear.
void randomize(std::vector<nn::Parameter*> params, nn::Rng& rng) {
    for (nn::Parameter* p : params) {
        rng.fill_normal(nn::as_span(p->value), 0.0f, 0.5f);
        if (p->value.rows() == 1) p->value.array() += 0.5f;  // gains near 1, biases off zero
    }
}

// Sentence pairs of different lengths (so the batch is padded), words >= 3.
std::vector<Example> random_examples(int n, const Config& c, nn::Rng& rng) {
    std::vector<Example> out;
    for (int i = 0; i < n; ++i) {
        Example e;
        const int ls = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(c.max_len - 1)));
        const int lt = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(c.max_len - 1)));
        for (int k = 0; k < ls; ++k) e.src.push_back(3 + static_cast<int>(rng.below(static_cast<std::uint64_t>(c.src_vocab_size - 3))));
        for (int k = 0; k < lt; ++k) e.tgt.push_back(3 + static_cast<int>(rng.below(static_cast<std::uint64_t>(c.tgt_vocab_size - 3))));
        out.push_back(e);
    }
    return out;
}

Batch batch_of(const std::vector<Example>& examples) {
    std::vector<const Example*> p;
    for (const Example& e : examples) p.push_back(&e);
    return make_batch(p);
}

}  // namespace

TEST_CASE("07: the date generator writes the hand-written pairs", "[07-encoder-decoder]") {
    struct Pair {
        dates::Date date;
        const char *english, *spanish;
    };
    const Pair pairs[] = {
        {{1900, 1, 1}, "january first nineteen hundred", "uno de enero de mil novecientos"},
        {{1905, 2, 2}, "february second nineteen oh five", "dos de febrero de mil novecientos cinco"},
        {{1910, 3, 3}, "march third nineteen ten", "tres de marzo de mil novecientos diez"},
        {{1916, 4, 11}, "april eleventh nineteen sixteen", "once de abril de mil novecientos dieciséis"},
        {{1922, 5, 12}, "may twelfth nineteen twenty-two", "doce de mayo de mil novecientos veintidós"},
        {{1931, 6, 20}, "june twentieth nineteen thirty-one", "veinte de junio de mil novecientos treinta y uno"},
        {{1999, 3, 3}, "march third nineteen ninety-nine", "tres de marzo de mil novecientos noventa y nueve"},
        {{2000, 2, 29}, "february twenty-ninth two thousand", "veintinueve de febrero de dos mil"},
        {{2001, 7, 21}, "july twenty-first two thousand one", "veintiuno de julio de dos mil uno"},
        {{2010, 8, 22}, "august twenty-second two thousand ten", "veintidós de agosto de dos mil diez"},
        {{2023, 9, 23}, "september twenty-third two thousand twenty-three", "veintitrés de septiembre de dos mil veintitrés"},
        {{2026, 11, 28}, "november twenty-eighth two thousand twenty-six", "veintiocho de noviembre de dos mil veintiséis"},
        {{2040, 10, 30}, "october thirtieth two thousand forty", "treinta de octubre de dos mil cuarenta"},
        {{2099, 12, 31}, "december thirty-first two thousand ninety-nine", "treinta y uno de diciembre de dos mil noventa y nueve"},
    };
    for (const Pair& p : pairs) {
        CHECK(dates::english(p.date) == p.english);
        CHECK(dates::spanish(p.date) == p.spanish);
    }
    const std::vector<dates::Date> all = dates::all_dates();
    CHECK(all.size() == 73049);  // 200 years, 49 of them leap (1900 is not, 2000 is)
    CHECK(all.front().year == 1900);
    CHECK(all.back().day == 31);
    CHECK(dates::days_in_month(1900, 2) == 28);
    CHECK(dates::days_in_month(2000, 2) == 29);
    // Every pair is different on both sides: a date has one sentence each way.
    const auto pairs_all = dates::date_pairs();
    std::set<std::string> en, es;
    for (const auto& [e, s] : pairs_all) en.insert(e), es.insert(s);
    CHECK(en.size() == all.size());
    CHECK(es.size() == all.size());
}

TEST_CASE("07: the split holds out at least 5% and 10%, the same every time, no date twice", "[07-encoder-decoder]") {
    const auto pairs = dates::date_pairs();
    const PairData a = make_pair_data(pairs, 16, "the dates"), b = make_pair_data(pairs, 16, "the dates");
    const std::size_t n = pairs.size();
    CHECK(a.test.size() * 10 >= n);
    CHECK(a.val.size() * 20 >= n);
    CHECK(a.train.size() + a.val.size() + a.test.size() == n);
    CHECK(a.test_text == b.test_text);
    std::set<std::vector<int>> train_src;
    for (const Example& e : a.train) train_src.insert(e.src);
    for (const Example& e : a.test) CHECK(train_src.count(e.src) == 0);
    for (const Example& e : a.val) CHECK(train_src.count(e.src) == 0);
    // UTF-8 words, one token each.
    CHECK(a.tgt_vocab.find("veintiséis") > 2);
    CHECK(a.src_vocab.find("twenty-eighth") > 2);
    CHECK(a.src_vocab.word(kPad) == "<pad>");
    CHECK(a.tgt_vocab.word(kEos) == "<eos>");
    // --max-len too short for the sentences
    CHECK_THROWS_WITH(make_pair_data(pairs, 6, "the dates"), Contains("more than --max-len 6 allows (5)"));
}

namespace {
// The index of the entry of `table` whose English word is `english`.
template <typename Table>
int index_of(const Table& table, const std::string& english) {
    for (std::size_t i = 0; i < table.size(); ++i)
        if (english == table[i].english) return static_cast<int>(i);
    FAIL("no entry " << english);
    return -1;
}
}  // namespace

TEST_CASE("07: the pronoun generator writes the hand-written pairs", "[07-encoder-decoder]") {
    using namespace pronouns;
    struct Pair {
        int frame;
        const char *food, *container, *adjective, *english, *spanish;
    };
    const Pair pairs[] = {
        {0, "pizza", "oven", "delicious", "the pizza came out of the oven and it was delicious",
         "la pizza salió del horno y estaba deliciosa"},
        {0, "pizza", "oven", "dirty", "the pizza came out of the oven and it was dirty",
         "la pizza salió del horno y estaba sucio"},
        {0, "bread", "box", "juicy", "the bread came out of the box and it was juicy",
         "el pan salió de la caja y estaba jugoso"},
        {1, "bread", "pot", "empty", "the pot held the bread and it was empty", "la olla contenía el pan y estaba vacía"},
        {1, "bread", "pot", "salty", "the pot held the bread and it was salty", "la olla contenía el pan y estaba salado"},
        {2, "soup", "skillet", "broken", "we took the soup out of the skillet because it was broken",
         "sacamos la sopa de la sartén porque estaba rota"},
        {2, "fish", "microwave", "raw", "we took the fish out of the microwave because it was raw",
         "sacamos el pescado del microondas porque estaba crudo"},
        {3, "cake", "bowl", "tasty", "we opened the bowl with the cake and it was tasty",
         "abrimos el tazón con la tarta y estaba sabrosa"},
        {3, "chicken", "fridge", "rusty", "we opened the fridge with the chicken and it was rusty",
         "abrimos la nevera con el pollo y estaba oxidada"},
        {3, "omelette", "tray", "dented", "we opened the tray with the omelette and it was dented",
         "abrimos la bandeja con la tortilla y estaba abollada"},
    };
    for (const Pair& p : pairs) {
        const Sentence s = make_sentence(p.frame, index_of(kFoods, p.food), index_of(kContainers, p.container),
                                         index_of(kAdjectives, p.adjective));
        CHECK(s.english == p.english);
        CHECK(s.spanish == p.spanish);
        // The positions name the words they say.
        const std::vector<std::string> words = split_words(s.english);
        CHECK(words[static_cast<std::size_t>(s.it_pos)] == "it");
        CHECK(words[static_cast<std::size_t>(s.food_pos)] == p.food);
        CHECK(words[static_cast<std::size_t>(s.container_pos)] == p.container);
        const std::vector<std::string> spanish = split_words(s.spanish);
        CHECK(spanish[static_cast<std::size_t>(s.food_pos_es)] == kFoods[static_cast<std::size_t>(s.food)].spanish);
        CHECK(spanish[static_cast<std::size_t>(s.container_pos_es)] == kContainers[static_cast<std::size_t>(s.container)].spanish);
        CHECK(split_words(s.spanish).back() == s.agreeing_word());
    }
    const Sentence dirty = make_sentence(0, 0, index_of(kContainers, "oven"), index_of(kAdjectives, "dirty"));
    CHECK(dirty.referent == Role::container);
    CHECK(dirty.referent_pos() == dirty.container_pos);
    CHECK(dirty.other_pos() == dirty.food_pos);
    CHECK(!dirty.same_gender());  // la pizza, el horno
    // 10 foods x 10 containers x 4 frames x 13 adjectives, every sentence different on both sides; both genders
    // and both orders of the nouns.
    const std::vector<Sentence> all = all_sentences();
    CHECK(all.size() == 5200);
    std::set<std::string> en, es;
    int food_first = 0, food_referent = 0, feminine_referent = 0, same = 0;
    for (const Sentence& s : all) {
        en.insert(s.english), es.insert(s.spanish);
        food_first += s.food_pos < s.container_pos;
        food_referent += s.referent == Role::food;
        feminine_referent += s.referent_noun().gender == Gender::feminine;
        same += s.same_gender();
    }
    CHECK(en.size() == all.size());
    CHECK(es.size() == all.size());
    CHECK(food_first == 2600);
    CHECK(food_referent == 7 * 400);
    CHECK(feminine_referent == 2600);
    CHECK(same == 2600);
}

TEST_CASE("07: the pronoun split holds out noun pairs and noun-adjective combinations, none trained on",
          "[07-encoder-decoder]") {
    using namespace pronouns;
    const std::vector<Sentence> all = all_sentences();
    const std::vector<Split> split = split_of(all), again = split_of(all);
    CHECK(split == again);
    std::set<std::pair<int, int>> train_pairs, test_pairs, train_combinations, test_combinations;
    auto combination = [](const Sentence& s) {
        return std::pair{s.referent == Role::food ? s.food : 10 + s.container, s.adjective};
    };
    int n_test = 0, n_val = 0, n_train = 0;
    for (std::size_t i = 0; i < all.size(); ++i) {
        const Sentence& s = all[i];
        if (split[i] == Split::test) ++n_test;
        if (split[i] == Split::val) ++n_val;
        if (split[i] != Split::train) continue;
        ++n_train;
        train_pairs.insert({s.food, s.container});
        train_combinations.insert(combination(s));
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
        const Sentence& s = all[i];
        if (held_out_pair(s.food, s.container)) {
            CHECK(split[i] == Split::test);
            test_pairs.insert({s.food, s.container});
        }
        if (held_out_combination(s)) {
            CHECK(split[i] == Split::test);
            test_combinations.insert(combination(s));
        }
        if (split[i] == Split::test) CHECK((held_out_pair(s.food, s.container) || held_out_combination(s)));
    }
    CHECK(test_pairs.size() == 20);
    CHECK(test_combinations.size() == 20);
    for (const auto& p : test_pairs) CHECK(train_pairs.count(p) == 0);
    for (const auto& c : test_combinations) CHECK(train_combinations.count(c) == 0);
    CHECK(train_pairs.size() == 80);  // every other pair is trained on
    CHECK(n_test == 1040 + 640);      // 20 pairs x 52 sentences; 20 combinations x 40, less the 160 in those pairs
    CHECK(n_val == 176);              // ceil(5%) of the other 3520
    CHECK(n_train == 3344);
    // make_pair_data keeps the given splits and says where each test pair came from.
    const PairData data = make_pair_data(sentence_pairs(all), 16, "the pronoun sentences", split);
    CHECK(data.test.size() == 1680);
    CHECK(data.val.size() == 176);
    CHECK(data.train.size() == 3344);
    REQUIRE(data.test_index.size() == data.test.size());
    for (std::size_t k = 0; k < data.test.size(); ++k) {
        CHECK(split[data.test_index[k]] == Split::test);
        CHECK(data.test_text[k].first == all[data.test_index[k]].english);
    }
    std::set<std::vector<int>> train_src;
    for (const Example& e : data.train) train_src.insert(e.src);
    for (const Example& e : data.test) CHECK(train_src.count(e.src) == 0);
    // Accented words are single tokens of the target vocabulary.
    for (const char* w : {"salió", "sartén", "tazón", "vacía", "vacío", "contenía", "del"}) CHECK(data.tgt_vocab.find(w) > 2);
    CHECK_THROWS_WITH(make_pair_data(sentence_pairs(all), 16, "x", std::span(split).first(10)),
                      Contains("10 splits given for 5200 pairs"));
}

// The lines of a file, without their newlines.
std::vector<std::string> file_lines(const std::filesystem::path& path) {
    std::vector<std::string> out;
    std::istringstream in(nn::read_file(path));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

TEST_CASE("07: --write-lines writes 07's own split as \"english = spanish\" lines, which read back to its pairs",
          "[07-encoder-decoder]") {
    using namespace pronouns;
    const std::vector<Sentence> all = all_sentences();
    const std::vector<Split> split = split_of(all);
    const PairData data = make_pair_data(sentence_pairs(all), 16, "the pronoun sentences", split);
    test::ScratchDir dir;
    const auto counts = write_lines(data, dir.path);
    CHECK(counts == std::array<std::size_t, 3>{3344, 176, 1680});
    // Each split's file holds exactly the sentences split_of puts there, each once, in 07's order.
    const std::array<std::pair<const char*, Split>, 3> files{{{"train.txt", Split::train}, {"val.txt", Split::val},
                                                              {"test.txt", Split::test}}};
    std::set<std::string> everywhere;
    for (const auto& [name, which] : files) {
        const std::vector<std::string> lines = file_lines(dir / name);
        std::set<std::pair<std::string, std::string>> read, expected;
        for (const std::string& line : lines) {
            const std::size_t at = line.find(" = ");
            REQUIRE(at != std::string::npos);
            CHECK(line.find(" = ", at + 1) == std::string::npos);
            read.insert({line.substr(0, at), line.substr(at + 3)});
            everywhere.insert(line.substr(0, at));
        }
        for (std::size_t i = 0; i < all.size(); ++i)
            if (split[i] == which) expected.insert({all[i].english, all[i].spanish});
        CHECK(lines.size() == expected.size());
        CHECK(read == expected);
    }
    CHECK(everywhere.size() == 5200);  // no sentence in two files
    const std::vector<std::string> test_lines = file_lines(dir / "test.txt");
    for (std::size_t k = 0; k < data.test_text.size(); ++k)
        CHECK(test_lines[k] == data.test_text[k].first + " = " + data.test_text[k].second);
    // The order is 07's shuffle, not the grammar's: neighbouring training lines are unrelated sentences.
    const std::vector<std::string> train_lines = file_lines(dir / "train.txt");
    int same_nouns = 0;
    for (std::size_t k = 1; k < train_lines.size(); ++k)
        same_nouns += train_lines[k].substr(0, 20) == train_lines[k - 1].substr(0, 20);
    CHECK(same_nouns < 200);
    // A source holding the word "=" cannot be written as a line.
    std::vector<std::pair<std::string, std::string>> pairs(20, {"a b", "c d"});
    pairs[3] = {"x = y", "z"};
    CHECK_THROWS_WITH(write_lines(make_pair_data(pairs, 16, "t"), dir / "eq"), Contains("holds the word '='"));
}

TEST_CASE("07: --grade scores translations from a file as 07 scores its own: exact, agreement, refusals",
          "[07-encoder-decoder]") {
    using namespace pronouns;
    test::ScratchDir dir;
    const std::filesystem::path file = dir / "t.tsv";
    // (pizza, microwave) is a held-out pair (food 0, container 7): la pizza, el microondas, two genders.
    const std::string pizza = "the pizza came out of the microwave and it was delicious";
    const std::string held = "the microwave held the pizza and it was dirty";
    REQUIRE(held_out_pair(index_of(kFoods, "pizza"), index_of(kContainers, "microwave")));
    test::write_text(file, pizza + "\tla pizza salió del microondas y estaba deliciosa\n"  // right
                     "\n"
                     "the microwave held the pizza and it was dirty\tel microondas contenía la pizza y estaba sucia\n"  // wrong gender
                     "we took the pizza out of the microwave because it was raw\tsacamos la la ¿ zzz\r\n"  // garbled
                     "we opened the microwave with the pizza and it was salty\tabrimos el microondas con la pizza y "
                     "estaba sabrosa\n");  // another adjective, the right gender
    const Graded g = grade_translations(file);
    CHECK(g.held_out == 1680);
    CHECK(g.scores.all.n == 4);
    CHECK(g.scores.all.exact == 1);
    CHECK(g.scores.all.agree == 2);  // the right one, and "sabrosa" for the pizza
    CHECK(g.scores.frame[0].exact == 1);
    CHECK(g.scores.frame[1].n == 1);
    CHECK(g.scores.frame[1].agree == 0);
    CHECK(g.scores.frame[3].agree == 1);
    CHECK(g.scores.frame[3].exact == 0);
    CHECK(g.scores.two_genders.n == 4);
    CHECK(g.scores.food.n == 3);
    CHECK(g.scores.container.n == 1);
    // The same translations scored through score_translation directly.
    PronounScores direct;
    const std::vector<Sentence> all = all_sentences();
    for (const Sentence& s : all)
        if (s.english == pizza) score_translation(direct, s, split_words(s.spanish));
    CHECK(direct.all.exact == 1);
    CHECK(direct.all.agree == 1);
    // Refused, naming the line: no tab, not of the grammar, trained on, given twice, nothing at all.
    const std::vector<Split> split = split_of(all);
    const auto trained = std::find(split.begin(), split.end(), Split::train) - split.begin();
    const std::pair<std::string, std::string> bad[] = {
        {pizza + " la pizza", "line 1 is not \"source<TAB>translation\""},
        {pizza + "\ta\tb", "line 1 is not"},
        {"the pizza was good\tx", "line 1: 'the pizza was good' is not a sentence of the pronoun grammar"},
        {"\n" + all[static_cast<std::size_t>(trained)].english + "\tx", "line 2: '" + all[static_cast<std::size_t>(trained)].english +
                                                                         "' is not held out: 07 trains on it"},
        {pizza + "\tx\n" + pizza + "\ty", "line 2: '" + pizza + "' is given twice"},
        {"\n\n", "holds no translations"},
    };
    for (const auto& [text, message] : bad) {
        test::write_text(file, text);
        CHECK_THROWS_WITH(grade_translations(file), Contains(message));
    }
}

TEST_CASE("07: words split on spaces and around punctuation; TSV lines are checked", "[07-encoder-decoder]") {
    CHECK(split_words("  ¿Qué tal?  don't  twenty-eighth,x") ==
          std::vector<std::string>{"¿", "Qué", "tal", "?", "don't", "twenty-eighth", ",", "x"});
    CHECK(split_words("").empty());
    test::ScratchDir dir;
    auto refuses = [&](const std::string& text, const std::string& message) {
        test::write_text(dir / "p.tsv", text);
        CHECK_THROWS_WITH(read_pairs(dir / "p.tsv"), Contains(message));
    };
    refuses("a b\tc d\nno tab here\n", "line 2 has no tab");
    refuses("a\tb\n\na\tb\tc\n", "line 3 has more than one tab");
    refuses("a\tb\n \t c\n", "line 2 has an empty source sentence");
    refuses("a\t ...\nx\t\n", "line 2 has an empty target sentence");
    refuses("a\tb\nc\td\xff\n", "line 2 is not valid UTF-8");
    refuses("\n\n", "holds no sentence pairs");
    test::write_text(dir / "p.tsv", "Hello!\t¡Hola!\r\n\nthe cat\tel gato\n");
    const auto pairs = read_pairs(dir / "p.tsv");
    REQUIRE(pairs.size() == 2);
    CHECK(pairs[0].second == "¡Hola!");
    CHECK(split_words(pairs[0].second) == std::vector<std::string>{"¡", "Hola", "!"});
}

TEST_CASE("07: self-attention masks the padding (encoder) or the future (decoder); backward matches", "[07-encoder-decoder]") {
    nn::Rng rng(21);
    const Config c = tiny_config();
    const int B = 3, T = 5;
    const int key_len[B] = {5, 2, 3};
    for (bool causal : {false, true}) {
        DYNAMIC_SECTION((causal ? "causal" : "padding")) {
            MultiHeadAttention sa(c, causal, rng);
            randomize({&sa.c_attn.weight, &sa.c_attn.bias, &sa.proj.weight, &sa.proj.bias}, rng);
            nn::Matrix x = random_matrix(B * T, c.d_model, rng), r = random_matrix(B * T, c.d_model, rng);
            const int* len = causal ? nullptr : key_len;
            const nn::Matrix y = sa.forward(x, B, T, len);
            // Query i of sequence b sees keys [0, min(i + 1 if causal, key_len[b])) only.
            for (int b = 0; b < B; ++b)
                for (int h = 0; h < c.n_head; ++h)
                    for (int i = 0; i < T; ++i) {
                        const auto w = sa.att.wei.row((b * c.n_head + h) * T + i);
                        const int seen = causal ? i + 1 : key_len[b];
                        CHECK(w.head(seen).sum() == Approx(1.0f).margin(1e-5));
                        CHECK(w.tail(T - seen).cwiseAbs().sum() == 0.0f);
                    }
            if (!causal) {  // what sits in the padding cannot reach a word's output
                nn::Matrix x2 = x;
                x2.row(1 * T + 3) *= 5.0f;  // sequence 1, position 3: padding
                const nn::Matrix y2 = sa.forward(x2, B, T, len);
                CHECK((y2.row(1 * T + 0) - y.row(1 * T + 0)).norm() < 1e-5f);
                CHECK((y2.row(1 * T + 1) - y.row(1 * T + 1)).norm() < 1e-5f);
                sa.forward(x, B, T, len);
            }
            for (nn::Parameter* p : {&sa.c_attn.weight, &sa.c_attn.bias, &sa.proj.weight, &sa.proj.bias}) p->grad.setZero();
            const nn::Matrix dx = sa.backward(r);
            auto loss = [&] { return test::project(sa.forward(x, B, T, len), r); };
            test::check_grad("x", loss, x, dx, kLayer);
            test::check_grad("c_attn.weight", loss, sa.c_attn.weight.value, sa.c_attn.weight.grad, kLayer);
            test::check_grad("c_attn.bias", loss, sa.c_attn.bias.value, sa.c_attn.bias.grad, kLayer);
            test::check_grad("proj.weight", loss, sa.proj.weight.value, sa.proj.weight.grad, kLayer);
        }
    }
}

TEST_CASE("07: cross-attention reads the source through the padding mask; backward matches, memory included", "[07-encoder-decoder]") {
    nn::Rng rng(22);
    const Config c = tiny_config();
    const int B = 2, Tq = 4, Tk = 3;
    const int key_len[B] = {3, 1};
    CrossAttention ca(c, rng);
    const std::vector<nn::Parameter*> params{&ca.query.weight, &ca.query.bias, &ca.key_value.weight,
                                             &ca.key_value.bias, &ca.proj.weight, &ca.proj.bias};
    randomize(params, rng);
    nn::Matrix x = random_matrix(B * Tq, c.d_model, rng), memory = random_matrix(B * Tk, c.d_model, rng);
    const nn::Matrix r = random_matrix(B * Tq, c.d_model, rng);
    const nn::Matrix y = ca.forward(x, memory, B, Tq, Tk, key_len);
    CHECK(ca.att.wei.rows() == B * c.n_head * Tq);  // (B*nh*Tq, Tk): every target word over the source
    CHECK(ca.att.wei.cols() == Tk);
    for (int h = 0; h < c.n_head; ++h)
        for (int i = 0; i < Tq; ++i) {  // sequence 1 has one source word: all the weight goes there
            CHECK(ca.att.wei((c.n_head + h) * Tq + i, 0) == Approx(1.0f));
            CHECK(ca.att.wei.row(h * Tq + i).sum() == Approx(1.0f));  // not causal: sequence 0 sees all 3
            CHECK(ca.att.wei(h * Tq + 0, 2) > 0.0f);
        }
    nn::Matrix dmemory = nn::Matrix::Zero(B * Tk, c.d_model);
    for (nn::Parameter* p : params) p->grad.setZero();
    const nn::Matrix dx = ca.backward(r, dmemory);
    CHECK(dmemory.row(Tk + 1).norm() == 0.0f);  // padding gets no gradient
    CHECK(dmemory.row(Tk + 2).norm() == 0.0f);
    auto loss = [&] { return test::project(ca.forward(x, memory, B, Tq, Tk, key_len), r); };
    test::check_grad("x (decoder)", loss, x, dx, kLayer);
    test::check_grad("memory (encoder)", loss, memory, dmemory, kLayer);
    const char* names[] = {"query.weight", "query.bias", "key_value.weight", "key_value.bias", "proj.weight", "proj.bias"};
    for (std::size_t i = 0; i < params.size(); ++i)
        test::check_grad(names[i], loss, params[i]->value, params[i]->grad, kLayer);
}

TEST_CASE("07: encoder and decoder layers, post-norm and pre-norm, match finite differences", "[07-encoder-decoder]") {
    nn::Rng rng(23);
    const int B = 2, Ts = 3, Tt = 4;
    const int src_len[B] = {3, 2};
    for (Norm norm : {Norm::post, Norm::pre}) {
        DYNAMIC_SECTION(kNormNames[static_cast<std::size_t>(norm)]) {
            const Config c = tiny_config(norm);
            EncoderLayer enc(c, rng);
            DecoderLayer dec(c, rng);
            nn::Matrix x = random_matrix(B * Ts, c.d_model, rng), y = random_matrix(B * Tt, c.d_model, rng);
            const nn::Matrix rx = random_matrix(B * Ts, c.d_model, rng), ry = random_matrix(B * Tt, c.d_model, rng);
            std::vector<nn::Parameter*> pe{&enc.sa.c_attn.weight, &enc.ffwd.fc.weight, &enc.ffwd.proj.bias,
                                           &enc.an1.ln.weight, &enc.an2.ln.bias};
            std::vector<nn::Parameter*> pd{&dec.sa.c_attn.weight, &dec.ca.query.weight, &dec.ca.key_value.weight,
                                           &dec.ffwd.fc.weight, &dec.an1.ln.weight, &dec.an2.ln.weight, &dec.an3.ln.bias};
            randomize(pe, rng);
            randomize(pd, rng);
            const nn::Matrix out = enc.forward(x, B, Ts, src_len);
            if (norm == Norm::post) {  // post-norm: the output is LayerNorm(x1 + ffwd(x1)), row by row
                CHECK(out == enc.an2.ln.y);
                CHECK(enc.an2.ln.x == &enc.an2.sum);  // what it normalised: x1 + ffwd(x1)
                const auto xhat = (enc.an2.sum.row(1).array() - enc.an2.ln.mean(1)) * enc.an2.ln.rstd(1);
                CHECK(std::abs(xhat.mean()) < 1e-5f);
                CHECK(std::abs(xhat.square().mean() - 1.0f) < 1e-3f);
            } else {  // pre-norm: a plain sum, x1 + ffwd(LayerNorm(x1))
                CHECK(out == enc.an2.sum);
            }
            const nn::Matrix dx = enc.backward(rx);
            auto enc_loss = [&] { return test::project(enc.forward(x, B, Ts, src_len), rx); };
            test::check_grad("encoder x", enc_loss, x, dx, kDeep);
            for (nn::Parameter* p : pe) test::check_grad("encoder parameter", enc_loss, p->value, p->grad, kDeep);

            nn::Matrix memory = random_matrix(B * Ts, c.d_model, rng);
            dec.forward(y, memory, B, Tt, Ts, src_len);
            nn::Matrix dmemory = nn::Matrix::Zero(B * Ts, c.d_model);
            const nn::Matrix dy = dec.backward(ry, dmemory);
            auto dec_loss = [&] { return test::project(dec.forward(y, memory, B, Tt, Ts, src_len), ry); };
            test::check_grad("decoder y", dec_loss, y, dy, kDeep);
            test::check_grad("decoder memory", dec_loss, memory, dmemory, kDeep);
            for (nn::Parameter* p : pd) test::check_grad("decoder parameter", dec_loss, p->value, p->grad, kDeep);
        }
    }
}

TEST_CASE("07: label-smoothed cross-entropy: its value, its gradient, <pad> left out", "[07-encoder-decoder]") {
    nn::Rng rng(24);
    const int N = 6, V = 5;
    nn::Matrix logits = random_matrix(N, V, rng, 2.0f);
    const std::vector<int> targets{3, 4, kPad, 3, 2, kPad};
    LabelSmoothedCrossEntropy ls;
    ls.smoothing = 0.1f;
    const double loss = ls.forward(logits, targets);
    double expected = 0;
    for (int n = 0; n < N; ++n) {
        if (targets[n] == kPad) continue;
        const auto z = logits.row(n).cast<double>();
        const double lse = std::log(z.array().exp().sum());
        for (int v = 0; v < V; ++v) expected -= ((v == targets[n] ? 0.9 : 0.0) + 0.1 / V) * (z(v) - lse);
    }
    CHECK(loss == Approx(expected / 4).epsilon(1e-6));
    CHECK(ls.count == 4);
    const nn::Matrix d = ls.backward();
    CHECK(d.row(2).norm() == 0.0f);
    CHECK(d.row(5).norm() == 0.0f);
    CHECK(d.row(0).sum() == Approx(0.0f).margin(1e-6));  // p and q both sum to 1
    test::check_grad("logits", [&] { return ls.forward(logits, targets); }, logits, d, kLayer);
    // eps = 0 is the plain cross-entropy of common/.
    ls.smoothing = 0.0f;
    nn::CrossEntropy ce;
    const std::vector<int> no_pad{3, 4, 1, 3, 2, 1};
    CHECK(ls.forward(logits, no_pad) == Approx(ce.forward(logits, no_pad)).epsilon(1e-6));
    CHECK((ls.backward() - ce.backward()).cwiseAbs().maxCoeff() < 1e-6f);
}

TEST_CASE("07: the whole model's loss has the gradients backward computes, for every parameter", "[07-encoder-decoder]") {
    for (auto [norm, position] : {std::pair{Norm::post, Position::sinusoidal}, std::pair{Norm::pre, Position::learned}}) {
        DYNAMIC_SECTION(kNormNames[static_cast<std::size_t>(norm)] << "-norm, " << kPositionNames[static_cast<std::size_t>(position)]) {
                    nn::Rng rng(25);
            Transformer model(tiny_config(norm, position), rng);
            randomize(model.parameters(), rng);
            const std::vector<Example> examples = random_examples(3, model.config, rng);
            const Batch batch = batch_of(examples);
            CHECK(std::count(batch.src.begin(), batch.src.end(), kPad) + std::count(batch.tgt_out.begin(), batch.tgt_out.end(), kPad) > 0);
            auto loss = [&] { return model.loss(batch); };
            test::check_model_gradients(model, loss, [] { return std::vector<bool>{}; }, kModel);
        }
    }
}

TEST_CASE("07: the sinusoidal table is the paper's formula", "[07-encoder-decoder]") {
    nn::Rng rng(26);
    Config c = tiny_config();
    c.max_len = 12;
    const PositionalEncoding pe(c, rng);
    for (int pos : {0, 1, 7, 11})
        for (int i = 0; 2 * i < c.d_model; ++i) {
            const double angle = pos / std::pow(10000.0, 2.0 * i / c.d_model);
            CHECK(pe.table.value(pos, 2 * i) == Approx(std::sin(angle)).margin(1e-6));
            CHECK(pe.table.value(pos, 2 * i + 1) == Approx(std::cos(angle)).margin(1e-6));
        }
}

TEST_CASE("07: decoding: padding does not change a translation, and one beam is greedy", "[07-encoder-decoder]") {
    nn::Rng rng(27);
    Config c = tiny_config();
    c.max_len = 8;
    Transformer model(c, rng);
    randomize(model.parameters(), rng);
    const std::vector<Example> examples = random_examples(6, c, rng);
    std::vector<const Example*> all;
    for (const Example& e : examples) all.push_back(&e);
    const auto together = greedy_decode(model, all);
    for (std::size_t i = 0; i < examples.size(); ++i) {
        const Example* one[] = {&examples[i]};
        CHECK(greedy_decode(model, one).front() == together[i]);  // alone: no padding at all
        CHECK(static_cast<int>(together[i].size()) <= c.max_len - 1);
    }
    CHECK(beam_decode(model, all, 1) == together);
    // A wider beam finds a translation at least as likely as greedy's.
    auto log_prob = [&](const Example& e, const std::vector<int>& out) {
        Example pair{e.src, out};
        const Example* p[] = {&pair};
        const Batch b = make_batch(p);
        model.encode(b.src, b.src_len, 1, b.Ts);
        const nn::Matrix& logits = model.decode(b.tgt_in, b.Tt);
        double sum = 0;
        for (int t = 0; t < b.Tt; ++t) {
            const auto z = logits.row(t).cast<double>();
            sum += z(b.tgt_out[static_cast<std::size_t>(t)]) - std::log(z.array().exp().sum());
        }
        return sum;
    };
    const auto beam = beam_decode(model, all, 4);
    for (std::size_t i = 0; i < examples.size(); ++i) {
        // Greedy's may stop at max_len without <eos>: compare only finished ones.
        if (static_cast<int>(together[i].size()) < c.max_len - 1 && static_cast<int>(beam[i].size()) < c.max_len - 1)
            CHECK(log_prob(examples[i], beam[i]) >= log_prob(examples[i], together[i]) - 1e-4);
    }
}

TEST_CASE("07: decoding with the key/value cache writes the words of the plain decoder, from close logits",
          "[07-encoder-decoder]") {
    for (auto [norm, position] : {std::pair{Norm::post, Position::sinusoidal}, std::pair{Norm::pre, Position::learned}}) {
        DYNAMIC_SECTION(kNormNames[static_cast<std::size_t>(norm)] << "-norm, " << kPositionNames[static_cast<std::size_t>(position)]) {
            nn::Rng rng(31);
            Config c = tiny_config(norm, position);
            c.max_len = 10, c.tgt_vocab_size = 40;
            Transformer model(c, rng);
            randomize(model.parameters(), rng);
            model.train(false);
            const std::vector<Example> examples = random_examples(7, c, rng);
            std::vector<const Example*> all;
            for (const Example& e : examples) all.push_back(&e);
            // Step by step, on words drawn at random: the logits of every position.
            const Batch batch = make_batch(all);
            model.encode(batch.src, batch.src_len, batch.B, batch.Ts);
            DecoderSteps cached(model, c.max_len - 1, true), plain(model, c.max_len - 1, false);
            std::vector<int> tokens(all.size(), kBos);
            float worst = 0;
            for (int t = 0; t < c.max_len - 1; ++t) {
                const nn::Matrix a = cached.step(tokens, t), b = plain.step(tokens, t);
                REQUIRE(a.rows() == batch.B);
                REQUIRE(a.cols() == c.tgt_vocab_size);
                worst = std::max(worst, (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff());
                for (int& w : tokens) w = 3 + static_cast<int>(rng.below(static_cast<std::uint64_t>(c.tgt_vocab_size - 3)));
            }
            CHECK(worst < 1e-5f);
            // The searches: the same words, greedy and with beams (which reorder the cache).
            CHECK(greedy_decode(model, all, true) == greedy_decode(model, all, false));
            for (int K : {2, 4}) CHECK(beam_decode(model, all, K, true) == beam_decode(model, all, K, false));
        }
    }
}

TEST_CASE("07: zeroing heads (--ablate-head) changes the logits, zeroing none changes nothing; backward matches",
          "[07-encoder-decoder]") {
    nn::Rng rng(33);
    Config c = tiny_config();
    c.max_len = 8, c.tgt_vocab_size = 20;
    Transformer model(c, rng);
    randomize(model.parameters(), rng);
    model.train(false);
    const std::vector<Example> examples = random_examples(4, c, rng);
    const Batch batch = batch_of(examples);
    std::vector<const Example*> all;
    for (const Example& e : examples) all.push_back(&e);
    auto logits = [&] {
        model.encode(batch.src, batch.src_len, batch.B, batch.Ts);
        return nn::Matrix(model.decode(batch.tgt_in, batch.Tt));
    };
    auto same = [](const nn::Matrix& a, const nn::Matrix& b) { return (a.array() == b.array()).all(); };
    const nn::Matrix intact = logits();
    model.ablate({});
    CHECK(same(logits(), intact));  // nothing zeroed: the same bits
    const int hs = c.d_model / c.n_head;
    for (Heads where : {Heads::encoder, Heads::decoder_self, Heads::cross})
        for (int l = 0; l < c.n_layer; ++l)
            for (int h = 0; h < c.n_head; ++h) {
                const HeadId id{where, l, h};
                DYNAMIC_SECTION("head " << id.name()) {
                    model.ablate(std::vector{id});
                    const nn::Matrix changed = logits();
                    CHECK((changed - intact).cwiseAbs().maxCoeff() > 1e-3f);
                    const auto L = static_cast<std::size_t>(l);
                    const nn::Matrix& out = where == Heads::encoder        ? model.encoder[L].sa.out
                                            : where == Heads::decoder_self ? model.decoder[L].sa.out
                                                                           : model.decoder[L].ca.out;
                    CHECK(out.middleCols(h * hs, hs).cwiseAbs().maxCoeff() == 0.0f);
                    CHECK(out.cwiseAbs().maxCoeff() > 0.0f);
                    // Decoding one word at a time with the cache zeroes the head as well.
                    model.encode(batch.src, batch.src_len, batch.B, batch.Ts);
                    DecoderSteps cached(model, c.max_len - 1, true), plain(model, c.max_len - 1, false);
                    std::vector<int> tokens(all.size(), kBos);
                    for (int t = 0; t < 3; ++t) {
                        const nn::Matrix a = cached.step(tokens, t), b = plain.step(tokens, t);
                        CHECK((a - b).cwiseAbs().maxCoeff() < 1e-5f * b.cwiseAbs().maxCoeff());
                        for (int& w : tokens) w = 3 + t;
                    }
                    model.ablate({});
                    CHECK(same(logits(), intact));
                }
            }
    SECTION("gradients with heads zeroed") {
        model.train(true);  // dropout is 0: the same forward
        const std::vector<HeadId> zeroed{{Heads::encoder, 0, 1}, {Heads::decoder_self, 1, 0}, {Heads::cross, 0, 0}};
        model.ablate(zeroed);
        // The zeroed encoder head's query, key and value weights get no gradient; the other head's do.
        for (nn::Parameter* p : model.parameters()) p->grad.setZero();
        model.loss(batch);
        model.backward();
        const nn::Matrix& g = model.encoder[0].sa.c_attn.weight.grad;  // (3C, C): [q; k; v] of every head
        for (int part = 0; part < 3; ++part) {
            CHECK(g.middleRows(part * c.d_model + 1 * hs, hs).cwiseAbs().maxCoeff() == 0.0f);
            CHECK(g.middleRows(part * c.d_model + 0 * hs, hs).cwiseAbs().maxCoeff() > 0.0f);
        }
        auto loss = [&] { return model.loss(batch); };
        test::check_model_gradients(model, loss, [] { return std::vector<bool>{}; }, kModel);
    }
    CHECK_THROWS_WITH(model.ablate(std::vector{HeadId{Heads::cross, 2, 0}}),
                      Contains("there is no head cross:3.1: this model has 2 layers of 2 heads on each side"));
}

TEST_CASE("07: a translation stops at its source's length + 50 words, even without <eos>", "[07-encoder-decoder]") {
    nn::Rng rng(32);
    Config c = tiny_config();
    c.max_len = 80;
    Transformer model(c, rng);
    randomize(model.parameters(), rng);
    // The last LayerNorm's gain 0 and bias u: every position's logits are u W^T,
    // and <eos>'s row of W is -u, so <eos> is never the likeliest word.
    LayerNorm& last = model.decoder.back().an3.ln;
    last.weight.value.setZero();
    const nn::RowVector u = last.bias.value;
    model.tgt_embedding.weight.value.row(kEos) = -u;
    Example three{{3, 4, 5}, {}}, seventy{std::vector<int>(70, 3), {}};
    const Example* sources[] = {&three, &seventy};
    for (int K : {1, 3}) {
        const auto out = beam_decode(model, sources, K);
        CHECK(out[0].size() == 3 + 50);
        CHECK(out[1].size() == static_cast<std::size_t>(c.max_len - 1));  // 70 + 50 is past max_len - 1
        CHECK(max_words(c, 3) == 53);
    }
}

TEST_CASE("07: the model refuses settings that cannot work and sentences longer than max_len", "[07-encoder-decoder]") {
    Config c = tiny_config();
    c.n_head = 3;
    CHECK_THROWS_WITH(c.validate(), Contains("--d-model (8) must be a multiple of --n-head (3)"));
    c = tiny_config();
    c.d_model = 6, c.n_head = 6;
    CHECK_NOTHROW(c.validate());
    c.d_model = 7, c.n_head = 7;
    CHECK_THROWS_WITH(c.validate(), Contains("must be even"));
    nn::Rng rng(28);
    Transformer model(tiny_config(), rng);
    const std::vector<int> src(7, 3), len{7};
    CHECK_THROWS_WITH(model.encode(src, len, 1, 7), Contains("Ts at most 6"));
}

TEST_CASE("07: parameter_count, which checkpoints check before building a model, counts what parameters() holds",
          "[07-encoder-decoder]") {
    for (const Config& c : {Config{}, Config{.src_vocab_size = 9, .tgt_vocab_size = 13, .max_len = 6, .d_model = 12,
                                             .n_head = 3, .n_layer = 3, .d_ff = 20, .norm = Norm::pre,
                                             .position = Position::learned}}) {
        nn::Rng rng(1);
        Transformer model(c, rng);
        CHECK(parameter_count(c) == test::parameters_held(model));
    }
}

TEST_CASE("07: the digit strings, read out word by word, every length with the same ten words", "[07-encoder-decoder]") {
    const auto pairs = digits::digit_pairs();
    CHECK(pairs == digits::digit_pairs());  // the same in every run
    REQUIRE(pairs.size() == 13110);
    CHECK(pairs[0] == std::pair<std::string, std::string>{"zero", "cero"});
    CHECK(pairs[10] == std::pair<std::string, std::string>{"zero zero", "cero cero"});
    CHECK(pairs[110 + 314] == std::pair<std::string, std::string>{"three one four", "tres uno cuatro"});
    std::map<std::size_t, int> per_length;
    std::set<std::string> sources;
    for (const auto& [en, es] : pairs) {
        const std::vector<std::string> e = split_words(en), s = split_words(es);
        REQUIRE(e.size() == s.size());
        for (std::size_t i = 0; i < e.size(); ++i) {
            const auto d = std::find(digits::kEnglish.begin(), digits::kEnglish.end(), e[i]) - digits::kEnglish.begin();
            REQUIRE(d < 10);
            CHECK(s[i] == digits::kSpanish[static_cast<std::size_t>(d)]);
        }
        ++per_length[e.size()];
        sources.insert(en);
    }
    CHECK(sources.size() == pairs.size());  // no string twice
    CHECK(per_length[1] == 10);
    CHECK(per_length[2] == 100);
    CHECK(per_length[3] == 1000);
    for (std::size_t length = 4; length <= 15; ++length) CHECK(per_length[length] == 1000);
    CHECK(per_length.size() == 15);
}

TEST_CASE("07: --train-max-len keeps only short pairs in train and val, the test split whole; bad values refused",
          "[07-encoder-decoder]") {
    const PairData all = make_pair_data(digits::digit_pairs(), 16, "the digit strings");
    for (int n : {4, 9, 15}) {
        PairData data = make_pair_data(digits::digit_pairs(), 16, "the digit strings");
        keep_short_pairs(data, n, 16);
        for (const auto& [kept, before] : {std::pair{&data.train, &all.train}, std::pair{&data.val, &all.val}}) {
            REQUIRE(!kept->empty());
            for (const Example& e : *kept) CHECK(positions_needed(e) <= n);
            // Every short pair kept, in its order.
            std::vector<std::vector<int>> short_src, kept_src;
            for (const Example& e : *before)
                if (static_cast<int>(e.src.size()) + 1 <= n) short_src.push_back(e.src);
            for (const Example& e : *kept) kept_src.push_back(e.src);
            CHECK(kept_src == short_src);
        }
        REQUIRE(data.test.size() == all.test.size());
        for (std::size_t i = 0; i < data.test.size(); ++i)
            CHECK((data.test[i].src == all.test[i].src && data.test[i].tgt == all.test[i].tgt));
        CHECK(data.test_text == all.test_text);
    }
    // Positions needed: the source's words, or the target's + 1 (<bos> or <eos>), the more.
    CHECK(positions_needed(Example{{5, 6, 7}, {5}}) == 3);
    CHECK(positions_needed(Example{{5}, {5, 6, 7}}) == 4);
    const std::map<int, int> lengths = length_histogram(all);
    CHECK(lengths.at(2) == 10);
    CHECK(lengths.at(16) == 1000);
    CHECK(histogram_text({{2, 10}, {3, 100}}) == "2: 10, 3: 100");
    // Refused: below 1, --max-len or more, and a value that leaves no pair.
    PairData data = all;
    CHECK_THROWS_WITH(keep_short_pairs(data, 0, 16), Contains("--train-max-len 0 must be from 1 to --max-len - 1 = 15"));
    CHECK_THROWS_WITH(keep_short_pairs(data, 16, 16), Contains("--train-max-len 16 must be from 1 to --max-len - 1 = 15"));
    CHECK_THROWS_AS(keep_short_pairs(data, 16, 16), nn::InputError);
    CHECK_THROWS_WITH(keep_short_pairs(data, 1, 16), "--train-max-len 1 leaves no training pair: the shortest needs 2 positions");
    PairData dates_data = make_pair_data(dates::date_pairs(), 16, "the dates");
    CHECK_THROWS_WITH(keep_short_pairs(dates_data, 6, 16),
                      "--train-max-len 6 leaves no training pair: the shortest needs 7 positions");
}

TEST_CASE("07: the test set scored by length, within N positions and beyond, on a tiny case", "[07-encoder-decoder]") {
    // Words 3..9; n = 3: a pair is within when its source has at most 3 words and its target at most 2.
    const std::vector<Example> train{{{3, 4}, {3, 4}}, {{5}, {5}}};
    const std::vector<Example> test{
        {{3, 4}, {3, 4}},           // within, translated exactly
        {{4, 5, 3}, {4, 5}},        // within, one word of two right
        {{3, 4, 5}, {3, 4, 5}},     // beyond (target + 1 = 4), stopped one word short
        {{9, 4, 5, 3}, {9, 4, 5}},  // beyond, exactly; source word 9 never trained
    };
    const std::vector<std::vector<int>> out{{3, 4}, {4, 3}, {3, 4}, {9, 4, 5}};
    const ByLength by = score_by_length(train, test, out, 3);
    CHECK(by.within.pairs == 2);
    CHECK(by.within.exact == 1);
    CHECK(by.within.words == 4);
    CHECK(by.within.words_right == 3);
    CHECK(by.within.unseen == 0);
    CHECK(by.beyond.pairs == 2);
    CHECK(by.beyond.exact == 1);
    CHECK(by.beyond.words == 6);
    CHECK(by.beyond.words_right == 5);
    CHECK(by.beyond.unseen == 1);
    // Teacher forcing over the beyond pairs: their 6 target words, words 1 and 2 (before n = 3) and the rest.
    nn::Rng rng(3);
    Transformer model(tiny_config(), rng);  // a vocabulary of 8 target words: 3..7 and the specials
    const std::vector<Example> small{{{3, 4}, {3, 4}}, {{3, 4, 5}, {3, 4, 5}}, {{3, 4, 5, 6}, {3, 4, 5, 6, 7}}};
    const ForcedScores f = forced_beyond(model, small, 3);
    CHECK(f.before == 4);
    CHECK(f.after == 1 + 3);
    CHECK(f.before_right <= f.before);
    CHECK(f.after_right <= f.after);
    // A pair beyond n by its source alone, its target of 1 word: no word n and after to score.
    const std::vector<Example> by_source{{{3, 4, 5, 6, 7}, {3}}};
    const ForcedScores g = forced_beyond(model, by_source, 3);
    CHECK(g.before == 1);
    CHECK(g.after == 0);
    const std::string none = forced_text(g, 3);
    CHECK_THAT(none, Catch::Matchers::EndsWith(", word 3 and after none"));
    CHECK_THAT(none, !Contains("0 words"));
    CHECK(forced_text({.before = 8, .before_right = 2, .after = 4, .after_right = 1}, 3) ==
          "teacher-forced, <eos> left out, the pairs beyond 3 positions: words 1-2 right 25.00% (8 words), "
          "word 3 and after 25.00% (4 words)");
    CHECK_THAT(forced_text({.before = 0, .before_right = 0, .after = 4, .after_right = 4}, 3),
               Contains("words 1-2 none, word 3 and after 100.00% (4 words)"));
}

TEST_CASE("07: trained on pairs of at most N positions, a learned table keeps rows N and beyond as they started",
          "[07-encoder-decoder]") {
    PairData data = make_pair_data(digits::digit_pairs(), 16, "the digit strings");
    const int n = 6;
    keep_short_pairs(data, n, 16);
    Config c = tiny_config(Norm::post, Position::learned);
    c.max_len = 16, c.src_vocab_size = data.src_vocab.size(), c.tgt_vocab_size = data.tgt_vocab.size();
    nn::Rng rng(11);
    Transformer model(c, rng);
    const nn::Matrix start = model.positions.table.value;
    nn::AdamW adam(model.parameters(), {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-9f, .weight_decay = 0.0f});
    for (int step = 0; step < 5; ++step) {
        model.loss(get_batch(data, Split::train, 16, rng));
        adam.zero_grad();
        model.backward();
        adam.step();
    }
    const nn::Matrix& now = model.positions.table.value;
    CHECK(now.topRows(n).cwiseNotEqual(start.topRows(n)).count() > 0);  // the rows it trained moved
    CHECK(now.bottomRows(16 - n) == start.bottomRows(16 - n));          // the others never got a gradient
}
