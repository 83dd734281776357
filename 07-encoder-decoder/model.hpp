// 07-encoder-decoder: the model, its forward and backward.
//
// 06's decoder-only GPT becomes the Transformer of "Attention Is All You
// Need", which reads one sentence and writes another:
//   the encoder, N layers over the source, each
//     x = LayerNorm(x + self_attn(x))        every source word reads every other (only padding masked)
//     x = LayerNorm(x + ffwd(x))
//   the decoder, N layers over the target so far, each
//     y = LayerNorm(y + masked_self_attn(y)) every target word reads the earlier ones (06's mask)
//     y = LayerNorm(y + cross_attn(y, x))    queries from the decoder, keys and values from the encoder
//     y = LayerNorm(y + ffwd(y))
//   logits = y W_emb^T                        the target embedding table is also the output layer
// The residual "Add & Norm" comes after each sublayer here (the paper's
// post-norm); --norm pre puts the LayerNorm before it, as 06 does, with a
// final LayerNorm on each side. Positions are added as the paper's fixed
// sinusoids, or as 06's learned table (--position learned). Sentences of a
// batch have different lengths: the padding is masked in every attention
// that reads the source, and left out of the loss, which is cross-entropy
// with label smoothing.
//
// Beside this file: attention.hpp (all heads at once, with the masks),
// decode.hpp (greedy decoding and beam search) and decode_cached.hpp (its
// key/value cache), train.hpp (settings and the paper's learning-rate
// schedule), checkpoint.hpp (the file format), data.hpp and dates.hpp (the
// sentence pairs), and common/runtime.hpp.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "06-gpt/layers.hpp"  // 06's LayerNorm, GELU, feed-forward layer and dropout, unchanged
#include "07-encoder-decoder/attention.hpp"
#include "07-encoder-decoder/data.hpp"
#include "common/error.hpp"
#include "common/layers.hpp"

enum class Norm { post, pre };  // LayerNorm(x + f(x)), the paper's; or x + f(LayerNorm(x)), 06's
inline constexpr std::array<const char*, 2> kNormNames{"post", "pre"};
enum class Position { sinusoidal, learned };  // the paper's fixed waves, or 06's learned table
inline constexpr std::array<const char*, 2> kPositionNames{"sinusoidal", "learned"};

struct Config {
    int src_vocab_size = 64;  // Vs: source words
    int tgt_vocab_size = 64;  // Vt: target words
    int max_len = 16;         // the most tokens a sentence may have on either side (with <bos> or <eos>)
    int d_model = 64;         // C
    int n_head = 4;           // nh; head size hs = C / nh
    int n_layer = 2;          // N: layers of the encoder, and as many of the decoder
    int d_ff = 256;           // the feed-forward layer's hidden width
    float dropout = 0.0f;
    Norm norm = Norm::post;
    Position position = Position::sinusoidal;
    Activation activation = Activation::relu;  // the feed-forward layer's: the paper's ReLU, or 06's GELU

    // InputError, naming the flag to change, unless the settings can build a model.
    // The only home of these checks: the command line and checkpoints use it too.
    void validate() const {
        for (int v : {src_vocab_size, tgt_vocab_size})
            if (v < 4 || v > (1 << 22)) nn::fail("a vocabulary of {} words is impossible", v);
        if (d_model % n_head != 0)
            nn::fail("--d-model ({}) must be a multiple of --n-head ({}): each head gets d_model / n_head channels",
                     d_model, n_head);
        if (d_model % 2 != 0) nn::fail("--d-model ({}) must be even: the sinusoids come in sin/cos pairs", d_model);
        if (!(dropout >= 0 && dropout < 1)) nn::fail("--dropout must be in [0, 1), not {}", dropout);
        // Limits far beyond a CPU's reach, so that no product of them overflows an int.
        if (max_len < 2 || max_len > 4096 || d_model < 2 || d_model > 65536 || n_head < 1 || n_layer < 1 ||
            n_layer > 1024 || d_ff < 1 || d_ff > (1 << 20))
            nn::fail("impossible model size (max-len {}, d-model {}, heads {}, layers {}, d-ff {})", max_len,
                     d_model, n_head, n_layer, d_ff);
    }
};

