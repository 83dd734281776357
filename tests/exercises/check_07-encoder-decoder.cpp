// The workbook's checks of 07-encoder-decoder, one TEST_CASE per exercise, in
// the order of tests/exercises/07-encoder-decoder.md: shapes, golden tensors
// of a tiny seeded example (recorded from the reference), then finite
// differences of sum(out .* G) for a random upstream gradient G. Each
// exercise's checks call that exercise's function alone: cross-attention's
// backward gets its forward's state from a plain attention written here, the
// loss's backward its probabilities from nn::softmax_rows, and greedy search
// runs on a tiny scripted decoder rather than on the Transformer.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "07-encoder-decoder/attention.hpp"
#include "07-encoder-decoder/dates.hpp"
#include "07-encoder-decoder/decode.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/train.hpp"
#include "tests/exercises/check.hpp"
#include "common/optim.hpp"
#include "common/runtime.hpp"
#include "tests/lm_helpers.hpp"

namespace {

using test::random_matrix;

// Tiny matrices: one thread, so that no parallel loop waits on the others.
const bool kOneThread = (nn::set_threads(1), true);

double project(const nn::Matrix& y, const nn::Matrix& G) {
    return (y.cast<double>().array() * G.cast<double>().array()).sum();
}

nn::Matrix as_row(const std::vector<int>& v) {
    nn::Matrix m(1, static_cast<Eigen::Index>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) m(0, static_cast<Eigen::Index>(i)) = static_cast<float>(v[i]);
    return m;
}

Config tiny_config() {
    return Config{.src_vocab_size = 9, .tgt_vocab_size = 8, .max_len = 6, .d_model = 8, .n_head = 2, .n_layer = 1,
                  .d_ff = 12, .dropout = 0.0f};
}

// Cross-attention's parameters at values of order one.
void randomize(CrossAttention& ca, nn::Rng& rng) {
    for (nn::Parameter* p : {&ca.query.weight, &ca.query.bias, &ca.key_value.weight, &ca.key_value.bias,
                             &ca.proj.weight, &ca.proj.bias})
        p->value = random_matrix(p->value.rows(), p->value.cols(), rng, 0.5f);
}

// The plain form of attention_forward for cross-attention, one head of one
// sequence at a time: q (B*Tq, C), kv (B*Tk, 2C) = [k | v], key lengths (B)
// -> the state attention_backward reads (the weights) and out (B*Tq, C).
void plain_cross_attention(const nn::Matrix& q, const nn::Matrix& kv, int B, int Tq, int Tk, int nh,
                           const int* key_len, AttentionState& s, nn::Matrix& out) {
    const int C = static_cast<int>(q.cols()), hs = C / nh;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    s.B = B, s.Tq = Tq, s.Tk = Tk;
    s.wei.setZero(B * nh * Tq, Tk);
    out.resize(B * Tq, C);
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < nh; ++h) {
            const int n = key_len[b], row0 = (b * nh + h) * Tq;
            const nn::Matrix Q = q.block(b * Tq, h * hs, Tq, hs), K = kv.block(b * Tk, h * hs, n, hs),
                             V = kv.block(b * Tk, C + h * hs, n, hs);
            nn::Matrix w = scale * Q * K.transpose();  // (Tq, n): the source's words only
            nn::softmax_rows(w);
            s.wei.block(row0, 0, Tq, n) = w;
            out.block(b * Tq, h * hs, Tq, hs) = w * V;
        }
}

// A tiny fixed decoder for greedy search: sentence b writes the words of its
// chain, next[b][w] being the word after w (kEos: the end), as logits that put
// 2 on that word and a fixed noise below 0.5 on every other. It records what
// each sentence read at each step.
struct ChainDecoder {
    std::vector<std::vector<int>> next;  // (B, V)
    nn::Matrix noise, logits;            // (B, V)
    std::vector<std::vector<int>> read;  // (steps, B)
    const nn::Matrix& step(const std::vector<int>& tokens, int t) {
        REQUIRE(static_cast<int>(read.size()) == t);  // steps 0, 1, 2, ... in order
        read.push_back(tokens);
        logits = noise;
        for (std::size_t b = 0; b < next.size(); ++b)
            logits(static_cast<Eigen::Index>(b), next[b][static_cast<std::size_t>(tokens[b])]) = 2.0f;
        return logits;
    }
};

}  // namespace

