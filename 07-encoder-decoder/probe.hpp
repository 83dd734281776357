// 07-encoder-decoder: looking inside a trained model. On the pronoun task
// (--task pronouns): what it translates right, where "it" looks, and which
// heads the reference needs.
//
//   score_pronouns      exact match and agreement (the adjective in the gender
//                       of the noun "it" refers to), by frame, by whether the
//                       two nouns share a gender, by what "it" is
//   attention_from_it   for every head, the mean attention weight on the noun
//                       "it" refers to and on the other noun: in the encoder
//                       from "it" and from the adjective, in the decoder (its
//                       self-attention and cross-attention) when it writes
//                       the adjective
//   ablation_scores     the test set translated again with each head zeroed
//                       in turn (Transformer::ablate, model.hpp), then each
//                       layer's heads at once
// and, for any sentence, explain_word (translate --explain WORD): the scores
// q . k / sqrt(hs) and the weights of one source word in every encoder head.
#pragma once
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/decode.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/pronouns.hpp"

// Sentences, and how many of them were translated exactly and with agreement.
struct Tally {
    int n = 0, exact = 0, agree = 0;
    void add(bool e, bool a) { ++n, exact += e, agree += a; }
};

struct PronounScores {
    std::array<Tally, pronouns::kFrames.size()> frame;
    Tally one_gender, two_genders;  // the two nouns of the same gender, or not
    Tally food, container;          // "it" is the food, or the container
    Tally all;
};

// One translation of sentence p, as words, counted: exact when its words are
// the reference's, and agreement (pronouns::agrees). Every translation is
// scored here, 07's own and those --grade reads from a file (lines.hpp).
inline void score_translation(PronounScores& s, const pronouns::Sentence& p, const std::vector<std::string>& words) {
    const bool exact = words == split_words(p.spanish), agree = pronouns::agrees(p, words);
    s.frame[static_cast<std::size_t>(p.frame)].add(exact, agree);
    (p.same_gender() ? s.one_gender : s.two_genders).add(exact, agree);
    (p.referent == pronouns::Role::food ? s.food : s.container).add(exact, agree);
    s.all.add(exact, agree);
}

// translations: data.test's, in its order; sentences: all_sentences(), which
// data.test_index points into.
inline PronounScores score_pronouns(const std::vector<pronouns::Sentence>& sentences, const PairData& data,
                                    const std::vector<std::vector<int>>& translations) {
    PronounScores s;
    for (std::size_t i = 0; i < translations.size(); ++i) {
        std::vector<std::string> words;
        for (int t : translations[i]) words.push_back(data.tgt_vocab.word(t));
        score_translation(s, sentences[data.test_index[i]], words);
    }
    return s;
}

inline std::string percent(int k, int n) { return fmt::format("{} ({:.2f}%)", k, n > 0 ? 100.0 * k / n : 0.0); }

inline void print_pronoun_scores(const PronounScores& s) {
    auto row = [](const std::string& what, const Tally& t) {
        fmt::print("  {:<48} {:>5}  {:>16}  {:>16}\n", what, t.n, percent(t.exact, t.n), percent(t.agree, t.n));
    };
    fmt::print("\"it\" on the held-out test set (agreement: the last word is an adjective in the gender of the noun "
               "\"it\" refers to):\n");
    fmt::print("  {:<48} {:>5}  {:>16}  {:>16}\n", "", "pairs", "exact match", "agreement");
    for (std::size_t f = 0; f < pronouns::kFrames.size(); ++f) row(pronouns::kFrames[f].english, s.frame[f]);
    row("the two nouns of one gender (agreement can't tell)", s.one_gender);
    row("the two nouns of two genders", s.two_genders);
    row("\"it\" is the food", s.food);
    row("\"it\" is the container", s.container);
    row("all", s.all);
}

// Where one head looks from one word, averaged over the test set: the mean
// weight on the noun "it" refers to, on the other noun, on a third word and
// on the word itself, and how often the referent gets more than the other.
struct Looks {
    double referent = 0, other = 0, third = 0, self = 0;
    int referent_wins = 0;
    void add(const auto& w, int referent_pos, int other_pos, int third_pos, int self_pos) {
        referent += w(referent_pos), other += w(other_pos), third += w(third_pos), self += w(self_pos);
        referent_wins += w(referent_pos) > w(other_pos);
    }
};

// Per head (n_layer * n_head each, layer by layer), over the test set:
struct AttentionFromIt {
    std::vector<Looks> encoder_it;   // encoder self-attention from "it" (third: the adjective)
    std::vector<Looks> encoder_adj;  // encoder self-attention from the adjective (third: "it")
    std::vector<Looks> decoder_self; // the decoder's self-attention when it writes the adjective, on the
                                     // Spanish nouns it has written (third: "estaba"; self: <bos>)
    std::vector<Looks> cross;        // cross-attention when it writes the adjective (third: the adjective; self: "it")
};

