// 06-gpt: what a run prints before it trains (beside the concept): one batch
// walked through the model and back, each step with the shape of its output,
// and what the scale 1/sqrt(hs) does at initialisation. 08-data-parallel
// prints the forward pass too, for one micro-batch.
#pragma once
#include <fmt/core.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "06-gpt/model.hpp"
#include "06-gpt/train.hpp"  // names_of, for the settings' names
#include "common/random.hpp"
#include "common/settings.hpp"
#include "common/tensor.hpp"
#include "common/text.hpp"

// B sequences drawn by get_batch (from seed + 1: the run's batches are not
// touched) through the model, step by step, then the loss. Model: 06's
// GPTLanguageModel, or 08's DataParallelGPT, which seeds its dropout in loss().
template <typename Model>
void print_forward_shapes(Model& model, const nn::TextData& data, int B, std::uint64_t seed) {
    const Config& c = model.config;
    const int T = c.block_size, V = c.vocab_size;
    nn::Rng show(seed + 1);
    Block& b0 = model.blocks[0];
    b0.sa.att.keep_weights = true;  // to show wei; training does not keep it (attention.hpp)
    const double loss0 = model.loss(nn::get_batch(data, nn::Split::train, B, T, show));
    auto row = [](const std::string& what, const nn::Matrix& m, const std::string& note) {
        fmt::print("    {:<42} {}  {}\n", what, nn::shape(m), note);
    };
    auto ln = [&](const char* name) { return c.layernorm ? fmt::format("{}(x)", name) : std::string("x"); };
    fmt::print("  {:<44} ({}, {})  tokens; row b is text[i_b : i_b+{}]\n", "xb = get_batch('train')", B, T, T);
    fmt::print("  {:<44} {}  (B*T, C)\n", "x = tok_emb + pos_emb", nn::shape(model.x));
    fmt::print("  {} x Block:\n", c.n_layer);
    if (c.layernorm)  // ln1(x) is not kept (memory.hpp); it has its input's shape
        row("ln1(x)", *b0.ln1.x, "(B*T, C): each row to mean 0, variance 1");
    row(fmt::format("qkv = c_attn({})", ln("ln1")), b0.sa.c_attn.y, "(B*T, 3C): q, k, v of all heads");
    const std::string scores = c.score == Score::dot ? (c.scale ? "q k^T / sqrt(hs)" : "q k^T")
                                                     : score_formula(c.score, c.scale);  // 04's --score
    row("wei = softmax(mask(" + scores + "))", b0.sa.att.wei, c.score == Score::dot ? "(B*nh*T, T): B*nh blocks of (T, T)"
        : fmt::format("(B*nh*T, T): B*nh blocks of (T, T), the {} score", nn::setting_text(c.score)));
    row("out = wei v", b0.sa.out, "(B*T, C): the heads side by side");
    const std::string attn_out = c.projection ? "proj(out)" : "out", ffwd_out = c.projection ? "proj(h)" : "h";
    row((c.residual ? "x = x + " : "x = ") + attn_out, b0.x1, "(B*T, C)");
    row(fmt::format("h = {}(fc({}))", nn::setting_text(c.activation), ln("ln2")), b0.ffwd.fc.y,  // h's shape: h itself is not kept (model.hpp)
        fmt::format("(B*T, {}C)", c.ffwd_mult));
    row((c.residual ? "x = x + " : "x = ") + ffwd_out, b0.y, "(B*T, C)");
    fmt::print("  {:<44} {}  (B*T, V): {}\n", fmt::format("logits = lm_head({})", ln("ln_f")), nn::shape(model.criterion.probs),
               c.tie ? "tied to token_embedding_table" : "its own (V, C) matrix");
    fmt::print("  {:<44} ()  = {:.4f} (a uniform guess gives ln {} = {:.4f})\n", "loss = cross_entropy(logits, yb)",
               loss0, V, std::log(static_cast<double>(V)));
    b0.sa.att.keep_weights = false;
    b0.sa.att.wei.resize(0, 0);
}