TEST_CASE("The keys each query sees: padding and causal masks, B = 3, Tq = 4, Tk = 5", "[padding_mask]") {
    const int B = 3, Tq = 4, Tk = 5;
    const int key_len[B] = {5, 2, 3};
    std::vector<int> seen;
    visible_keys(B, Tq, Tk, false, key_len, seen);
    check::shape("seen (padding mask), one per query", as_row(seen), 1, B * Tq);
    check::golden("seen with the padding mask (key lengths 5, 2, 3)", as_row(seen));
    visible_keys(B, Tq, Tk, true, nullptr, seen);
    check::shape("seen (causal mask), one per query", as_row(seen), 1, B * Tq);
    check::golden("seen with the causal mask", as_row(seen));
    visible_keys(B, Tq, Tk, true, key_len, seen);
    check::golden("seen with both masks", as_row(seen));
    // Through attention_forward: the padded source words get no weight, and
    // what they hold changes nothing.
    nn::Rng rng(21);
    const int nh = 2, C = 4;
    const nn::Matrix q = random_matrix(B * Tq, C, rng);
    nn::Matrix kv = random_matrix(B * Tk, 2 * C, rng);
    AttentionState s;
    nn::Matrix out, out_again;
    attention_forward({C, q, 0, kv, 0, C}, B, Tq, Tk, nh, false, key_len, nullptr, s, out);
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < nh; ++h)
            for (int i = 0; i < Tq; ++i) {
                const auto w = s.wei.row((b * nh + h) * Tq + i);
                INFO("sequence " << b << " (" << key_len[b] << " words), head " << h << ", query " << i
                                 << ": the weights " << w);
                REQUIRE(w.tail(Tk - key_len[b]).cwiseAbs().sum() == 0.0f);
                REQUIRE(std::abs(w.sum() - 1.0f) < 1e-5f);
            }
    kv.middleRows(Tk + 2, Tk - 2).array() *= 10.0f;  // sequence 1's pads
    attention_forward({C, q, 0, kv, 0, C}, B, Tq, Tk, nh, false, key_len, nullptr, s, out_again);
    INFO("changing sequence 1's padded keys and values changed its output");
    REQUIRE(out_again.middleRows(Tq, Tq) == out.middleRows(Tq, Tq));
}

TEST_CASE("Cross-attention forward, B = 2, Tq = 4 target words over Tk = 3 source words", "[cross_attention_forward]") {
    nn::Rng rng(22);
    const Config c = tiny_config();
    const int B = 2, Tq = 4, Tk = 3;
    const int key_len[B] = {3, 1};
    CrossAttention ca(c, rng);
    randomize(ca, rng);
    const nn::Matrix x = random_matrix(B * Tq, c.d_model, rng), memory = random_matrix(B * Tk, c.d_model, rng);
    const nn::Matrix y = ca.forward(x, memory, B, Tq, Tk, key_len);
    check::shape("y of cross-attention", y, B * Tq, c.d_model);
    check::shape("att.wei, each target word's weights over the source", ca.att.wei, B * c.n_head * Tq, Tk);
    check::golden("cross-attention weights (sequence 1 has 1 source word)", ca.att.wei);
    check::golden("y of cross-attention", y);
}