inline const Config& validated(const Config& c) {
    c.validate();
    return c;
}

// The position of each word, added to its embedding (attention itself does
// not know the order of its inputs). sinusoidal, the paper's:
//   PE(pos, 2i) = sin(pos / 10000^(2i / C)),  PE(pos, 2i + 1) = cos(pos / 10000^(2i / C))
// each pair of channels a wave of its own wavelength, from 2 pi up to
// 10000 * 2 pi; fixed, not trained. learned: 06's table, trained like the rest.
// Encoder and decoder add rows of the same table.
struct PositionalEncoding {
    Position kind;
    nn::Parameter table;  // (max_len, C)

    PositionalEncoding(const Config& c, nn::Rng& rng) : kind(c.position) {
        table.resize(c.max_len, c.d_model);
        if (kind == Position::learned) {
            rng.fill_normal(nn::as_span(table.value), 0.0f, 1.0f);  // nn.Embedding's N(0, 1)
            return;
        }
        for (int pos = 0; pos < c.max_len; ++pos)
            for (int i = 0; 2 * i < c.d_model; ++i) {
                const double angle = pos / std::pow(10000.0, 2.0 * i / c.d_model);
                table.value(pos, 2 * i) = static_cast<float>(std::sin(angle));
                table.value(pos, 2 * i + 1) = static_cast<float>(std::cos(angle));
            }
    }
    // x (B*T, C): row b T + t gets PE(t) added
    void add_to(nn::Matrix& x, int T) const {
        for (Eigen::Index n = 0; n < x.rows(); ++n) x.row(n) += table.value.row(n % T);
    }
    // d (B*T, C): the table's row t collects the rows of position t (learned only)
    void backward(const nn::Matrix& d, int T) {
        if (kind != Position::learned) return;
        for (Eigen::Index n = 0; n < d.rows(); ++n) table.grad.row(n % T) += d.row(n);
    }
};

// nh heads of self-attention side by side, as 06's, with one (C, 3C)
// projection for the keys, queries and values of all heads. For each
// sequence b and head h (hs = C / nh channels of q, k and v):
//   wei = softmax(mask(q k^T / sqrt(hs)))   (T, T)
//   out = dropout(wei) v                    (T, hs), into columns [h hs, (h+1) hs) of out
// then y = dropout(proj(out)). The mask: in the decoder (`causal`) the
// future, as 06; in the encoder, only the padding after key_len[b] words.
// Not 06's MultiHeadAttention: that one is causal only, with no padding, and
// has 06's switches (--no-scale, --score, --no-proj); this one masks padding,
// may look both ways, and can zero heads (--ablate-head).
struct MultiHeadAttention {
    int n_head, head_size;
    bool causal;
    nn::Linear c_attn;  // C -> 3C: [q of every head | k of every head | v of every head]
    nn::Linear proj;    // C -> C
    Dropout attn_dropout, resid_dropout;
    AttentionState att;  // the weights of every head and what backward needs: attention.hpp
    const int* key_len = nullptr;  // (B): the forward's source lengths, or nullptr
    std::vector<int> ablated;  // heads whose output is zeroed (--ablate-head, an experiment)
    nn::Matrix out;      // (B*T, C): the heads' outputs, concatenated
    nn::Matrix dqkv;     // (B*T, 3C)
    nn::Matrix dout_kept;  // (B*T, C): d(out) with the ablated heads' columns zeroed

    MultiHeadAttention(const Config& c, bool causal_, nn::Rng& rng)
        : n_head(c.n_head), head_size(c.d_model / c.n_head), causal(causal_),
          c_attn(c.d_model, 3 * c.d_model, true, rng), proj(c.d_model, c.d_model, true, rng) {
        attn_dropout.p = resid_dropout.p = c.dropout;
    }

    const DropMask* attn_mask() const { return attn_dropout.active() ? &attn_dropout.mask : nullptr; }
    QKV qkv() const { return {n_head * head_size, c_attn.y, 0, c_attn.y, n_head * head_size, 2 * n_head * head_size}; }