// The test set through the model, 256 sentences at a time, the decoder
// reading the reference translations (teacher forcing, as in training).
inline AttentionFromIt attention_from_it(Transformer& model, const std::vector<pronouns::Sentence>& sentences,
                                         const PairData& data) {
    model.train(false);
    const int nh = model.config.n_head;
    const auto heads = static_cast<std::size_t>(model.config.n_layer * nh);
    AttentionFromIt out{std::vector<Looks>(heads), std::vector<Looks>(heads), std::vector<Looks>(heads),
                        std::vector<Looks>(heads)};
    for (std::size_t first = 0; first < data.test.size(); first += 256) {
        std::vector<const Example*> part;
        for (std::size_t i = first; i < std::min(data.test.size(), first + 256); ++i) part.push_back(&data.test[i]);
        const Batch batch = make_batch(part);
        model.encode(batch.src, batch.src_len, batch.B, batch.Ts);
        model.decode(batch.tgt_in, batch.Tt);
        const int Ts = batch.Ts, Tt = batch.Tt;
        for (int l = 0; l < model.config.n_layer; ++l)
            for (int h = 0; h < nh; ++h) {
                const auto k = static_cast<std::size_t>(l * nh + h);
                const nn::Matrix& enc = model.encoder[static_cast<std::size_t>(l)].sa.att.wei;    // (B*nh*Ts, Ts)
                const nn::Matrix& self = model.decoder[static_cast<std::size_t>(l)].sa.att.wei;   // (B*nh*Tt, Tt)
                const nn::Matrix& cross = model.decoder[static_cast<std::size_t>(l)].ca.att.wei;  // (B*nh*Tt, Ts)
                for (int b = 0; b < batch.B; ++b) {
                    const std::size_t i = first + static_cast<std::size_t>(b);  // in the test set
                    const pronouns::Sentence& p = sentences[data.test_index[i]];
                    const int adj = batch.src_len[static_cast<std::size_t>(b)] - 1;  // the last English word
                    // Target word m is the decoder's input at position m + 1 (after <bos>); the adjective, the
                    // last of n words, is written by position n - 1, which reads "estaba".
                    const int n = static_cast<int>(data.test[i].tgt.size());
                    const int row = (b * nh + h);
                    out.encoder_it[k].add(enc.row(row * Ts + p.it_pos), p.referent_pos(), p.other_pos(), adj, p.it_pos);
                    out.encoder_adj[k].add(enc.row(row * Ts + adj), p.referent_pos(), p.other_pos(), p.it_pos, adj);
                    out.decoder_self[k].add(self.row(row * Tt + n - 1), p.referent_pos_es() + 1, p.other_pos_es() + 1,
                                            n - 1, 0);
                    out.cross[k].add(cross.row(row * Tt + n - 1), p.referent_pos(), p.other_pos(), adj, p.it_pos);
                }
            }
    }
    for (auto* table : {&out.encoder_it, &out.encoder_adj, &out.decoder_self, &out.cross})
        for (Looks& a : *table)
            for (double* v : {&a.referent, &a.other, &a.third, &a.self}) *v /= static_cast<double>(data.test.size());
    return out;
}

inline std::string head_name(std::size_t i, int n_head) {
    return fmt::format("{}.{}", i / static_cast<std::size_t>(n_head) + 1, i % static_cast<std::size_t>(n_head) + 1);
}

// One table: a row per head, the mean weights, the referent's wins.
inline void print_looks(const std::string& title, const std::vector<Looks>& heads, int n_head, int n_sentences,
                        const char* third, const char* self) {
    fmt::print("{}\n  {:<10} {:>13} {:>15} {:>14} {:>14}  {}\n", title, "layer.head", "the referent", "the other noun",
               third, self, "referent > other noun");
    for (std::size_t i = 0; i < heads.size(); ++i) {
        const Looks& a = heads[i];
        fmt::print("  {:<10} {:>13.3f} {:>15.3f} {:>14.3f} {:>14.3f}  {}\n", head_name(i, n_head), a.referent, a.other,
                   a.third, a.self, percent(a.referent_wins, n_sentences));
    }
}

inline void print_attention_from_it(const AttentionFromIt& a, int n_head, int n_sentences) {
    fmt::print("mean attention weights over the {} test sentences (the decoder reading the reference translation):\n",
               n_sentences);
    print_looks("encoder self-attention, from \"it\":", a.encoder_it, n_head, n_sentences, "the adjective",
                "\"it\" itself");
    print_looks("encoder self-attention, from the adjective:", a.encoder_adj, n_head, n_sentences, "\"it\"",
                "itself");
    print_looks("decoder self-attention, writing the adjective (on the Spanish nouns it wrote):", a.decoder_self,
                n_head, n_sentences, "\"estaba\"", "<bos>");
    print_looks("cross-attention, writing the adjective:", a.cross, n_head, n_sentences, "the adjective", "\"it\"");
}

