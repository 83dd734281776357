// 06-gpt: the model, its forward and backward, and generate.
//
// 05's heads and feed-forward layer become a Transformer: n_layer Blocks, each
//   x = x + attn(ln1(x))      communication: every position reads earlier ones
//   x = x + mlp(ln2(x))       computation: every position thinks on its own
// with residual connections (the "+ x": gradients flow straight through),
// LayerNorm (each position's C channels rescaled to mean 0, variance 1), a
// GELU feed-forward four times wider than C, dropout, and a final LayerNorm
// before the lm head, which reuses the token embedding table (weight tying).
// At this scale speed matters, so the key, query and value projections of all
// heads are one (C, 3C) product, and the heads of all sequences run in
// parallel (OpenMP) inside one loop over (b, h).
#pragma once
#include <unsupported/Eigen/SpecialFunctions>  // Eigen's vectorised erf, for GELU

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "common/layers.hpp"
#include "common/sampling.hpp"
#include "common/text.hpp"

struct Config {
    int vocab_size = 65;  // V
    int block_size = 64;  // the longest context T the model takes
    int n_embd = 128;     // C
    int n_head = 4;       // nh; head size hs = C / nh
    int n_layer = 4;      // Blocks
    float dropout = 0.0f;
};

// A random probability that each value is zeroed while training.
// Inverted dropout: the kept values are scaled by 1 / (1 - p), so nothing
// needs rescaling at evaluation time, when dropout does nothing.
struct Dropout {
    float p = 0.0f;
    bool training = true;
    nn::Rng* rng = nullptr;  // the model's: one stream for all masks, saved in checkpoints
    nn::Matrix mask;         // (N, D): 0 or 1 / (1 - p)
    nn::Matrix y, dx;

    bool active() const { return training && p > 0.0f; }
    // Draws a new (rows, cols) mask from rng.
    void draw_mask(Eigen::Index rows, Eigen::Index cols) {
        mask.resize(rows, cols);
        const float keep = 1.0f / (1.0f - p);
        for (float& m : mask.reshaped()) m = rng->uniform() < p ? 0.0f : keep;
    }
    // x (N, D) -> y (N, D) = x * mask
    const nn::Matrix& forward(const nn::Matrix& x) {
        if (!active()) return x;
        draw_mask(x.rows(), x.cols());
        y = x.cwiseProduct(mask);
        return y;
    }
    // dy (N, D) -> dx (N, D) = dy * mask
    const nn::Matrix& backward(const nn::Matrix& dy) {
        if (!active()) return dy;
        dx = dy.cwiseProduct(mask);
        return dx;
    }
};

// Normalises each row (one position's C channels) to mean 0 and variance 1,
// then scales and shifts it with learned gain and bias:
//   xhat = (x - mean) / sqrt(var + eps),  y = xhat * gain + bias
struct LayerNorm {
    static constexpr float eps = 1e-5f;
    nn::Parameter weight, bias;  // (1, C): the gain (starts at 1) and the bias (starts at 0)
    nn::Matrix xhat;             // (N, C): kept for backward
    nn::Vector rstd;             // (N): 1 / sqrt(var + eps) of each row
    nn::Matrix y, dx;

    explicit LayerNorm(int C) {
        weight.resize(1, C);
        weight.value.setOnes();
        bias.resize(1, C);
        weight.decay = bias.decay = false;
    }

    // x (N, C) -> y (N, C)
    const nn::Matrix& forward(const nn::Matrix& x) {
        const Eigen::Index N = x.rows();
        xhat.resize(N, x.cols());
        y.resize(N, x.cols());
        rstd.resize(N);
#pragma omp parallel for schedule(static)
        for (Eigen::Index n = 0; n < N; ++n) {
            const float mean = x.row(n).mean();
            const float var = (x.row(n).array() - mean).square().mean();
            rstd(n) = 1.0f / std::sqrt(var + eps);
            xhat.row(n) = (x.row(n).array() - mean) * rstd(n);
            y.row(n) = xhat.row(n).cwiseProduct(weight.value) + bias.value;
        }
        return y;
    }