    // x (B*T, C), key lengths (B) or nullptr -> y (B*T, C)
    const nn::Matrix& forward(const nn::Matrix& x, int B, int T, const int* key_len_) {
        key_len = key_len_;
        c_attn.forward(x);  // (B*T, 3C)
        if (attn_dropout.active()) attn_dropout.draw_mask(B * n_head * T, T);
        attention_forward(qkv(), B, T, T, n_head, causal, key_len, attn_mask(), att, out);  // (B*T, C)
        zero_heads(out, ablated, head_size);
        proj.forward(out);
        resid_dropout.forward(proj.y);  // in place
        return proj.y;
    }

    // dy (B*T, C) -> dx (B*T, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        const nn::Matrix& dout = without_heads(proj.backward(resid_dropout.backward(dy)), ablated, head_size, dout_kept);
        dqkv.resize(c_attn.y.rows(), c_attn.y.cols());
        attention_backward(dout, qkv(), n_head, attn_mask(), att, dqkv, dqkv);
        return c_attn.backward(dqkv);
    }
};

// Cross-attention: the same heads, but the queries come from the decoder's
// words (Tq of them) and the keys and values from the encoder's output, the
// memory (Tk source words). One line of the math differs from self-attention:
//   q = x W_q,  k = memory W_k,  v = memory W_v   (self-attention: all from x)
// so wei is (Tq, Tk): each target word's weights over the source words. Only
// the source's padding is masked; the whole source is known from the start.
struct CrossAttention {
    int n_head, head_size;
    nn::Linear query;      // C -> C: q of every head, from the decoder
    nn::Linear key_value;  // C -> 2C: [k of every head | v of every head], from the encoder
    nn::Linear proj;       // C -> C
    Dropout attn_dropout, resid_dropout;
    AttentionState att;
    const int* key_len = nullptr;
    std::vector<int> ablated;  // heads whose output is zeroed (--ablate-head)
    nn::Matrix out;        // (B*Tq, C)
    nn::Matrix dq, dkv;    // (B*Tq, C), (B*Tk, 2C)
    nn::Matrix dout_kept;  // (B*Tq, C)

    CrossAttention(const Config& c, nn::Rng& rng)
        : n_head(c.n_head), head_size(c.d_model / c.n_head), query(c.d_model, c.d_model, true, rng),
          key_value(c.d_model, 2 * c.d_model, true, rng), proj(c.d_model, c.d_model, true, rng) {
        attn_dropout.p = resid_dropout.p = c.dropout;
    }

    const DropMask* attn_mask() const { return attn_dropout.active() ? &attn_dropout.mask : nullptr; }
    QKV qkv() const { return {n_head * head_size, query.y, 0, key_value.y, 0, n_head * head_size}; }

    // x (B*Tq, C) from the decoder, memory (B*Tk, C) from the encoder, source lengths (B) -> y (B*Tq, C)
    // Exercise: cross_attention_forward
    const nn::Matrix& forward(const nn::Matrix& x, const nn::Matrix& memory, int B, int Tq, int Tk,
                              const int* key_len_) {
        key_len = key_len_;
        query.forward(x);           // (B*Tq, C)
        key_value.forward(memory);  // (B*Tk, 2C)
        if (attn_dropout.active()) attn_dropout.draw_mask(B * n_head * Tq, Tk);
        attention_forward(qkv(), B, Tq, Tk, n_head, false, key_len, attn_mask(), att, out);  // (B*Tq, C)
        zero_heads(out, ablated, head_size);
        proj.forward(out);
        resid_dropout.forward(proj.y);  // in place
        return proj.y;
    }

    // dy (B*Tq, C) -> dx (B*Tq, C); adds d(loss)/d(memory) (B*Tk, C) to dmemory
    // Exercise: cross_attention_backward
    const nn::Matrix& backward(const nn::Matrix& dy, nn::Matrix& dmemory) {
        const nn::Matrix& dout = without_heads(proj.backward(resid_dropout.backward(dy)), ablated, head_size, dout_kept);
        dq.resize(query.y.rows(), query.y.cols());
        dkv.resize(key_value.y.rows(), key_value.y.cols());
        attention_backward(dout, qkv(), n_head, attn_mask(), att, dq, dkv);
        dmemory += key_value.backward(dkv);
        return query.backward(dq);
    }
};

