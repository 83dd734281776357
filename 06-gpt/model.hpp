// 06-gpt: the model, its forward and backward.
//
// 05's heads and feed-forward layer become a Transformer: n_layer Blocks, each
//   x = x + attn(ln1(x))      communication: every position reads earlier ones
//   x = x + mlp(ln2(x))       computation: every position thinks on its own
// with residual connections (the "+ x": gradients flow straight through),
// LayerNorm (each position's C channels rescaled to mean 0, variance 1), a
// GELU feed-forward four times wider than C, dropout, and a final LayerNorm
// before the lm head, which reuses the token embedding table (weight tying).
// Each of these pieces has a switch in Config, so a run can show what it is
// worth (the README walks the lecture's path with them).
//
// Beside this file: layers.hpp (LayerNorm, GELU, the feed-forward layer) and
// dropout.hpp, attention.hpp (all heads at once, the fast form of 05's
// Head), generate.hpp (sampling with a key/value cache), train.hpp (settings
// and learning-rate schedule), checkpoint.hpp (the file format), and common/runtime.hpp.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <vector>

#include "06-gpt/attention.hpp"
#include "06-gpt/layers.hpp"
#include "common/error.hpp"
#include "common/layers.hpp"
#include "common/text.hpp"
#include "common/threads.hpp"

enum class Init { gpt2, pytorch };  // GPT-2's initial weights, or PyTorch's defaults (the lecture's)
inline constexpr std::array<const char*, 2> kInitNames{"gpt2", "pytorch"};

struct Config {
    int vocab_size = 65;  // V
    int block_size = 64;  // the longest context T the model takes
    int n_embd = 128;     // C
    int n_head = 4;       // nh; head size hs = C / nh
    int n_layer = 4;      // Blocks
    float dropout = 0.0f;
    // The pieces this lesson adds, each of which can be switched off:
    bool residual = true;    // x = x + f(x); off: x = f(x)
    bool layernorm = true;   // ln1, ln2, ln_f; off: the identity
    bool projection = true;  // attention's and the feed-forward layer's output projections
    Activation activation = Activation::gelu;
    int ffwd_mult = 4;       // the feed-forward layer's hidden width, in units of C
    bool tie = true;         // the lm head reuses token_embedding_table; off: its own (V, C) matrix
    Init init = Init::gpt2;
    bool scale = true;       // attention scores q.k / sqrt(hs); off: q.k
    Score score = Score::dot;  // how well a key matches a query: 04's --score (04-self-attention/score.hpp)

    // InputError, naming the flag to change, unless the settings can build a model.
    // The only home of these checks: the command line and checkpoints use it too.
    void validate() const {
        if (vocab_size < 1 || vocab_size > (1 << 21)) nn::fail("a vocabulary of {} characters is impossible", vocab_size);
        if (n_embd % n_head != 0)
            nn::fail("--n-embd ({}) must be a multiple of --n-head ({}): each head gets n_embd / n_head channels",
                     n_embd, n_head);
        if (!(dropout >= 0 && dropout < 1)) nn::fail("--dropout must be in [0, 1), not {}", dropout);
        if (!projection && ffwd_mult != 1)
            nn::fail("--no-proj needs --ffwd-mult 1: without its projection the feed-forward layer's "
                     "hidden width is its output width, C");
        // Limits far beyond a CPU's reach, so that no product of them overflows an int.
        if (block_size < 1 || block_size > (1 << 20) || n_embd < 1 || n_embd > 65536 || n_head < 1 ||
            n_layer < 1 || n_layer > 1024 || ffwd_mult < 1 || ffwd_mult > 64)
            nn::fail("impossible model size (block {}, C {}, heads {}, layers {}, ffwd-mult {})", block_size,
                     n_embd, n_head, n_layer, ffwd_mult);
    }
};

inline const Config& validated(const Config& c) {
    c.validate();
    return c;
}

// nh heads of causal self-attention side by side, as 05's MultiHeadAttention,
// with one (C, 3C) projection for the keys, queries and values of all heads
// (05's separate key, query and value Linears of every head, stacked). For
// each sequence b and head h (hs = C / nh channels of q, k and v):
//   wei = softmax(mask(q k^T / sqrt(hs)))   (T, T)   (q k^T alone with --no-scale; another score with --score)
//   out = dropout(wei) v                    (T, hs), into columns [h hs, (h+1) hs) of out
// then y = dropout(proj(out)) (no proj with --no-proj).
struct MultiHeadAttention {
    int n_head, head_size;
    bool projection;
    nn::Linear c_attn;  // C -> 3C: [q of every head | k of every head | v of every head]
    nn::Linear proj;    // C -> C
    Dropout attn_dropout, resid_dropout;
    AttentionState att;  // what backward needs of every head: attention.hpp
    nn::Matrix out;      // (B*T, C): the heads' outputs, concatenated
    nn::Matrix dqkv;     // (B*T, 3C)