    // dy (N, C) -> dx (N, C). With g = dy * gain (the gradient reaching xhat):
    //   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
    // the two means are what the mean and the variance of the row pass back.
    const nn::Matrix& backward(const nn::Matrix& dy) {
        const Eigen::Index N = dy.rows();
        weight.grad += dy.cwiseProduct(xhat).colwise().sum();  // d gain = sum_n dy * xhat
        bias.grad += dy.colwise().sum();                       // d bias = sum_n dy
        dx.resize(N, dy.cols());
#pragma omp parallel for schedule(static)
        for (Eigen::Index n = 0; n < N; ++n) {
            const auto g = (dy.row(n).cwiseProduct(weight.value)).array();
            const float g_mean = g.mean();
            const float gx_mean = (g * xhat.row(n).array()).mean();
            dx.row(n) = rstd(n) * (g - g_mean - xhat.row(n).array() * gx_mean);
        }
        return dx;
    }
};

// The Gaussian Error Linear Unit, a smooth ReLU: y = x * Phi(x), with Phi the
// standard normal CDF, Phi(x) = (1 + erf(x / sqrt 2)) / 2.
struct GELU {
    const nn::Matrix* x = nullptr;  // (N, D): the last input, kept (by address: it is fc's output) for backward
    nn::Matrix y, dx;               // (N, D)

    // x (N, D) -> y (N, D)
    const nn::Matrix& forward(const nn::Matrix& input) {
        x = &input;
        y.resize(input.rows(), input.cols());
#pragma omp parallel for schedule(static)
        for (Eigen::Index n = 0; n < input.rows(); ++n) {
            const auto a = input.row(n).array();
            y.row(n) = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf());
        }
        return y;
    }

    // dy (N, D) -> dx (N, D):  dy/dx = Phi(x) + x * phi(x),  phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        dx.resize(x->rows(), x->cols());
        const float inv_sqrt_2pi = 0.5f * float(M_2_SQRTPI) * float(M_SQRT1_2);
#pragma omp parallel for schedule(static)
        for (Eigen::Index n = 0; n < x->rows(); ++n) {
            const auto a = x->row(n).array();
            const auto Phi = 0.5f * (1.0f + (a * float(M_SQRT1_2)).erf());
            const auto phi = inv_sqrt_2pi * (-0.5f * a.square()).exp();
            dx.row(n) = dy.row(n).array() * (Phi + a * phi);
        }
        return dx;
    }
};

// Softmax of row i of a causal (T, T) score matrix over its first i + 1
// entries; the rest (the future) become 0.
inline void causal_softmax(Eigen::Ref<nn::Matrix> s) {
    for (Eigen::Index i = 0; i < s.rows(); ++i) {
        auto seen = s.row(i).head(i + 1).array();
        seen = (seen - seen.maxCoeff()).exp();
        seen /= seen.sum();
        s.row(i).tail(s.cols() - i - 1).setZero();
    }
}

// nh heads of causal self-attention side by side, as 05's MultiHeadAttention,
// with one (C, 3C) projection for the keys, queries and values of all heads.
// For each sequence b and head h (hs = C / nh channels of q, k and v):
//   wei = softmax(mask(q k^T / sqrt(hs)))   (T, T)
//   out = dropout(wei) v                    (T, hs), into columns [h hs, (h+1) hs) of out
// then y = dropout(proj(out)).
struct MultiHeadAttention {
    int n_head, head_size;
    nn::Linear c_attn;  // C -> 3C: [q of every head | k of every head | v of every head]
    nn::Linear proj;    // C -> C
    Dropout attn_dropout, resid_dropout;
    int B = 0, T = 0;
    nn::Matrix wei;    // (B*nh*T, T): the attention weights of head h of sequence b in rows (b nh + h) T ...
    nn::Matrix drop;   // (B*nh*T, T): dropout(wei), when dropout is on
    nn::Matrix out;    // (B*T, C): the heads' outputs, concatenated
    nn::Matrix dwei;   // (B*nh*T, T): backward's scratch
    nn::Matrix dqkv;   // (B*T, 3C)