TEST_CASE("Cross-attention backward, to the decoder and to the encoder, against finite differences",
          "[cross_attention_backward]") {
    nn::Rng rng(23);
    const Config c = tiny_config();
    const int B = 2, Tq = 4, Tk = 3;
    const int key_len[B] = {3, 2};
    CrossAttention ca(c, rng);
    randomize(ca, rng);
    nn::Matrix x = random_matrix(B * Tq, c.d_model, rng), memory = random_matrix(B * Tk, c.d_model, rng);
    const nn::Matrix G = random_matrix(B * Tq, c.d_model, rng);
    // The forward, computed here (not by CrossAttention::forward).
    auto forward = [&]() -> const nn::Matrix& {
        ca.key_len = key_len;
        ca.query.forward(x);
        ca.key_value.forward(memory);
        plain_cross_attention(ca.query.y, ca.key_value.y, B, Tq, Tk, c.n_head, key_len, ca.att, ca.out);
        return ca.proj.forward(ca.out);
    };
    forward();
    // dmemory already holds what another decoder layer passed back: backward adds to it.
    const nn::Matrix before = random_matrix(B * Tk, c.d_model, rng);
    nn::Matrix dmemory = before;
    const nn::Matrix dx = ca.backward(G, dmemory);
    check::shape("dx of cross-attention (to the decoder)", dx, B * Tq, c.d_model);
    check::shape("dmemory of cross-attention (to the encoder)", dmemory, B * Tk, c.d_model);
    check::golden("dx of cross-attention (to the decoder)", dx);
    const nn::Matrix added = dmemory - before;
    check::golden("dmemory of cross-attention (to the encoder), what backward adds to it", added);
    check::golden("query.weight's gradient", ca.query.weight.grad);
    check::golden("key_value.weight's gradient", ca.key_value.weight.grad);
    auto loss = [&] { return project(forward(), G); };
    // Some entries are of order 1e-4: float rounding alone gives them relative
    // errors near 1e-2, a wrong term one of order 1.
    check::gradient("dL/dx of cross-attention (the decoder's words)", loss, x, dx, 3e-2);
    check::gradient("dL/dmemory of cross-attention (the encoder's output)", loss, memory,
                    added, 3e-2);
    check::gradient("dL/d key_value.weight of cross-attention", loss, ca.key_value.weight.value,
                    ca.key_value.weight.grad, 3e-2);
}

TEST_CASE("Label-smoothed cross-entropy forward, 6 rows of V = 5, two of them <pad>", "[label_smoothing_forward]") {
    nn::Rng rng(24);
    const nn::Matrix logits = random_matrix(6, 5, rng, 2.0f);
    const std::vector<int> targets{3, 4, kPad, 3, 2, kPad};
    LabelSmoothedCrossEntropy ls;
    ls.smoothing = 0.1f;
    const double loss = ls.forward(logits, targets);
    check::shape("probs = softmax(logits), kept for backward", ls.probs, 6, 5);
    INFO("count, the targets that are not <pad>: " << ls.count << ", expected 4");
    REQUIRE(ls.count == 4);
    check::golden("the label-smoothed loss", nn::Matrix::Constant(1, 1, static_cast<float>(loss)));
    check::golden("probs = softmax(logits)", ls.probs);
}

TEST_CASE("Label-smoothed cross-entropy backward, against finite differences", "[label_smoothing_backward]") {
    nn::Rng rng(25);
    nn::Matrix logits = random_matrix(6, 5, rng, 2.0f);
    const std::vector<int> targets{3, 4, kPad, 3, 2, kPad};
    const double eps = 0.1;
    LabelSmoothedCrossEntropy ls;  // the forward's state, set here (not by its forward)
    ls.smoothing = static_cast<float>(eps);
    ls.probs = logits;
    nn::softmax_rows(ls.probs);
    ls.targets = targets;
    ls.count = 4;
    const nn::Matrix d = ls.backward();
    check::shape("dlogits of the label-smoothed loss", d, 6, 5);
    check::golden("dlogits = (p - q) / count, 0 on <pad> rows", d);
    auto loss = [&] {  // the loss, in double
        double sum = 0;
        for (int n = 0; n < 6; ++n) {
            if (targets[static_cast<std::size_t>(n)] == kPad) continue;
            const Eigen::RowVectorXd z = logits.row(n).cast<double>();
            const double lse = std::log(z.array().exp().sum());
            for (int v = 0; v < 5; ++v)
                sum -= ((v == targets[static_cast<std::size_t>(n)] ? 1 - eps : 0.0) + eps / 5) * (z(v) - lse);
        }
        return sum / 4;
    };
    check::gradient("dL/dlogits of the label-smoothed loss", loss, logits, d, 1e-2);
}

