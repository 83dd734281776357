// 07-encoder-decoder: a third task (--task digits), made for the length
// experiment (--train-max-len, extrapolation.hpp): strings of 1 to 15 digits
// read out word by word, in English and in Spanish:
//
//   three one four one five  ->  tres uno cuatro uno cinco
//
// Every length uses the same ten words, so a long sentence differs from a
// short one only in its length. (The dates cannot show that: their longer
// sentences are the years the shorter ones never say, "nineteen forty-two"
// -> "mil novecientos cuarenta y dos", with words no short one holds.)
// The pairs: every string of 1, 2 and 3 digits (10 + 100 + 1000), and 1000
// distinct strings of each length from 4 to 15 drawn with a fixed seed:
// 13,110 pairs, split as the dates are (a fixed shuffle).
#pragma once
#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/random.hpp"

namespace digits {

inline constexpr std::array<const char*, 10> kEnglish{"zero", "one", "two",   "three", "four",
                                                      "five", "six", "seven", "eight", "nine"};
inline constexpr std::array<const char*, 10> kSpanish{"cero", "uno",  "dos",   "tres", "cuatro",
                                                      "cinco", "seis", "siete", "ocho", "nueve"};
inline constexpr int kLongest = 15;    // digits; with <eos>, the default --max-len 16
inline constexpr int kPerLength = 1000;  // strings of each length (all of them up to 3 digits)

// One string of digits as an (English, Spanish) pair.
inline std::pair<std::string, std::string> read_out(const std::vector<int>& digits) {
    std::pair<std::string, std::string> out;
    for (int d : digits) {
        if (!out.first.empty()) out.first += ' ', out.second += ' ';
        out.first += kEnglish[static_cast<std::size_t>(d)];
        out.second += kSpanish[static_cast<std::size_t>(d)];
    }
    return out;
}

// The task's pairs, shortest first: the same for every run.
inline std::vector<std::pair<std::string, std::string>> digit_pairs() {
    std::vector<std::pair<std::string, std::string>> out;
    nn::Rng rng(20261206);
    for (int length = 1, every = 10; length <= kLongest; ++length, every = std::min(every, kPerLength) * 10) {
        const bool all = every <= kPerLength;  // every string of this length, in order: k in base 10
        std::set<std::vector<int>> seen;
        for (int k = 0; all ? k < every : static_cast<int>(seen.size()) < kPerLength; ++k) {
            std::vector<int> digits(static_cast<std::size_t>(length));
            if (all) {
                for (int i = length - 1, rest = k; i >= 0; --i, rest /= 10) digits[static_cast<std::size_t>(i)] = rest % 10;
            } else {
                for (int& d : digits) d = static_cast<int>(rng.below(10));
            }
            if (seen.insert(digits).second) out.push_back(read_out(digits));
        }
    }
    return out;
}

}  // namespace digits
