// 07-encoder-decoder: what the learner looks at (beside the concept, as
// 06-gpt/inspect.hpp): the positional-encoding table, the cross-attention
// of every decoder layer and the encoder's self-attention over one sentence,
// each drawn into a PNG.
#pragma once
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/train.hpp"  // names_of, for setting_text
#include "common/plot.hpp"
#include "common/random.hpp"
#include "common/settings.hpp"
#include "common/text.hpp"

// A word as the plot's font can draw it: ASCII only, so the accents go (é -> e).
inline std::string plot_label(const std::string& word) {
    static const std::map<char32_t, char> plain{{U'á', 'a'}, {U'é', 'e'}, {U'í', 'i'}, {U'ó', 'o'}, {U'ú', 'u'},
                                                {U'ñ', 'n'}, {U'ü', 'u'}};
    std::string out;
    for (char32_t c : nn::decode_utf8(word)) {
        if (c < 128) out += static_cast<char>(c);
        else out += plain.count(c) ? plain.at(c) : '?';
    }
    return out;
}

// Draws the positional-encoding table, rows = positions, columns = dimensions:
// the model's learned table, or the sinusoids for at least 64 positions (the
// model uses the first max_len rows), so that the slower waves show.
inline void plot_positions(const Transformer& model, const std::string& path) {
    Config c = model.config;
    if (c.position == Position::sinusoidal) c.max_len = std::max(c.max_len, 64);
    nn::Rng unused(0);
    const nn::Matrix pe = c.position == Position::sinusoidal ? PositionalEncoding(c, unused).table.value
                                                             : model.positions.table.value;
    nn::write_signed_heatmap(path, fmt::format("{} positional encoding: position (down) x dimension (across), "
                                               "-1 blue .. +1 red", nn::setting_text(c.position)),
                             pe, "dimension", "position");
    fmt::print("wrote the positional encoding ({} positions x {} dimensions) to {}\n", pe.rows(), pe.cols(), path);
}

// The cross-attention of every decoder layer, averaged over heads, for the
// source and the translation the decoder wrote (already in the model).
inline void plot_cross_attention(const Transformer& model, const WordVocabulary& src_vocab, const WordVocabulary& tgt_vocab,
                          const std::vector<int>& src, const std::vector<int>& out, const std::string& path) {
    const int Tq = model.Tt, Tk = model.Ts, nh = model.config.n_head;
    nn::Matrix stacked(model.config.n_layer * Tq, Tk);
    std::vector<std::string> rows, cols;
    for (int t : src) cols.push_back(plot_label(src_vocab.word(t)));
    for (int l = 0; l < model.config.n_layer; ++l) {
        const nn::Matrix& wei = model.decoder[static_cast<std::size_t>(l)].ca.att.wei;  // (nh*Tq, Tk)
        auto mean = stacked.middleRows(l * Tq, Tq);
        mean.setZero();
        for (int h = 0; h < nh; ++h) mean += wei.middleRows(h * Tq, Tq);
        mean /= static_cast<float>(nh);
        for (int t = 0; t < Tq; ++t)  // row t predicts the word written at t
            rows.push_back(fmt::format("L{} {}", l + 1, plot_label(t < static_cast<int>(out.size()) ? tgt_vocab.word(out[static_cast<std::size_t>(t)]) : "<eos>")));
    }
    nn::write_heatmap(path, "cross-attention of each decoder layer (L1, L2, ...), mean over heads: row = the word written, column = the source word it reads", stacked, rows, cols);
    fmt::print(stderr, "wrote the cross-attention of {} decoder layers to {}\n", model.config.n_layer, path);
}

// The encoder's self-attention over one source sentence (already in the
// model), one panel per layer and head: row = the word that reads, column =
// the word it reads. The grid's cells take a character or two, so the words
// are numbered and the title lists them.
inline void plot_encoder_attention(const Transformer& model, const WordVocabulary& src_vocab, const std::vector<int>& src,
                            const std::string& path) {
    const int T = model.Ts, nh = model.config.n_head;
    std::vector<std::string> labels, titles;
    std::string legend;
    for (std::size_t j = 0; j < src.size(); ++j) {
        labels.push_back(std::to_string(j + 1));
        legend += fmt::format("  {} {}", j + 1, plot_label(src_vocab.word(src[j])));
    }
    std::vector<nn::Matrix> panels;
    for (int l = 0; l < model.config.n_layer; ++l)
        for (int h = 0; h < nh; ++h) {
            panels.push_back(model.encoder[static_cast<std::size_t>(l)].sa.att.wei.middleRows(h * T, T));
            titles.push_back(fmt::format("layer {} head {}", l + 1, h + 1));
        }
    nn::write_heatmap_grid(path, "encoder self-attention, row reads column:" + legend, panels, nh, titles, labels,
                           labels);
    fmt::print(stderr, "wrote the encoder's self-attention, {} layers x {} heads, to {}\n", model.config.n_layer, nh,
               path);
}