// What the scale does at initialisation, in the first block: the variance of the scores q.k over
// every (i, j <= i) of a sequence, with and without 1 / sqrt(hs), and softmax's largest weight in
// a row, averaged over the rows, for qkv (B*T, 3C) and again for q, k drawn from N(0, 1) (as the
// lecture does, with their own generator: the run's is not touched). With --score, also the run's
// score: how widely it spreads over the keys of a row (the standard deviation over j <= i, averaged
// over the rows i >= 1) against the dot product's, and softmax's largest weight.
inline void print_scale(const nn::Matrix& qkv, const Config& c, int B, std::uint64_t seed) {
    const int T = c.block_size, C = c.n_embd, hs = C / c.n_head;
    auto print = [&](const char* what, const nn::Matrix& m) {
        double var_q = 0, var_k = 0, sum = 0, sum2 = 0, count = 0, max_scaled = 0, max_unscaled = 0;
        double spread_dot = 0, spread_score = 0, max_score = 0, rows = 0;  // --score
        auto variance = [](const auto& x) { return static_cast<double>((x.array() - x.mean()).square().mean()); };
        const float scale = c.scale ? 1.0f / std::sqrt(static_cast<float>(hs)) : 1.0f;
        nn::Matrix s(T, T), w(T, T), score(T, T);
        nn::Vector row_max(T), row_sum(T);
        for (int h = 0; h < c.n_head; ++h) {
            var_q += variance(m.middleCols(h * hs, hs)) / c.n_head;
            var_k += variance(m.middleCols(C + h * hs, hs)) / c.n_head;
            for (int b = 0; b < B; ++b) {
                s.noalias() = m.block(b * T, h * hs, T, hs) * m.block(b * T, C + h * hs, T, hs).transpose();
                for (int i = 0; i < T; ++i) {
                    sum += s.row(i).head(i + 1).sum();
                    sum2 += s.row(i).head(i + 1).squaredNorm();
                    count += i + 1;
                }
                for (const bool scaled : {true, false}) {
                    w = scaled ? (s / std::sqrt(static_cast<float>(hs))).eval() : s;
                    causal_softmax(w, row_max.data(), row_sum.data());
                    (scaled ? max_scaled : max_unscaled) += w.rowwise().maxCoeff().sum() / (double(c.n_head) * B * T);
                }
                if (c.score == Score::dot) continue;
                score_forward(c.score, m.block(b * T, h * hs, T, hs), m.block(b * T, C + h * hs, T, hs), scale, score);
                for (int i = 1; i < T; ++i, ++rows) {
                    spread_score += std::sqrt(variance(score.row(i).head(i + 1)));
                    spread_dot += scale * std::sqrt(variance(s.row(i).head(i + 1)));
                }
                causal_softmax(score, row_max.data(), row_sum.data());
                max_score += score.rowwise().maxCoeff().sum() / (double(c.n_head) * B * T);
            }
        }
        const double var_s = sum2 / count - (sum / count) * (sum / count);
        fmt::print("  {}: var(q) {:.3g}, var(k) {:.3g}; var(q.k) {:.3g} (hs var(q) var(k) = {:.3g}), "
                   "var(q.k / sqrt(hs)) {:.3g}\n", what, var_q, var_k, var_s, hs * var_q * var_k, var_s / hs);
        fmt::print("    softmax's largest weight in a row, averaged: {:.3f} with 1/sqrt(hs), {:.3f} without\n",
                   max_scaled, max_unscaled);
        if (c.score != Score::dot && rows > 0)
            fmt::print("    the {} score: spread over a row's keys {:.3g} (the dot product's: {:.3g}); "
                       "softmax's largest weight in a row, averaged: {:.3f}\n",
                       nn::setting_text(c.score), spread_score / rows, spread_dot / rows, max_score);
    };
    double even = 0;
    for (int i = 0; i < T; ++i) even += 1.0 / (i + 1) / T;
    fmt::print("the scale at initialisation, block 1, hs = {}, scores q.k of every (i, j <= i) of a sequence "
               "(spread evenly, the largest weight would average {:.3f}):\n", hs, even);
    print("this batch's q, k", qkv);
    nn::Matrix unit(qkv.rows(), 2 * C);
    nn::Rng draw(seed ^ 0x5ca1eULL);
    draw.fill_normal(nn::as_span(unit));
    print("q, k from N(0, 1), the lecture's check", unit);
    fmt::print("  this run: {}\n\n", c.scale ? "scores divided by sqrt(hs) (--no-scale: not)" : "no scale (--no-scale)");
}