TEST_CASE("Greedy search on a tiny fixed decoder: <eos> ends a sentence, and so does its limit", "[greedy_search]") {
    const int V = 10;
    auto chain = [&](std::initializer_list<std::pair<int, int>> links) {  // word -> next word; the rest: a fixed 9
        std::vector<int> next(V, 9);
        for (auto [from, to] : links) next[static_cast<std::size_t>(from)] = to;
        return next;
    };
    ChainDecoder decoder;
    decoder.next = {chain({{kBos, 5}, {5, 6}, {6, kEos}}),        // writes 5 6, then <eos>
                    chain({{kBos, 3}, {3, 4}, {4, 3}}),           // 3 4 3 4 ... until its limit
                    chain({{kBos, kEos}}),                        // <eos> at once: nothing
                    chain({{kBos, 7}, {7, 7}})};                  // 7 7 7 ... until its limit
    nn::Rng rng(26);
    decoder.noise = random_matrix(4, V, rng, 0.1f).cwiseMax(-0.4f).cwiseMin(0.4f);
    const std::vector<int> limit{6, 5, 4, 2};
    const std::vector<std::vector<int>> out = greedy_search(decoder, limit);
    INFO("greedy_search returned " << out.size() << " translations for 4 sentences");
    REQUIRE(out.size() == 4);
    // What greedy search writes on this decoder: each sentence follows its chain
    // from <bos> until <eos> or its limit.
    for (std::size_t b = 0; b < 4; ++b) {
        std::vector<int> expected;
        for (int w = decoder.next[b][kBos]; w != kEos && static_cast<int>(expected.size()) < limit[b];
             w = decoder.next[b][static_cast<std::size_t>(w)])
            expected.push_back(w);
        INFO("sentence " << b << " (limit " << limit[b] << "): got " << as_row(out[b]) << ", expected "
                         << as_row(expected));
        REQUIRE(out[b] == expected);
    }
    // It read <bos> first, then its own last word while unfinished.
    INFO("steps taken: " << decoder.read.size());
    REQUIRE(!decoder.read.empty());
    REQUIRE(static_cast<int>(decoder.read.size()) <= *std::max_element(limit.begin(), limit.end()));
    for (std::size_t b = 0; b < 4; ++b) {
        INFO("sentence " << b << " at step 0 read " << decoder.read[0][b] << ", expected <bos> (" << kBos << ")");
        REQUIRE(decoder.read[0][b] == kBos);
        for (std::size_t t = 1; t <= out[b].size() && t < decoder.read.size(); ++t) {
            INFO("sentence " << b << " at step " << t << " read " << decoder.read[t][b] << ", expected its word "
                             << out[b][t - 1]);
            REQUIRE(decoder.read[t][b] == out[b][t - 1]);
        }
    }
}

TEST_CASE("07-encoder-decoder end to end: the Transformer learns to translate dates in 300 steps", "[end-to-end]") {
    TrainConfig train;
    Config config;
    const PairData data = make_pair_data(dates::date_pairs(), config.max_len, "the dates");
    config.src_vocab_size = data.src_vocab.size();
    config.tgt_vocab_size = data.tgt_vocab.size();
    nn::Rng rng(train.seed);
    Transformer model(config, rng);
    model.criterion.smoothing = train.label_smoothing;
    nn::AdamW optimizer(model.parameters(), {.lr = get_lr(train, config.d_model, 0), .beta1 = train.beta1,
                                             .beta2 = train.beta2, .eps = 1e-9f, .weight_decay = 0.0f});
    const int steps = 300;
    for (int step = 0; step < steps; ++step) {
        optimizer.options.lr = get_lr(train, config.d_model, step);
        const Batch batch = get_batch(data, Split::train, train.batch_size, rng);
        model.loss(batch);
        optimizer.zero_grad();
        model.backward();
        nn::clip_grad_norm(model.parameters(), train.grad_clip);
        optimizer.step();
    }
    std::vector<const Example*> sources;
    for (std::size_t i = 0; i < 300 && i < data.test.size(); ++i) sources.push_back(&data.test[i]);
    const auto out = greedy_decode(model, sources);
    int right = 0;
    for (std::size_t i = 0; i < sources.size(); ++i) right += out[i] == sources[i]->tgt;
    WARN(right << " of " << sources.size() << " test dates translated exactly after " << steps << " steps");
    REQUIRE(right >= 285);  // the reference: 300
}
