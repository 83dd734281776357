// 07-encoder-decoder: a second task (--task pronouns), English sentences in
// which "it" refers to one of two nouns, a food and a container, and the
// Spanish translation shows which through gender agreement:
//
//   the pizza came out of the oven and it was delicious  ->  la pizza salió del horno y estaba deliciosa
//   the pizza came out of the oven and it was dirty      ->  la pizza salió del horno y estaba sucio
//
// English does not mark which noun "it" is; the adjective does: only a food
// is delicious, only a container is dirty. Spanish drops the pronoun and
// inflects the adjective for the gender of its noun (la pizza, feminine:
// deliciosa; el horno, masculine: sucio), so the translation cannot be
// written without deciding what "it" is.
//
// The grammar (every combination, 10 x 10 x 4 x 13 = 5200 sentence pairs):
//   10 foods, 5 feminine and 5 masculine in Spanish (kFoods);
//   10 containers and appliances, 5 and 5 (kContainers);
//   13 adjectives that fit only one of the two roles and end in -o / -a:
//     7 for a food, 6 for a container (kAdjectives);
//   4 frames (kFrames), two with the food first and two with the container
//     first, so that neither "the last noun" nor "the first noun" is always
//     the referent. "de" + "el" contracts to "del" (del horno, de la olla).
// Words are tokens and UTF-8: "salió", "sartén", "vacía" are single words.
//
// The split (the same in every run, by rule and not by chance):
//   test: every sentence of 20 held-out (food, container) pairs, and every
//     sentence whose referent and adjective are one of 20 held-out
//     combinations (each noun with one adjective of its role): the model
//     never trained on "pizza ... delicious" must still write "deliciosa";
//   val: a fixed 5% of the rest; train: the rest.
#pragma once
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "07-encoder-decoder/data.hpp"
#include "common/random.hpp"

namespace pronouns {

enum class Gender { feminine, masculine };

struct Noun {
    const char* english;
    const char* spanish;
    Gender gender;
};

// Foods: the first 5 feminine, the last 5 masculine.
inline constexpr std::array<Noun, 10> kFoods{{
    {"pizza", "pizza", Gender::feminine},   {"cake", "tarta", Gender::feminine},
    {"soup", "sopa", Gender::feminine},     {"meat", "carne", Gender::feminine},
    {"omelette", "tortilla", Gender::feminine},
    {"bread", "pan", Gender::masculine},    {"chicken", "pollo", Gender::masculine},
    {"pie", "pastel", Gender::masculine},   {"rice", "arroz", Gender::masculine},
    {"fish", "pescado", Gender::masculine},
}};

// Containers and appliances: the first 5 feminine, the last 5 masculine.
inline constexpr std::array<Noun, 10> kContainers{{
    {"pot", "olla", Gender::feminine},      {"skillet", "sartén", Gender::feminine},
    {"box", "caja", Gender::feminine},      {"tray", "bandeja", Gender::feminine},
    {"fridge", "nevera", Gender::feminine},
    {"oven", "horno", Gender::masculine},   {"plate", "plato", Gender::masculine},
    {"microwave", "microondas", Gender::masculine},
    {"bowl", "tazón", Gender::masculine},   {"saucepan", "cazo", Gender::masculine},
}};

enum class Role { food, container };  // which noun an adjective can describe

struct Adjective {
    const char* english;
    const char* feminine;
    const char* masculine;
    Role role;
};

inline constexpr std::array<Adjective, 13> kAdjectives{{
    {"delicious", "deliciosa", "delicioso", Role::food}, {"tasty", "sabrosa", "sabroso", Role::food},
    {"juicy", "jugosa", "jugoso", Role::food},           {"salty", "salada", "salado", Role::food},
    {"raw", "cruda", "crudo", Role::food},               {"tender", "tierna", "tierno", Role::food},
    {"rotten", "podrida", "podrido", Role::food},
    {"dirty", "sucia", "sucio", Role::container},        {"broken", "rota", "roto", Role::container},
    {"empty", "vacía", "vacío", Role::container},        {"clean", "limpia", "limpio", Role::container},
    {"rusty", "oxidada", "oxidado", Role::container},    {"dented", "abollada", "abollado", Role::container},
}};
inline constexpr int kFoodAdjectives = 7;  // kAdjectives[0, 7) are a food's, [7, 13) a container's

// A frame: the English and Spanish sentence with slots F (the food), C (the
// container) and A (the adjective); in Spanish "el F"/"la F" and "del C"/"de
// la C" are written with the noun's article. `food_first`: F comes before C.
struct Frame {
    const char* name;
    const char* english;
    const char* spanish;
    bool food_first;
};

inline constexpr std::array<Frame, 4> kFrames{{
    {"came out of", "the F came out of the C and it was A", "el F salió del C y estaba A", true},
    {"held", "the C held the F and it was A", "el C contenía el F y estaba A", false},
    {"took out of", "we took the F out of the C because it was A", "sacamos el F del C porque estaba A", true},
    {"opened with", "we opened the C with the F and it was A", "abrimos el C con el F y estaba A", false},
}};

// One sentence of the grammar and what the experiments need to know about it.
struct Sentence {
    int frame, food, container, adjective;  // indices into the tables above
    Role referent;                          // what "it" is: the adjective's role
    std::string english, spanish;
    int it_pos, food_pos, container_pos;    // word positions in the English sentence
    int food_pos_es, container_pos_es;      // the nouns' word positions in the Spanish sentence