// The residual connection around a sublayer f, with its LayerNorm ("Add & Norm"):
//   post (the paper's):  y = LayerNorm(x + f(x))   f reads x
//   pre  (06's):         y = x + f(LayerNorm(x))   f reads LayerNorm(x)
// Post-norm normalises the residual stream itself after every sublayer; pre-
// norm leaves the stream a plain sum, which the gradient crosses untouched.
// Use: y = forward(x, f(sublayer_input(x))); backward: df = to_sublayer(dy),
// then dx = backward(dy, what f passes back).
struct AddNorm {
    bool pre;
    LayerNorm ln;
    nn::Matrix sum, dx;  // (N, C): x + f, and d(loss)/d(x)

    AddNorm(const Config& c) : pre(c.norm == Norm::pre), ln(c.d_model, true) {}

    // x (N, C) -> what f reads (N, C)
    const nn::Matrix& sublayer_input(const nn::Matrix& x) { return pre ? ln.forward(x) : x; }
    // x, f (N, C) -> y (N, C)
    const nn::Matrix& forward(const nn::Matrix& x, const nn::Matrix& f) {
        sum = x + f;
        return pre ? sum : ln.forward(sum);
    }
    // dy (N, C) -> d(loss)/d(f) (N, C)
    const nn::Matrix& to_sublayer(const nn::Matrix& dy) { return pre ? dy : ln.backward(dy); }
    // dy (N, C), d(loss)/d(f's input) (N, C) -> dx (N, C). The sum passes its
    // gradient to x unchanged and f adds what it passes back.
    const nn::Matrix& backward(const nn::Matrix& dy, const nn::Matrix& dinput) {
        if (pre) dx = dy + ln.backward(dinput);
        else dx = ln.dx + dinput;  // ln.dx: d(loss)/d(x + f), from to_sublayer
        return dx;
    }
};

// An encoder layer: self-attention over the source, then the feed-forward layer.
struct EncoderLayer {
    AddNorm an1;
    MultiHeadAttention sa;
    AddNorm an2;
    FeedForward ffwd;

    EncoderLayer(const Config& c, nn::Rng& rng)
        : an1(c), sa(c, false, rng), an2(c), ffwd(c.d_model, c.d_ff, c.activation, true, c.dropout, rng) {}

    // x (B*T, C), source lengths (B) -> y (B*T, C)
    const nn::Matrix& forward(const nn::Matrix& x, int B, int T, const int* src_len) {
        const nn::Matrix& x1 = an1.forward(x, sa.forward(an1.sublayer_input(x), B, T, src_len));
        return an2.forward(x1, ffwd.forward(an2.sublayer_input(x1)));
    }
    // dy (B*T, C) -> dx (B*T, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        const nn::Matrix& dx1 = an2.backward(dy, ffwd.backward(an2.to_sublayer(dy)));
        return an1.backward(dx1, sa.backward(an1.to_sublayer(dx1)));
    }
};

// A decoder layer: masked self-attention over the target so far, cross-
// attention to the encoder's output, then the feed-forward layer.
struct DecoderLayer {
    AddNorm an1;
    MultiHeadAttention sa;
    AddNorm an2;
    CrossAttention ca;
    AddNorm an3;
    FeedForward ffwd;

    DecoderLayer(const Config& c, nn::Rng& rng)
        : an1(c), sa(c, true, rng), an2(c), ca(c, rng), an3(c),
          ffwd(c.d_model, c.d_ff, c.activation, true, c.dropout, rng) {}

    // y (B*Tt, C), memory (B*Ts, C), source lengths (B) -> (B*Tt, C)
    const nn::Matrix& forward(const nn::Matrix& y, const nn::Matrix& memory, int B, int Tt, int Ts,
                              const int* src_len) {
        const nn::Matrix& y1 = an1.forward(y, sa.forward(an1.sublayer_input(y), B, Tt, nullptr));
        const nn::Matrix& y2 = an2.forward(y1, ca.forward(an2.sublayer_input(y1), memory, B, Tt, Ts, src_len));
        return an3.forward(y2, ffwd.forward(an3.sublayer_input(y2)));
    }
    // dout (B*Tt, C) -> dy (B*Tt, C); adds d(loss)/d(memory) to dmemory
    const nn::Matrix& backward(const nn::Matrix& dout, nn::Matrix& dmemory) {
        const nn::Matrix& dy2 = an3.backward(dout, ffwd.backward(an3.to_sublayer(dout)));
        const nn::Matrix& dy1 = an2.backward(dy2, ca.backward(an2.to_sublayer(dy2), dmemory));
        return an1.backward(dy1, sa.backward(an1.to_sublayer(dy1)));
    }
};

