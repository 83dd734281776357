// 07-encoder-decoder: the task's data, every date from 1900-01-01 to
// 2099-12-31 written in English words and in Spanish words.
//
//   november twenty-eighth two thousand twenty-six  ->  veintiocho de noviembre de dos mil veintiséis
//   march third nineteen ninety-nine                ->  tres de marzo de mil novecientos noventa y nueve
//
// Conventions (the README lists them too):
//   English: month, ordinal day, year. A compound number is one hyphenated
//     word ("twenty-eighth", "ninety-nine"). Years 1900-1999 are said in
//     pairs: 1900 "nineteen hundred", 1905 "nineteen oh five", 1910 "nineteen
//     ten", 1999 "nineteen ninety-nine". Years 2000-2099 are said whole: 2000
//     "two thousand", 2005 "two thousand five", 2010 "two thousand ten".
//   Spanish: cardinal day, "de", month, "de", year, all lowercase. Day 1 is
//     "uno" (as in Spain; Latin America often says "primero"). 1-29 are single
//     words with their accents (dieciséis, veintidós, veintitrés, veintiséis);
//     31-99 are "treinta y uno" ... "noventa y nueve". Years: 1900 "mil
//     novecientos", 1999 "mil novecientos noventa y nueve", 2000 "dos mil",
//     2026 "dos mil veintiséis".
#pragma once
#include <array>
#include <string>
#include <utility>
#include <vector>

namespace dates {

inline constexpr std::array<const char*, 12> kEnglishMonths{
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"};
inline constexpr std::array<const char*, 12> kSpanishMonths{
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"};

// 1..99 in English words, one hyphenated word: "seven", "forty-two".
inline std::string english_number(int n) {
    static constexpr std::array<const char*, 20> small{
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
    static constexpr std::array<const char*, 10> tens{"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
    if (n < 20) return small[n];
    return n % 10 == 0 ? tens[n / 10] : std::string(tens[n / 10]) + "-" + small[n % 10];
}

// 1..31 as an English ordinal: "first", "twenty-eighth", "thirtieth".
inline std::string english_ordinal(int n) {
    static constexpr std::array<const char*, 20> small{
        "zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
        "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
        "nineteenth"};
    if (n < 20) return small[n];
    if (n == 20) return "twentieth";
    if (n == 30) return "thirtieth";
    return english_number(n - n % 10) + "-" + small[n % 10];
}

// 1900..2099 as an English speaker says it.
inline std::string english_year(int y) {
    if (y < 2000) {
        const int r = y % 100;
        if (r == 0) return "nineteen hundred";
        if (r < 10) return "nineteen oh " + english_number(r);
        return "nineteen " + english_number(r);
    }
    return y == 2000 ? "two thousand" : "two thousand " + english_number(y % 100);
}

// 1..99 in Spanish words: "uno", "veintiséis", "treinta y uno".
inline std::string spanish_number(int n) {
    static constexpr std::array<const char*, 30> small{
        "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez",
        "once", "doce", "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve",
        "veinte", "veintiuno", "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis",
        "veintisiete", "veintiocho", "veintinueve"};
    static constexpr std::array<const char*, 10> tens{"", "", "", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa"};
    if (n < 30) return small[n];
    return n % 10 == 0 ? tens[n / 10] : std::string(tens[n / 10]) + " y " + small[n % 10];
}

// 1900..2099 in Spanish: "mil novecientos cinco", "dos mil veintiséis".
inline std::string spanish_year(int y) {
    const std::string head = y < 2000 ? "mil novecientos" : "dos mil";
    return y % 100 == 0 ? head : head + " " + spanish_number(y % 100);
}

inline bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
inline int days_in_month(int y, int m) {
    static constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

struct Date {
    int year, month, day;  // month and day from 1
};

inline std::string english(const Date& d) {
    return std::string(kEnglishMonths[d.month - 1]) + " " + english_ordinal(d.day) + " " + english_year(d.year);
}
inline std::string spanish(const Date& d) {
    return spanish_number(d.day) + " de " + kSpanishMonths[d.month - 1] + " de " + spanish_year(d.year);
}

// Every date from 1900-01-01 to 2099-12-31, in order: 73,049 of them.
inline std::vector<Date> all_dates() {
    std::vector<Date> out;
    for (int y = 1900; y <= 2099; ++y)
        for (int m = 1; m <= 12; ++m)
            for (int d = 1; d <= days_in_month(y, m); ++d) out.push_back({y, m, d});
    return out;
}

// The (English, Spanish) sentence pairs of all_dates(), in date order.
inline std::vector<std::pair<std::string, std::string>> date_pairs() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Date& d : all_dates()) out.emplace_back(english(d), spanish(d));
    return out;
}

}  // namespace dates