    MultiHeadAttention(const Config& c, nn::Rng& rng)
        : n_head(c.n_head), head_size(c.n_embd / c.n_head), c_attn(c.n_embd, 3 * c.n_embd, true, rng),
          proj(c.n_embd, c.n_embd, true, rng) {
        attn_dropout.p = resid_dropout.p = c.dropout;
    }

    // x (B*T, C) -> y (B*T, C)
    const nn::Matrix& forward(const nn::Matrix& x, int B_, int T_) {
        B = B_, T = T_;
        const int C = n_head * head_size, hs = head_size;
        const nn::Matrix& qkv = c_attn.forward(x);  // (B*T, 3C)
        const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
        wei.resize(B * n_head * T, T);
        out.resize(B * T, C);
        if (attn_dropout.active()) attn_dropout.draw_mask(wei.rows(), wei.cols());  // before the threads split
        const nn::Matrix& att = attn_dropout.active() ? drop : wei;
        if (attn_dropout.active()) drop.resize(wei.rows(), wei.cols());
#pragma omp parallel for schedule(static)
        for (int bh = 0; bh < B * n_head; ++bh) {  // one Head of 05 for one sequence
            const int b = bh / n_head, h = bh % n_head;
            const auto q = qkv.block(b * T, h * hs, T, hs);          // (T, hs)
            const auto k = qkv.block(b * T, C + h * hs, T, hs);      // (T, hs)
            const auto v = qkv.block(b * T, 2 * C + h * hs, T, hs);  // (T, hs)
            auto w = wei.middleRows(bh * T, T);                      // (T, T)
            w.noalias() = scale * q * k.transpose();
            causal_softmax(w);
            if (attn_dropout.active())
                drop.middleRows(bh * T, T) = w.cwiseProduct(attn_dropout.mask.middleRows(bh * T, T));
            out.block(b * T, h * hs, T, hs).noalias() = att.middleRows(bh * T, T) * v;
        }
        return resid_dropout.forward(proj.forward(out));
    }

    // dy (B*T, C) -> dx (B*T, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        const int C = n_head * head_size, hs = head_size;
        const nn::Matrix& dout = proj.backward(resid_dropout.backward(dy));  // (B*T, C)
        const nn::Matrix& qkv = c_attn.y;
        const nn::Matrix& att = attn_dropout.active() ? drop : wei;
        const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
        dwei.resize(wei.rows(), wei.cols());
        dqkv.resize(B * T, 3 * C);
#pragma omp parallel for schedule(static)
        for (int bh = 0; bh < B * n_head; ++bh) {
            const int b = bh / n_head, h = bh % n_head;
            const auto q = qkv.block(b * T, h * hs, T, hs);
            const auto k = qkv.block(b * T, C + h * hs, T, hs);
            const auto v = qkv.block(b * T, 2 * C + h * hs, T, hs);
            const auto w = wei.middleRows(bh * T, T);
            const auto dout_h = dout.block(b * T, h * hs, T, hs);
            auto d = dwei.middleRows(bh * T, T);
            // out = att v:  d att = dout v^T,  dv = att^T dout
            d.noalias() = dout_h * v.transpose();
            dqkv.block(b * T, 2 * C + h * hs, T, hs).noalias() = att.middleRows(bh * T, T).transpose() * dout_h;
            // att = wei * mask:  d wei = d att * mask
            if (attn_dropout.active()) d.array() *= attn_dropout.mask.middleRows(bh * T, T).array();
            // softmax, row by row: ds_ij = wei_ij (dwei_ij - sum_j' dwei_ij' wei_ij');
            // the future has wei = 0 and gets no gradient.
            for (int i = 0; i < T; ++i) {
                const float dot = d.row(i).dot(w.row(i));
                d.row(i) = w.row(i).cwiseProduct((d.row(i).array() - dot).matrix());
            }
            // s = scale q k^T:  dq = scale ds k,  dk = scale ds^T q
            dqkv.block(b * T, h * hs, T, hs).noalias() = scale * d * k;
            dqkv.block(b * T, C + h * hs, T, hs).noalias() = scale * d.transpose() * q;
        }
        return c_attn.backward(dqkv);
    }

    // Generation with a key/value cache: x (1, C) is the input at position
    // `pos`; its key and value join rows [0, pos) of the cache, which hold the
    // earlier positions', and only this one query is computed. -> y (1, C)
    const nn::Matrix& forward_cached(const nn::Matrix& x, nn::Matrix& k_cache, nn::Matrix& v_cache, int pos) {
        const int C = n_head * head_size, hs = head_size;
        const nn::Matrix& qkv = c_attn.forward(x);  // (1, 3C)
        k_cache.row(pos) = qkv.row(0).segment(C, C);
        v_cache.row(pos) = qkv.row(0).segment(2 * C, C);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
        out.resize(1, C);
        wei.resize(1, pos + 1);
        for (int h = 0; h < n_head; ++h) {
            const auto q = qkv.block(0, h * hs, 1, hs);                  // (1, hs)
            const auto k = k_cache.block(0, h * hs, pos + 1, hs);        // (pos+1, hs)
            const auto v = v_cache.block(0, h * hs, pos + 1, hs);        // (pos+1, hs)
            wei.noalias() = scale * q * k.transpose();                   // (1, pos+1)
            nn::softmax_rows(wei);                                       // the newest query sees all
            out.block(0, h * hs, 1, hs).noalias() = wei * v;
        }
        return proj.forward(out);
    }
};

