// 06-gpt: looking inside a trained model (beside the concept, as shapes.hpp:
// what the learner looks at): the attention weights of every head of every
// layer for one text, drawn as a grid of maps, and measured: where does each
// head look?
#pragma once
#include <fmt/core.h>

#include <string>
#include <vector>

#include "06-gpt/model.hpp"
#include "common/plot.hpp"
#include "common/text.hpp"

// For one head's (T, T) weights over the tokens `idx`, the mean over the
// queries i >= 1 of the weight each puts on
struct HeadFocus {
    double self = 0;      // itself (j = i)
    double previous = 0;  // the character just before (j = i - 1)
    double line = 0;      // the first character of its line (just after the last newline before i)
    double word = 0;      // the space or newline before its word (the last one before i)
    double same = 0;      // earlier copies of its own character (j < i, idx[j] = idx[i]), summed
};

// `space` and `newline` are the tokens of ' ' and '\n' (-1 if the vocabulary has none).
inline HeadFocus head_focus(const nn::Matrix& wei, const std::vector<int>& idx, int space, int newline) {
    HeadFocus f;
    const int T = static_cast<int>(idx.size());
    int line_start = 0, separator = -1;
    for (int i = 0; i < T; ++i) {
        const int token = idx[static_cast<std::size_t>(i)];
        if (i > 0) {
            f.self += wei(i, i);
            f.previous += wei(i, i - 1);
            f.line += wei(i, line_start);
            if (separator >= 0) f.word += wei(i, separator);
            for (int j = 0; j < i; ++j)
                if (idx[static_cast<std::size_t>(j)] == token) f.same += wei(i, j);
        }
        if (token == newline) line_start = i + 1 < T ? i + 1 : i;
        if (token == newline || token == space) separator = i;
    }
    const double n = T > 1 ? T - 1 : 1;
    return {f.self / n, f.previous / n, f.line / n, f.word / n, f.same / n};
}

// Runs the model (evaluation mode) on `idx` (at most block_size tokens),
// draws the n_layer x n_head attention maps into `path` and prints, for every
// head, where its weight goes (HeadFocus).
inline void write_attention_map(GPTLanguageModel& model, const nn::Vocabulary& vocab, const std::vector<int>& idx,
                                const std::string& path) {
    const int T = static_cast<int>(idx.size());
    model.train(false);
    for (Block& b : model.blocks) b.sa.att.keep_weights = true;
    model.forward(idx, 1, T);
    std::vector<std::string> labels, titles;
    for (int t : idx) labels.push_back(vocab.show(t));
    std::vector<nn::Matrix> panels;
    int space = -1, newline = -1;
    for (int t = 0; t < vocab.size(); ++t) {
        const std::string c = vocab.decode(std::vector<int>{t});
        if (c == " ") space = t;
        if (c == "\n") newline = t;
    }
    fmt::print("where each head looks, mean weight over the {} queries after the first:\n", T - 1);
    fmt::print("  {:<12} {:>7} {:>9} {:>13} {:>13} {:>15}\n", "layer, head", "itself", "previous", "line's start",
               "word's space", "same character");
    for (std::size_t l = 0; l < model.blocks.size(); ++l) {
        const MultiHeadAttention& sa = model.blocks[l].sa;
        for (int h = 0; h < sa.n_head; ++h) {
            panels.push_back(sa.att.wei.middleRows(h * T, T));
            titles.push_back(fmt::format("layer {} head {}", l + 1, h + 1));
            const HeadFocus f = head_focus(panels.back(), idx, space, newline);
            fmt::print("  {:<12} {:>7.2f} {:>9.2f} {:>13.2f} {:>13.2f} {:>15.2f}\n", fmt::format("{}, {}", l + 1, h + 1),
                       f.self, f.previous, f.line, f.word, f.same);
        }
    }
    nn::write_heatmap_grid(path, "attention weights: row = query, column = key", panels,
                           model.blocks[0].sa.n_head, titles, labels, labels);
    fmt::print("wrote the attention maps of {} layers x {} heads to {}\n\n", model.blocks.size(),
               model.blocks[0].sa.n_head, path);
}