// Cross-entropy against a smoothed target (the paper's regulariser, eps 0.1):
// the right word gets 1 - eps of the probability and every word eps / V.
//   q = (1 - eps) one_hot(target) + eps / V
//   loss = mean over the non-<pad> targets of -sum_v q_v log p_v
// The model is never pushed to full certainty, so it stays calibrated; the
// loss has a floor above 0 (the entropy of q). eps = 0 is plain cross-entropy.
struct LabelSmoothedCrossEntropy {
    float smoothing = 0.1f;
    nn::Matrix probs;          // (N, V): softmax of the last logits
    std::vector<int> targets;  // (N)
    int count = 0;             // targets that are not <pad>
    nn::Matrix dlogits;        // (N, V)

    // logits (N, V), targets (N) -> loss (). -log p_v = lse - z_v, so
    // -sum_v q_v log p_v = lse - (1 - eps) z_target - eps/V sum_v z_v
    // Exercise: label_smoothing_forward
    double forward(const nn::Matrix& logits, std::span<const int> target_tokens) {
        targets.assign(target_tokens.begin(), target_tokens.end());
        probs = logits;
        nn::softmax_rows(probs);
        const double eps = smoothing, V = static_cast<double>(logits.cols());
        double loss = 0;
        count = 0;
        for (Eigen::Index n = 0; n < logits.rows(); ++n) {
            const int t = targets[static_cast<std::size_t>(n)];
            if (t == kPad) continue;
            const auto z = logits.row(n).cast<double>();
            loss += nn::log_sum_exp(z) - (1 - eps) * z(t) - eps / V * z.sum();
            ++count;
        }
        return count > 0 ? loss / count : 0.0;
    }
    // () -> dlogits (N, V) = (p - q) / count on rows with a target, 0 on <pad> rows
    // Exercise: label_smoothing_backward
    const nn::Matrix& backward() {
        const float eps = smoothing, V = static_cast<float>(probs.cols());
        dlogits = probs.array() - eps / V;
        for (Eigen::Index n = 0; n < probs.rows(); ++n) {
            const int t = targets[static_cast<std::size_t>(n)];
            if (t == kPad) dlogits.row(n).setZero();
            else dlogits(n, t) -= 1 - eps;
        }
        if (count > 0) dlogits /= static_cast<float>(count);
        return dlogits;
    }
};

// Which attention a head is in, for the experiments that zero one head.
enum class Heads { encoder, decoder_self, cross };
struct HeadId {
    Heads where;
    int layer, head;  // from 0
    // "2.3" (encoder layer 2, head 3), "self:2.3" (the decoder's self-attention), "cross:2.3": from 1
    std::string name() const {
        return fmt::format("{}{}.{}", where == Heads::encoder ? "" : where == Heads::decoder_self ? "self:" : "cross:",
                           layer + 1, head + 1);
    }
};

struct Transformer {
    Config config;
    nn::Rng dropout_rng;           // every dropout mask comes from here
    nn::Embedding src_embedding;   // (Vs, C)
    nn::Embedding tgt_embedding;   // (Vt, C); also the output layer: logits = y W_emb^T
    PositionalEncoding positions;  // (max_len, C)
    std::vector<EncoderLayer> encoder;
    std::vector<DecoderLayer> decoder;
    LayerNorm enc_norm, dec_norm;  // the final LayerNorms of pre-norm; the identity with post-norm
    LabelSmoothedCrossEntropy criterion;
    int B = 0, Ts = 0, Tt = 0;
    std::vector<int> src_len;    // (B)
    nn::Matrix x, y;             // (B*Ts, C), (B*Tt, C): embeddings * sqrt(C) + positions
    nn::Matrix memory, logits;   // (B*Ts, C): the encoder's output; (B*Tt, Vt)
    nn::Matrix dmemory, dy;      // (B*Ts, C), (B*Tt, C)