// A feed-forward layer four times wider than C, with GELU: y = dropout(proj(gelu(fc(x))))
struct FeedForward {
    nn::Linear fc;    // C -> 4C
    GELU gelu;
    nn::Linear proj;  // 4C -> C
    Dropout dropout;

    FeedForward(const Config& c, nn::Rng& rng)
        : fc(c.n_embd, 4 * c.n_embd, true, rng), proj(4 * c.n_embd, c.n_embd, true, rng) {
        dropout.p = c.dropout;
    }
    // x (N, C) -> y (N, C)
    const nn::Matrix& forward(const nn::Matrix& x) {
        return dropout.forward(proj.forward(gelu.forward(fc.forward(x))));
    }
    // dy (N, C) -> dx (N, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        return fc.backward(gelu.backward(proj.backward(dropout.backward(dy))));
    }
};

// A Transformer block: communication (attention) then computation (the
// feed-forward layer), each on a LayerNorm'd copy of x and added back to x.
struct Block {
    LayerNorm ln1;
    MultiHeadAttention sa;
    LayerNorm ln2;
    FeedForward ffwd;
    nn::Matrix x1, y;  // (B*T, C): x + sa(ln1(x)), and the block's output
    nn::Matrix dx1, dx;

    Block(const Config& c, nn::Rng& rng) : ln1(c.n_embd), sa(c, rng), ln2(c.n_embd), ffwd(c, rng) {}

    // x (B*T, C) -> y (B*T, C)
    const nn::Matrix& forward(const nn::Matrix& x, int B, int T) {
        x1 = x + sa.forward(ln1.forward(x), B, T);
        y = x1 + ffwd.forward(ln2.forward(x1));
        return y;
    }
    // dy (B*T, C) -> dx (B*T, C). A residual y = x + f(x) passes dy to x
    // unchanged and adds what f passes back.
    const nn::Matrix& backward(const nn::Matrix& dy) {
        dx1 = dy + ln2.backward(ffwd.backward(dy));
        dx = dx1 + ln1.backward(sa.backward(dx1));
        return dx;
    }
    // Generation: x (1, C) at position pos, with this block's key/value cache -> y (1, C)
    const nn::Matrix& forward_cached(const nn::Matrix& x, nn::Matrix& k_cache, nn::Matrix& v_cache, int pos) {
        x1 = x + sa.forward_cached(ln1.forward(x), k_cache, v_cache, pos);
        y = x1 + ffwd.forward(ln2.forward(x1));
        return y;
    }
};

// The keys and values of the positions generated so far, per block.
struct KVCache {
    std::vector<nn::Matrix> k, v;  // n_layer of (block_size, C)
    int length = 0;                // positions filled
};