    MultiHeadAttention(const Config& c, nn::Rng& rng)
        : n_head(c.n_head), head_size(c.n_embd / c.n_head), projection(c.projection),
          c_attn(c.n_embd, 3 * c.n_embd, true, rng), proj(c.n_embd, c.n_embd, true, rng) {
        attn_dropout.p = resid_dropout.p = c.dropout;
        att.scaled = c.scale;
        att.score = c.score;
    }

    const DropMask* attn_mask() const { return attn_dropout.active() ? &attn_dropout.mask : nullptr; }

    // x (B*T, C) -> y (B*T, C), which the caller adds to the residual stream
    // (and may then free: backward does not read it)
    nn::Matrix& forward(const nn::Matrix& x, int B, int T) {
        const nn::Matrix& qkv = c_attn.forward(x);  // (B*T, 3C)
        if (attn_dropout.active()) attn_dropout.draw_mask(B * n_head * T, T);
        causal_attention_forward(qkv, B, T, n_head, attn_mask(), att, out);  // (B*T, C)
        nn::Matrix* y = &out;
        if (projection) {
            proj.forward(out);
            y = &proj.y;
        }
        resid_dropout.forward(*y);  // in place
        return *y;
    }

    // dy (B*T, C) -> dx (B*T, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        const nn::Matrix& dproj = resid_dropout.backward(dy);
        const nn::Matrix& dout = projection ? proj.backward(dproj) : dproj;  // (B*T, C)
        causal_attention_backward(dout, c_attn.y, n_head, attn_mask(), att, dqkv);  // c_attn.y: the forward's qkv
        return c_attn.backward(dqkv);
    }
};

// What a block frees after forward and between the halves of its backward:
// memory.hpp, beside this file.
struct Block;
inline void free_after_forward(Block& b);
inline void free_feed_forward_gradients(Block& b);
inline void free_attention_gradients(Block& b);
inline void free_layernorm_outputs(Block& b);
inline void restore_layernorm_outputs(Block& b);

// A Transformer block: communication (attention) then computation (the
// feed-forward layer), each on a LayerNorm'd copy of x and added back to x.
struct Block {
    bool residual;
    LayerNorm ln1;
    MultiHeadAttention sa;
    LayerNorm ln2;
    FeedForward ffwd;
    nn::Matrix x1, y;  // (B*T, C): x + sa(ln1(x)), and the block's output
    nn::Matrix dx1, dx;

    Block(const Config& c, nn::Rng& rng)
        : residual(c.residual), ln1(c.n_embd, c.layernorm), sa(c, rng), ln2(c.n_embd, c.layernorm),
          ffwd(c.n_embd, c.ffwd_mult * c.n_embd, c.activation, c.projection, c.dropout, rng) {}

    // x (B*T, C) -> y (B*T, C)
    const nn::Matrix& forward(const nn::Matrix& x, int B, int T) {
        const nn::Matrix& a = sa.forward(ln1.forward(x), B, T);
        if (residual) nn::by_rows(x1) = x + a;  // x1 = x + sa(ln1(x)), the threads sharing its rows
        else x1 = a;
        const nn::Matrix& f = ffwd.forward(ln2.forward(x1));
        if (residual) nn::by_rows(y) = x1 + f;  // y = x1 + ffwd(ln2(x1))
        else y = f;
        free_after_forward(*this);  // memory.hpp
        return y;
    }
    // dy (B*T, C) -> dx (B*T, C). A residual y = x + f(x) passes dy to x
    // unchanged and adds what f passes back.
    // Exercise: block_backward
    const nn::Matrix& backward(const nn::Matrix& dy) {
        dx1 = ln2.backward(ffwd.backward(dy));
        if (residual) nn::by_rows(dx1) += dy;
        free_feed_forward_gradients(*this);  // memory.hpp
        dx = ln1.backward(sa.backward(dx1));
        if (residual) nn::by_rows(dx) += dx1;
        free_attention_gradients(*this);  // memory.hpp
        return dx;
    }
};

struct GPTLanguageModel {
    Config config;
    std::uint64_t dropout_seed;              // drawn from the weights' generator
    nn::Rng dropout_rng;                     // every dropout mask comes from here
    nn::Embedding token_embedding_table;     // (V, C); also the lm head when tied: logits = x W_te^T
    nn::Embedding position_embedding_table;  // (block_size, C)
    std::vector<Block> blocks;
    LayerNorm ln_f;
    std::optional<nn::Linear> lm_head;  // (V, C), without bias: only with --no-tie
    nn::CrossEntropy criterion;
    std::vector<int> pos;      // (B*T): the position t of each row
    nn::Matrix x, logits;      // (B*T, C), (B*T, V)
    nn::Matrix dx;             // (B*T, C)