    Transformer(const Config& c, nn::Rng& rng)
        : config(validated(c)), dropout_rng(rng.below(UINT64_MAX)), src_embedding(c.src_vocab_size, c.d_model, rng),
          tgt_embedding(c.tgt_vocab_size, c.d_model, rng), positions(c, rng), enc_norm(c.d_model, c.norm == Norm::pre),
          dec_norm(c.d_model, c.norm == Norm::pre) {
        encoder.reserve(static_cast<std::size_t>(c.n_layer));  // no reallocation: Dropout points into the model
        decoder.reserve(static_cast<std::size_t>(c.n_layer));
        for (int l = 0; l < c.n_layer; ++l) encoder.emplace_back(c, rng);
        for (int l = 0; l < c.n_layer; ++l) decoder.emplace_back(c, rng);
        // The embeddings start as N(0, 1/C) and are multiplied by sqrt(C) (the
        // paper's scaling), so the words enter at the sinusoids' scale, and the
        // tied output layer starts with logits of order 1. The Linears keep
        // PyTorch's U(-1/sqrt(in), 1/sqrt(in)).
        const float std = 1.0f / std::sqrt(static_cast<float>(c.d_model));
        rng.fill_normal(nn::as_span(src_embedding.weight.value), 0.0f, std);
        rng.fill_normal(nn::as_span(tgt_embedding.weight.value), 0.0f, std);
        for (Dropout* d : dropouts()) d->rng = &dropout_rng;
    }
    Transformer(const Transformer&) = delete;  // the dropouts point at dropout_rng

    // Zeroes the output of these heads in every forward pass from now on
    // (and what flows back into them), and of no other: an experiment, to see
    // what the model does without them (--ablate-head). {}: none.
    void ablate(std::span<const HeadId> ids) {
        for (EncoderLayer& l : encoder) l.sa.ablated.clear();
        for (DecoderLayer& l : decoder) l.sa.ablated.clear(), l.ca.ablated.clear();
        for (const HeadId& id : ids) {
            check_head(config, id);
            const auto l = static_cast<std::size_t>(id.layer);
            std::vector<int>& ablated = id.where == Heads::encoder        ? encoder[l].sa.ablated
                                        : id.where == Heads::decoder_self ? decoder[l].sa.ablated
                                                                          : decoder[l].ca.ablated;
            if (std::find(ablated.begin(), ablated.end(), id.head) == ablated.end()) ablated.push_back(id.head);
        }
    }
    // InputError unless a model of config `c` has that head.
    static void check_head(const Config& c, const HeadId& id) {
        if (id.layer < 0 || id.layer >= c.n_layer || id.head < 0 || id.head >= c.n_head)
            nn::fail("there is no head {}: this model has {} layers of {} heads on each side", id.name(), c.n_layer,
                     c.n_head);
    }

    // Switches dropout on (training) or off (evaluation, decoding).
    void train(bool on) {
        for (Dropout* d : dropouts()) d->training = on;
    }
    float embedding_scale() const { return std::sqrt(static_cast<float>(config.d_model)); }

    // src (B*Ts), lengths (B) -> memory (B*Ts, C): the encoder's output, which every decoder layer reads
    const nn::Matrix& encode(std::span<const int> src, std::span<const int> lengths, int B_, int Ts_) {
        if (Ts_ < 1 || Ts_ > config.max_len || static_cast<std::size_t>(B_) * Ts_ != src.size() ||
            lengths.size() != static_cast<std::size_t>(B_))
            nn::fail("encode needs B*Ts = {}*{} tokens (Ts at most {}) and B lengths, got {} and {}", B_, Ts_,
                     config.max_len, src.size(), lengths.size());
        B = B_, Ts = Ts_;
        src_len.assign(lengths.begin(), lengths.end());
        x = src_embedding.forward(src) * embedding_scale();
        positions.add_to(x, Ts);
        const nn::Matrix* h = &x;
        for (EncoderLayer& layer : encoder) h = &layer.forward(*h, B, Ts, src_len.data());
        memory = enc_norm.forward(*h);
        return memory;
    }