struct GPTLanguageModel {
    Config config;
    nn::Rng dropout_rng;                     // every dropout mask comes from here
    nn::Embedding token_embedding_table;     // (V, C); also the lm head: logits = x W_te^T
    nn::Embedding position_embedding_table;  // (block_size, C)
    std::vector<Block> blocks;
    LayerNorm ln_f;
    nn::CrossEntropy criterion;
    std::vector<int> pos;      // (B*T): the position t of each row
    nn::Matrix x, logits;      // (B*T, C), (B*T, V)
    nn::Matrix dx;             // (B*T, C)

    GPTLanguageModel(const Config& c, nn::Rng& rng)
        : config(c), dropout_rng(rng.below(UINT64_MAX)),
          token_embedding_table(c.vocab_size, c.n_embd, rng),
          position_embedding_table(c.block_size, c.n_embd, rng), ln_f(c.n_embd) {
        if (c.n_head < 1 || c.n_embd % c.n_head != 0)
            nn::fail("n_embd ({}) must be a multiple of n_head ({})", c.n_embd, c.n_head);
        blocks.reserve(static_cast<std::size_t>(c.n_layer));  // no reallocation: Dropout points into the model
        for (int l = 0; l < c.n_layer; ++l) blocks.emplace_back(c, rng);
        // GPT-2's initialisation: N(0, 0.02) for weights, zero biases, and the
        // projections that feed the residual stream scaled by 1/sqrt(2 n_layer),
        // so the sum of 2 n_layer of them starts as small as one.
        auto normal = [&](nn::Parameter& p, float std) {
            rng.fill_normal({p.value.data(), static_cast<std::size_t>(p.value.size())}, 0.0f, std);
        };
        normal(token_embedding_table.weight, 0.02f);
        normal(position_embedding_table.weight, 0.02f);
        const float std_proj = 0.02f / std::sqrt(2.0f * static_cast<float>(c.n_layer));
        for (Block& b : blocks) {
            for (nn::Linear* l : {&b.sa.c_attn, &b.sa.proj, &b.ffwd.fc, &b.ffwd.proj}) {
                normal(l->weight, l == &b.sa.proj || l == &b.ffwd.proj ? std_proj : 0.02f);
                l->bias.value.setZero();
                l->bias.decay = false;  // weight decay shrinks matrices only
            }
        }
        for (Dropout* d : dropouts()) d->rng = &dropout_rng;
    }
    GPTLanguageModel(const GPTLanguageModel&) = delete;  // the dropouts point at dropout_rng

    // Switches dropout on (training) or off (evaluation, generation).
    void train(bool on) {
        for (Dropout* d : dropouts()) d->training = on;
    }

    // idx (B*T) -> logits (B*T, V)
    const nn::Matrix& forward(std::span<const int> idx, int B, int T) {
        if (T < 1 || static_cast<std::size_t>(B) * T != idx.size())
            nn::fail("forward needs B*T = {}*{} tokens, got {}", B, T, idx.size());
        if (T > config.block_size)
            nn::fail("a context of {} characters is longer than the {} this model was built for "
                     "(--block-size)", T, config.block_size);
        pos.resize(idx.size());
        for (std::size_t n = 0; n < pos.size(); ++n) pos[n] = static_cast<int>(n % T);
        x = token_embedding_table.forward(idx) + position_embedding_table.forward(pos);  // (B*T, C)
        const nn::Matrix* h = &x;
        for (Block& block : blocks) h = &block.forward(*h, B, T);  // (B*T, C)
        const nn::Matrix& hf = ln_f.forward(*h);                   // (B*T, C)
        logits.noalias() = hf * token_embedding_table.weight.value.transpose();  // (B*T, V), tied
        return logits;
    }

    // batch x, y (B*T) -> loss (): forward, then cross-entropy against the targets
    float loss(const nn::Batch& batch) {
        return criterion.forward(forward(batch.x, batch.B, batch.T), batch.y);
    }