    GPTLanguageModel(const Config& c, nn::Rng& rng)
        : config(validated(c)), dropout_seed(rng.below(UINT64_MAX)), dropout_rng(dropout_seed),
          token_embedding_table(c.vocab_size, c.n_embd, rng),
          position_embedding_table(c.block_size, c.n_embd, rng), ln_f(c.n_embd, c.layernorm) {
        blocks.reserve(static_cast<std::size_t>(c.n_layer));  // no reallocation: Dropout points into the model
        for (int l = 0; l < c.n_layer; ++l) blocks.emplace_back(c, rng);
        if (!c.tie) lm_head.emplace(c.n_embd, c.vocab_size, false, rng);
        for (Block& b : blocks)
            for (nn::Linear* l : {&b.sa.c_attn, &b.sa.proj, &b.ffwd.fc, &b.ffwd.proj}) l->bias.decay = false;  // decay shrinks matrices only
        for (Dropout* d : dropouts()) d->rng = &dropout_rng;
        if (c.init == Init::pytorch) return;  // as built: embeddings N(0, 1), Linear U(-1/sqrt(in), 1/sqrt(in))
        // GPT-2's initialisation: N(0, 0.02) for weights, zero biases, and the
        // projections that feed the residual stream scaled by 1/sqrt(2 n_layer),
        // so the sum of 2 n_layer of them starts as small as one.
        auto normal = [&](nn::Parameter& p, float std) { rng.fill_normal(nn::as_span(p.value), 0.0f, std); };
        normal(token_embedding_table.weight, 0.02f);
        normal(position_embedding_table.weight, 0.02f);
        const float std_proj = 0.02f / std::sqrt(2.0f * static_cast<float>(c.n_layer));
        for (Block& b : blocks) {
            for (nn::Linear* l : {&b.sa.c_attn, &b.sa.proj, &b.ffwd.fc, &b.ffwd.proj}) {
                normal(l->weight, l == &b.sa.proj || l == &b.ffwd.proj ? std_proj : 0.02f);
                l->bias.value.setZero();
            }
        }
        if (lm_head) normal(lm_head->weight, 0.02f);
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
        for (Block& block : blocks) {
            h = &block.forward(*h, B, T);  // (B*T, C)
            free_layernorm_outputs(block);  // memory.hpp
        }
        return head_forward(ln_f.forward(*h));  // (B*T, V)
    }

    // hf (N, C) -> logits (N, V): hf W_te^T when tied, else lm_head(hf)
    const nn::Matrix& head_forward(const nn::Matrix& hf) {
        if (lm_head) return lm_head->forward(hf);
        logits.resize(hf.rows(), config.vocab_size);
        nn::product_by_rows(hf, token_embedding_table.weight.value.transpose(), logits);
        return logits;
    }

    // batch x, y (B*T) -> loss (): forward, then cross-entropy against the targets
    double loss(const nn::Batch& batch) {
        return criterion.forward(forward(batch.x, batch.B, batch.T), batch.y);
    }

    // () -> (): d(loss)/d(every parameter), added to its .grad, after loss()
    void backward() {
        const nn::Matrix& dlogits = criterion.backward();  // (B*T, V)
        const nn::Matrix& hf = config.layernorm ? ln_f.y : blocks.back().y;  // what head_forward was given
        if (lm_head) {
            dx = lm_head->backward(dlogits);
        } else {
            // logits = hf W_te^T:  dW_te += dlogits^T hf,  dhf = dlogits W_te
            nn::Parameter& wte = token_embedding_table.weight;
            nn::linear_backward(dlogits, hf, wte.value, wte.grad, nullptr, dx);
        }
        const nn::Matrix* d = &ln_f.backward(dx);
        for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) {
            restore_layernorm_outputs(*b);  // memory.hpp
            d = &b->backward(*d);
            free_layernorm_outputs(*b);
            if (b != blocks.rbegin()) std::prev(b)->dx = nn::Matrix();  // the later block's dx, now read
        }
        token_embedding_table.backward(*d);  // x = tok_emb + pos_emb: both get d
        position_embedding_table.backward(*d);
        blocks.front().dx = nn::Matrix();
    }

    // Every trained parameter, in one order: the optimizer's, the checkpoint's.
    std::vector<nn::Parameter*> parameters() {
        std::vector<nn::Parameter*> p{&token_embedding_table.weight, &position_embedding_table.weight};
        auto add_ln = [&](LayerNorm& ln) {
            if (ln.on) p.insert(p.end(), {&ln.weight, &ln.bias});
        };
        for (Block& b : blocks) {
            p.insert(p.end(), {&b.sa.c_attn.weight, &b.sa.c_attn.bias});
            if (b.sa.projection) p.insert(p.end(), {&b.sa.proj.weight, &b.sa.proj.bias});
            p.insert(p.end(), {&b.ffwd.fc.weight, &b.ffwd.fc.bias});
            if (b.ffwd.projection) p.insert(p.end(), {&b.ffwd.proj.weight, &b.ffwd.proj.bias});
            add_ln(b.ln1);
            add_ln(b.ln2);
        }
        add_ln(ln_f);
        if (lm_head) p.push_back(&lm_head->weight);
        return p;
    }

    std::vector<Dropout*> dropouts() {
        std::vector<Dropout*> d;
        for (Block& b : blocks) d.insert(d.end(), {&b.sa.attn_dropout, &b.sa.resid_dropout, &b.ffwd.dropout});
        return d;
    }
};

#include "06-gpt/memory.hpp"  // what the blocks free