// One batch walked through the model and back, to show the shapes.
inline void print_shapes(GPTLanguageModel& model, const nn::TextData& data, const TrainConfig& train, int threads) {
    const Config& c = model.config;
    const int B = train.batch_size, T = c.block_size;
    Block& b0 = model.blocks[0];
    long n_params = 0;
    for (const nn::Parameter* p : model.parameters()) n_params += p->value.size();
    fmt::print("shapes, with B = {} (batch), T = {} (time), C = {} (n_embd), nh = {} (heads), hs = {} (head size), V = {}:\n",
               B, T, c.n_embd, c.n_head, b0.sa.head_size, c.vocab_size);
    print_forward_shapes(model, data, B, train.seed);
    // The same batch back. The blocks free their activations' gradients once read (memory.hpp), so
    // those shapes are given from B, T, C, nh; the parameters' gradients are the kept matrices.
    model.backward();
    const int C = c.n_embd, hs = b0.sa.head_size;
    auto dims = [](long rows, long cols) { return fmt::format("({}, {})", rows, cols); };
    fmt::print("  backward, from the loss to the embeddings:\n");
    fmt::print("  {:<44} {}  (B*T, V): (softmax(logits) - one_hot(yb)) / (B*T)\n", "dlogits", nn::shape(model.criterion.dlogits));
    fmt::print("  {} x Block, the last first:\n", c.n_layer);
    fmt::print("    in each of the B*nh = {} (sequence, head) pairs in turn (attention.hpp):\n", B * c.n_head);
    fmt::print("      {:<40} {}  (T, T): the weights again from q, k, then d of them\n", "dwei = dout_h v^T", dims(T, T));
    fmt::print("      {:<40} {}  (T, T): 0 in the future\n", "ds = wei * (dwei - rowsum(dwei * wei))", dims(T, T));
    if (c.score == Score::dot)
        fmt::print("      {:<40} {}  (T, hs) each\n", c.scale ? "dq = ds k, dk = ds^T q (/ sqrt(hs))" : "dq = ds k, dk = ds^T q", dims(T, hs));
    else
        fmt::print("      {:<40} {}  (T, hs) each: the {} score's backward\n", "dq, dk", dims(T, hs), nn::setting_text(c.score));
    fmt::print("      {:<40} {}  (T, hs)\n", "dv = wei^T dout_h", dims(T, hs));
    fmt::print("    {:<42} {}  (B*T, 3C): every head's dq, dk, dv in its columns\n", "dqkv", dims(long(B) * T, 3 * C));
    fmt::print("    {:<42} {}  (3C, C)\n", "d c_attn.weight", nn::shape(b0.sa.c_attn.weight.grad));
    fmt::print("    {:<42} {}  (B*T, C): what the block hands to the one before\n", "dx", dims(long(B) * T, C));
    fmt::print("  {:<44} {}  (V, C): {}\n", "d token_embedding_table", nn::shape(model.token_embedding_table.weight.grad),
               c.tie ? "from the tied lm head and from the lookup" : "from the lookup");
    fmt::print("  {:<44} {}  (T, C)\n", "d position_embedding_table", nn::shape(model.position_embedding_table.weight.grad));
    fmt::print("  {} trained parameters, {} thread{}\n\n", n_params, threads, threads == 1 ? "" : "s");
    print_scale(b0.sa.c_attn.y, c, B, train.seed);
}