    const Noun& referent_noun() const { return referent == Role::food ? kFoods[food] : kContainers[container]; }
    const Noun& other_noun() const { return referent == Role::food ? kContainers[container] : kFoods[food]; }
    int referent_pos() const { return referent == Role::food ? food_pos : container_pos; }
    int other_pos() const { return referent == Role::food ? container_pos : food_pos; }
    int referent_pos_es() const { return referent == Role::food ? food_pos_es : container_pos_es; }
    int other_pos_es() const { return referent == Role::food ? container_pos_es : food_pos_es; }
    bool same_gender() const { return kFoods[food].gender == kContainers[container].gender; }
    // The Spanish word that agrees with "it": the adjective in its referent's gender.
    std::string agreeing_word() const {
        const Adjective& a = kAdjectives[adjective];
        return referent_noun().gender == Gender::feminine ? a.feminine : a.masculine;
    }
};

// The Spanish article before a noun, and "de" + the article ("del": de + el).
inline std::string article(const Noun& n) { return n.gender == Gender::feminine ? "la" : "el"; }
inline std::string of_article(const Noun& n) { return n.gender == Gender::feminine ? "de la" : "del"; }

// Fills a frame's slots: each word of `pattern` is copied, except the slot words.
inline Sentence make_sentence(int frame, int food, int container, int adjective) {
    const Frame& f = kFrames[frame];
    const Noun &F = kFoods[food], &C = kContainers[container];
    const Adjective& A = kAdjectives[adjective];
    Sentence s{frame, food, container, adjective, A.role, "", "", -1, -1, -1, -1, -1};
    const std::vector<std::string> en = split_words(f.english), es = split_words(f.spanish);
    for (std::size_t i = 0; i < en.size(); ++i) {
        std::string w = en[i];
        if (w == "F") w = F.english, s.food_pos = static_cast<int>(i);
        else if (w == "C") w = C.english, s.container_pos = static_cast<int>(i);
        else if (w == "A") w = A.english;
        else if (w == "it") s.it_pos = static_cast<int>(i);
        s.english += (i == 0 ? "" : " ") + w;
    }
    const Noun& referent = A.role == Role::food ? F : C;
    int at = 0;  // Spanish words written so far ("de la" is two)
    for (std::size_t i = 0; i < es.size(); ++i) {
        std::string w = es[i];
        if (w == "F") s.food_pos_es = at;
        if (w == "C") s.container_pos_es = at;
        const bool slot = i + 1 < es.size() && (es[i + 1] == "F" || es[i + 1] == "C");
        if (slot && w == "el") w = article(es[i + 1] == "F" ? F : C);         // el/la before a noun
        else if (slot && w == "del") w = of_article(es[i + 1] == "F" ? F : C);  // del/de la before a noun
        else if (w == "F") w = F.spanish;
        else if (w == "C") w = C.spanish;
        else if (w == "A") w = referent.gender == Gender::feminine ? A.feminine : A.masculine;
        s.spanish += (i == 0 ? "" : " ") + w;
        at += static_cast<int>(split_words(w).size());
    }
    return s;
}

// Every sentence of the grammar, frame by frame, then food, container, adjective.
inline std::vector<Sentence> all_sentences() {
    std::vector<Sentence> out;
    for (int f = 0; f < static_cast<int>(kFrames.size()); ++f)
        for (int food = 0; food < static_cast<int>(kFoods.size()); ++food)
            for (int c = 0; c < static_cast<int>(kContainers.size()); ++c)
                for (int a = 0; a < static_cast<int>(kAdjectives.size()); ++a) out.push_back(make_sentence(f, food, c, a));
    return out;
}

// The held-out (food, container) pairs: food i with containers i + 3 and
// i + 7 (mod 10), 20 of the 100 pairs; 8 of them share a gender, 12 do not.
inline bool held_out_pair(int food, int container) {
    const int d = (container - food + 10) % 10;
    return d == 3 || d == 7;
}
// The held-out (noun, adjective) combinations: food i with food adjective
// i mod 7, container j with container adjective j mod 6.
inline bool held_out_combination(const Sentence& s) {
    return s.referent == Role::food ? s.adjective == s.food % kFoodAdjectives
                                    : s.adjective == kFoodAdjectives + s.container % (static_cast<int>(kAdjectives.size()) - kFoodAdjectives);
}

// Where each sentence of all_sentences() goes: test by the two rules above,
// validation a fixed 5% of the rest (a shuffle with a fixed seed), training
// the rest.
inline std::vector<Split> split_of(const std::vector<Sentence>& sentences) {
    std::vector<Split> out(sentences.size(), Split::train);
    std::vector<std::size_t> rest;
    for (std::size_t i = 0; i < sentences.size(); ++i) {
        if (held_out_pair(sentences[i].food, sentences[i].container) || held_out_combination(sentences[i]))
            out[i] = Split::test;
        else
            rest.push_back(i);
    }
    nn::Rng rng(20260102);  // fixed: the split never depends on the run
    rng.shuffle(rest);
    for (std::size_t k = 0; k < (rest.size() + 19) / 20; ++k) out[rest[k]] = Split::val;
    return out;
}

// The gender of a Spanish adjective of kAdjectives ("deliciosa": feminine),
// or nothing for any other word.
inline std::optional<Gender> adjective_gender(const std::string& spanish) {
    for (const Adjective& a : kAdjectives) {
        if (spanish == a.feminine) return Gender::feminine;
        if (spanish == a.masculine) return Gender::masculine;
    }
    return std::nullopt;
}

// A translation agrees with "it" when its last word is an adjective of
// kAdjectives in the gender of the noun "it" refers to (whichever adjective:
// this counts the reference, not the vocabulary).
inline bool agrees(const Sentence& s, const std::vector<std::string>& translation) {
    return !translation.empty() && adjective_gender(translation.back()) == s.referent_noun().gender;
}

// The (English, Spanish) pairs of all_sentences(), in its order.
inline std::vector<std::pair<std::string, std::string>> sentence_pairs(const std::vector<Sentence>& sentences) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Sentence& s : sentences) out.emplace_back(s.english, s.spanish);
    return out;
}

}  // namespace pronouns