    // tgt_in (B*Tt), after encode() -> logits (B*Tt, Vt)
    const nn::Matrix& decode(std::span<const int> tgt_in, int Tt_) {
        if (Tt_ < 1 || Tt_ > config.max_len || static_cast<std::size_t>(B) * Tt_ != tgt_in.size())
            nn::fail("decode needs B*Tt = {}*{} tokens (Tt at most {}), got {}", B, Tt_, config.max_len, tgt_in.size());
        Tt = Tt_;
        y = tgt_embedding.forward(tgt_in) * embedding_scale();
        positions.add_to(y, Tt);
        const nn::Matrix* h = &y;
        for (DecoderLayer& layer : decoder) h = &layer.forward(*h, memory, B, Tt, Ts, src_len.data());
        logits.noalias() = dec_norm.forward(*h) * tgt_embedding.weight.value.transpose();
        return logits;
    }

    // batch -> loss (): teacher forcing, the decoder reads <bos> y_1 .. y_n and predicts y_1 .. y_n <eos>
    double loss(const Batch& batch) {
        encode(batch.src, batch.src_len, batch.B, batch.Ts);
        return criterion.forward(decode(batch.tgt_in, batch.Tt), batch.tgt_out);
    }

    // () -> (): d(loss)/d(every parameter), added to its .grad, after loss()
    void backward() {
        const nn::Matrix& dlogits = criterion.backward();  // (B*Tt, Vt)
        // logits = hf W_emb^T:  dW_emb += dlogits^T hf,  dhf = dlogits W_emb
        const nn::Matrix& hf = dec_norm.on ? dec_norm.y : decoder.back().an3.ln.y;  // what the output layer read
        nn::Parameter& wte = tgt_embedding.weight;
        wte.grad.noalias() += dlogits.transpose() * hf;
        dy.noalias() = dlogits * wte.value;
        dmemory.setZero(B * Ts, config.d_model);  // every decoder layer adds what its cross-attention passes back
        const nn::Matrix* d = &dec_norm.backward(dy);
        for (auto l = decoder.rbegin(); l != decoder.rend(); ++l) d = &l->backward(*d, dmemory);
        tgt_embedding.backward(*d * embedding_scale());  // y = emb * sqrt(C) + PE
        positions.backward(*d, Tt);
        d = &enc_norm.backward(dmemory);
        for (auto l = encoder.rbegin(); l != encoder.rend(); ++l) d = &l->backward(*d);
        src_embedding.backward(*d * embedding_scale());
        positions.backward(*d, Ts);
    }

    // Every trained parameter, in one order: the optimizer's, the checkpoint's.
    std::vector<nn::Parameter*> parameters() {
        std::vector<nn::Parameter*> p{&src_embedding.weight, &tgt_embedding.weight};
        if (positions.kind == Position::learned) p.push_back(&positions.table);
        auto add = [&](std::initializer_list<nn::Linear*> linears) {
            for (nn::Linear* l : linears) p.insert(p.end(), {&l->weight, &l->bias});
        };
        auto add_ln = [&](LayerNorm& ln) { p.insert(p.end(), {&ln.weight, &ln.bias}); };
        for (EncoderLayer& l : encoder) {
            add({&l.sa.c_attn, &l.sa.proj, &l.ffwd.fc, &l.ffwd.proj});
            for (AddNorm* an : {&l.an1, &l.an2}) add_ln(an->ln);
        }
        for (DecoderLayer& l : decoder) {
            add({&l.sa.c_attn, &l.sa.proj, &l.ca.query, &l.ca.key_value, &l.ca.proj, &l.ffwd.fc, &l.ffwd.proj});
            for (AddNorm* an : {&l.an1, &l.an2, &l.an3}) add_ln(an->ln);
        }
        if (config.norm == Norm::pre) {
            add_ln(enc_norm);
            add_ln(dec_norm);
        }
        return p;
    }

    std::vector<Dropout*> dropouts() {
        std::vector<Dropout*> d;
        for (EncoderLayer& l : encoder) d.insert(d.end(), {&l.sa.attn_dropout, &l.sa.resid_dropout, &l.ffwd.dropout});
        for (DecoderLayer& l : decoder)
            d.insert(d.end(), {&l.sa.attn_dropout, &l.sa.resid_dropout, &l.ca.attn_dropout, &l.ca.resid_dropout,
                               &l.ffwd.dropout});
        return d;
    }
};
