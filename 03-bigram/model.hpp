// 03-bigram: the model, its forward and backward, and generate.
//
// A bigram model predicts the next character from the current one alone. Its
// only parameter is a (V, V) table: row i holds the logits (unnormalised log
// probabilities) of every character that may follow character i. Reading the
// rows of the input tokens IS the forward pass; softmax cross-entropy turns
// the logits into a loss.
#pragma once
#include <span>
#include <vector>

#include "common/layers.hpp"
#include "common/sampling.hpp"
#include "common/text.hpp"

struct BigramLanguageModel {
    nn::Embedding token_embedding_table;  // (V, V)
    nn::CrossEntropy criterion;

    BigramLanguageModel(int vocab_size, nn::Rng& rng)
        : token_embedding_table(vocab_size, vocab_size, rng) {}

    // idx (B*T) -> logits (B*T, V)
    const nn::Matrix& forward(std::span<const int> idx) {
        return token_embedding_table.forward(idx);  // logits[n] = table[idx[n]]
    }

    // batch x, y (B*T) -> loss (): forward, then cross-entropy against the targets
    double loss(const nn::Batch& batch) { return criterion.forward(forward(batch.x), batch.y); }

    // () -> (): d(loss)/d(every parameter), added to its .grad, after loss()
    void backward() {
        const nn::Matrix& dlogits = criterion.backward();  // (B*T, V)
        token_embedding_table.backward(dlogits);            // (B*T, V) -> table (V, V)
    }

    std::vector<nn::Parameter*> parameters() { return {&token_embedding_table.weight}; }

    // idx (T) -> idx (T + max_new_tokens): appends one sampled token at a time
    std::vector<int> generate(std::vector<int> idx, int max_new_tokens, nn::Rng& rng,
                              float temperature = 1.0f, int top_k = 0) {
        for (int i = 0; i < max_new_tokens; ++i) {
            const nn::Matrix& logits = forward(idx);  // (T, V)
            const auto last = logits.row(logits.rows() - 1);  // only the last position predicts
            idx.push_back(nn::sample({last.data(), static_cast<std::size_t>(last.size())}, rng,
                                     temperature, top_k));
        }
        return idx;
    }
};