// The test set translated (greedy) with each head zeroed in turn, then all
// the heads of one layer at once ("2.*"), for each of the three attentions,
// layer by layer. No head is zeroed afterwards.
inline std::vector<std::pair<std::string, PronounScores>> ablation_scores(Transformer& model,
                                                                          const std::vector<pronouns::Sentence>& sentences,
                                                                          const PairData& data) {
    std::vector<std::pair<std::string, PronounScores>> out;
    auto run = [&](const std::string& name, const std::vector<HeadId>& heads) {
        model.ablate(heads);
        out.emplace_back(name, score_pronouns(sentences, data, translate_all(model, data.test, 1)));
    };
    for (Heads where : {Heads::encoder, Heads::decoder_self, Heads::cross})
        for (int l = 0; l < model.config.n_layer; ++l) {
            std::vector<HeadId> layer;
            for (int h = 0; h < model.config.n_head; ++h) {
                layer.push_back({where, l, h});
                run(layer.back().name(), {layer.back()});
            }
            const std::string name = layer.front().name();
            run(name.substr(0, name.rfind('.')) + ".*", layer);
        }
    model.ablate({});
    return out;
}

inline void print_ablation(const PronounScores& intact,
                           const std::vector<std::pair<std::string, PronounScores>>& ablated) {
    fmt::print("each head zeroed in turn, then each layer's heads at once (L.H: the encoder's "
               "self-attention; self:L.H the decoder's; cross:L.H cross-attention), the test set translated again "
               "(greedy):\n");
    fmt::print("  {:<12} {:>16}  {:>16}  {:>28}\n", "head zeroed", "exact match", "agreement",
               "agreement, nouns of 2 genders");
    auto row = [](const std::string& what, const PronounScores& s) {
        fmt::print("  {:<12} {:>16}  {:>16}  {:>28}\n", what, percent(s.all.exact, s.all.n), percent(s.all.agree, s.all.n),
                   percent(s.two_genders.agree, s.two_genders.n));
    };
    row("none", intact);
    for (const auto& [name, scores] : ablated) row(name, scores);
}

// translate --explain WORD: how the encoder's self-attention weighs the
// source words for one of them (position i), layer by layer and head by head,
// as the model computes it:
//   score_j  = q_i . k_j / sqrt(hs)      q_i = x_i W_q and k_j = x_j W_k of that head
//   weight_j = exp(score_j) / sum_j' exp(score_j')
// then, for each decoder layer and head, the cross-attention weights over the
// source at the step that writes the translation's last word. After
// model.encode() and model.decode() of this one sentence and its translation
// (<bos> first): the weights are those the decoder had when it wrote it.
inline void explain_word(const Transformer& model, const WordVocabulary& src_vocab, const WordVocabulary& tgt_vocab,
                         const std::vector<int>& src, const std::vector<int>& out, int i) {
    const int Ts = static_cast<int>(src.size()), nh = model.config.n_head, hs = model.config.d_model / nh;
    const int C = model.config.d_model;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    const std::string& word = src_vocab.word(src[static_cast<std::size_t>(i)]);
    fmt::print("\n\"{}\" (word {} of {}) in the encoder's self-attention: for each head, score = q . k / sqrt({}) "
               "against every source word, then weight = softmax(scores)\n", word, i + 1, Ts, hs);
    for (int l = 0; l < model.config.n_layer; ++l) {
        const MultiHeadAttention& sa = model.encoder[static_cast<std::size_t>(l)].sa;
        const nn::Matrix& qkv = sa.c_attn.y;  // (Ts, 3C): [q | k | v] of every head, from this layer's input
        fmt::print("  layer {}\n  {:<12}", l + 1, "source word");
        for (int h = 0; h < nh; ++h) fmt::print("   head {}: score weight", h + 1);
        fmt::print("\n");
        for (int j = 0; j < Ts; ++j) {
            fmt::print("  {:<12}", src_vocab.word(src[static_cast<std::size_t>(j)]));
            for (int h = 0; h < nh; ++h) {
                const float score = scale * qkv.row(i).segment(h * hs, hs).dot(qkv.row(j).segment(C + h * hs, hs));
                fmt::print("   {:>15.2f} {:>6.3f}", score, sa.att.wei(h * Ts + i, j));
            }
            fmt::print("\n");
        }
    }
    if (out.empty()) return;
    const int t = static_cast<int>(out.size()) - 1, Tt = static_cast<int>(out.size()) + 1;
    fmt::print("\nthe decoder's cross-attention when it writes \"{}\" (the last word): the weight on each source "
               "word, per layer.head\n  {:<12}", tgt_vocab.word(out.back()), "source word");
    for (int l = 0; l < model.config.n_layer; ++l)
        for (int h = 0; h < nh; ++h) fmt::print(" {:>6}", fmt::format("{}.{}", l + 1, h + 1));
    fmt::print("\n");
    for (int j = 0; j < Ts; ++j) {
        fmt::print("  {:<12}", src_vocab.word(src[static_cast<std::size_t>(j)]));
        for (int l = 0; l < model.config.n_layer; ++l)
            for (int h = 0; h < nh; ++h)
                fmt::print(" {:>6.3f}", model.decoder[static_cast<std::size_t>(l)].ca.att.wei(h * Tt + t, j));
        fmt::print("\n");
    }
}