    // () -> (): d(loss)/d(every parameter), added to its .grad, after loss()
    void backward() {
        const nn::Matrix& dlogits = criterion.backward();  // (B*T, V)
        nn::Parameter& wte = token_embedding_table.weight;
        // logits = hf W_te^T:  dW_te += dlogits^T hf,  dhf = dlogits W_te
        wte.grad.noalias() += dlogits.transpose() * ln_f.y;
        dx.noalias() = dlogits * wte.value;
        const nn::Matrix* d = &ln_f.backward(dx);
        for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) d = &b->backward(*d);
        token_embedding_table.backward(*d);  // x = tok_emb + pos_emb: both get d
        position_embedding_table.backward(*d);
    }

    std::vector<nn::Parameter*> parameters() {
        std::vector<nn::Parameter*> p{&token_embedding_table.weight, &position_embedding_table.weight};
        for (Block& b : blocks) {
            for (nn::Linear* l : {&b.sa.c_attn, &b.sa.proj, &b.ffwd.fc, &b.ffwd.proj}) {
                p.push_back(&l->weight);
                p.push_back(&l->bias);
            }
            for (LayerNorm* ln : {&b.ln1, &b.ln2}) {
                p.push_back(&ln->weight);
                p.push_back(&ln->bias);
            }
        }
        p.push_back(&ln_f.weight);
        p.push_back(&ln_f.bias);
        return p;
    }

    std::vector<Dropout*> dropouts() {
        std::vector<Dropout*> d;
        for (Block& b : blocks) d.insert(d.end(), {&b.sa.attn_dropout, &b.sa.resid_dropout, &b.ffwd.dropout});
        return d;
    }

    // Generation, one position at a time: the logits (1, V) after token `token`
    // at position cache.length, whose keys and values join the cache.
    const nn::Matrix& forward_cached(int token, KVCache& cache) {
        if (cache.k.empty()) {
            cache.k.assign(blocks.size(), nn::Matrix::Zero(config.block_size, config.n_embd));
            cache.v = cache.k;
        }
        const int p = cache.length++;
        x = token_embedding_table.weight.value.row(token) + position_embedding_table.weight.value.row(p);
        const nn::Matrix* h = &x;
        for (std::size_t l = 0; l < blocks.size(); ++l) h = &blocks[l].forward_cached(*h, cache.k[l], cache.v[l], p);
        logits.noalias() = ln_f.forward(*h) * token_embedding_table.weight.value.transpose();
        return logits;
    }

    // idx (T) -> idx (T + max_new_tokens): appends one sampled token at a time.
    // The model sees at most block_size characters. When they are used up it
    // starts again from the last block_size / 2: with the cache, each new
    // character costs one position's work, plus re-reading block_size / 2
    // characters every block_size / 2. use_cache = false recomputes the whole
    // window for every character instead, the same tokens at much more cost.
    std::vector<int> generate(std::vector<int> idx, int max_new_tokens, nn::Rng& rng,
                              float temperature = 1.0f, int top_k = 0, bool use_cache = true) {
        if (idx.empty()) nn::fail("generate needs at least one token of context");
        train(false);
        KVCache cache;
        std::size_t start = 0;  // the window is idx[start, idx.size())
        for (int i = 0; i < max_new_tokens; ++i) {
            if (idx.size() - start > static_cast<std::size_t>(config.block_size)) {
                start = idx.size() - static_cast<std::size_t>(std::max(1, config.block_size / 2));
                cache.length = 0;
            }
            const std::span<const int> window = std::span<const int>(idx).subspan(start);
            const nn::Matrix* out = nullptr;
            if (use_cache) {
                while (static_cast<std::size_t>(cache.length) < window.size())
                    out = &forward_cached(window[static_cast<std::size_t>(cache.length)], cache);
            } else {
                out = &forward(window, 1, static_cast<int>(window.size()));
            }
            const auto last = out->row(out->rows() - 1);  // only the last position predicts
            idx.push_back(nn::sample({last.data(), static_cast<std::size_t>(last.size())}, rng,
                                     temperature, top_k));
        }
        return idx;
    }

};
