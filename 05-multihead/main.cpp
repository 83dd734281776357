// 05-multihead: several heads of attention side by side, and a feed-forward layer.
//
// Same data, training loop, sampling and experiment flags as 04-self-attention,
// less 04's two side experiments on a single head's positions (--direction,
// --plot-positions).
// The model changes: the single head of 32 channels becomes MultiHeadAttention,
// 4 heads of 8 channels each whose outputs are concatenated and projected, and
// a FeedForward layer (linear, ReLU) follows it. --attention-map now draws
// every head, side by side.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "05-multihead/model.hpp"
#include "05-multihead/size.hpp"
#include "common/cli.hpp"
#include "common/fileio.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

namespace {

// Draws the attention weights of the text's characters: one (T, T) heatmap per head, side by side.
void write_attention_map(BigramLanguageModel& model, const nn::Vocabulary& vocab,
                         const std::string& text, const std::string& path) {
    const std::vector<int> idx = vocab.encode(text, "--map-text");
    const int T = static_cast<int>(idx.size());
    model.forward(idx, 1, T);
    std::vector<std::string> labels;
    for (int t : idx) labels.push_back(vocab.show(t));
    const auto& heads = model.sa_heads.heads;
    nn::Matrix wei(T, T * static_cast<Eigen::Index>(heads.size()));
    std::vector<std::string> columns;
    for (std::size_t h = 0; h < heads.size(); ++h) {
        wei.middleCols(static_cast<Eigen::Index>(h) * T, T) = heads[h].wei;
        columns.insert(columns.end(), labels.begin(), labels.end());
    }
    nn::write_heatmap(path, fmt::format("attention weights of heads 1-{}: row = query, column = key", heads.size()),
                      wei, labels, columns);
    fmt::print("wrote the attention weights for {:?} to {}\n", text, path);
}

// The validation loss at each position t = 0..T-1 of the context, over the
// batches estimate_loss uses: where the loss comes from.
void print_loss_per_position(BigramLanguageModel& model, const nn::TextData& data, int eval_iters,
                             int B, int T) {
    std::vector<double> sum(T, 0.0);
    nn::Rng rng(0);  // estimate_loss's seed: the same batches
    for (int k = 0; k < eval_iters; ++k) {
        const nn::Batch batch = nn::get_batch(data, nn::Split::val, B, T, rng);
        const nn::Matrix& logits = model.forward(batch.x, B, T);  // (B*T, V)
        for (int n = 0; n < B * T; ++n) {  // -log softmax(logits)[n, y_n], as the loss computes it
            const auto row = logits.row(n);
            sum[n % T] += nn::log_sum_exp(row) - row(batch.y[n]);
        }
    }
    double mean = 0;
    for (double& loss : sum) {
        loss /= static_cast<double>(eval_iters) * B;  // the mean over the sequences
        mean += loss / T;
    }
    fmt::print("val loss at each position t = 0..{}: {:.4f} (mean {:.4f})\n", T - 1, fmt::join(sum, " "), mean);
}

// Prints a matrix, one row per line, indented.
void print_matrix(const nn::Matrix& m) {
    for (Eigen::Index i = 0; i < m.rows(); ++i) fmt::print("    {:7.4f}\n", fmt::join(m.row(i), " "));
}

// The lecture's "mathematical trick in self-attention": three ways for every
// position t of one sequence x (T, C) to average the positions the mask lets
// it see (causal: x[0..t], the past and itself). Prints each way's (T, T)
// weights and how far apart their results are.
void show_trick(std::uint64_t seed, Mask mask) {
    const int T = 8, C = 2;
    nn::Rng rng(seed);
    nn::Matrix x(T, C);
    rng.fill_normal(nn::as_span(x));
    // What each version is called under each mask: the seen positions, the 0/1 matrix, where -inf goes.
    const char* seen = mask == Mask::causal ? "x[0..t]" : mask == Mask::anticausal ? "x[t..T-1]" : "x[0..T-1]";
    const char* ones = mask == Mask::causal ? "tril(ones(T, T))" : mask == Mask::anticausal ? "triu(ones(T, T))" : "ones(T, T)";
    const char* minus_inf = mask == Mask::causal ? " with -inf above the diagonal"
                            : mask == Mask::anticausal ? " with -inf below the diagonal" : "";
    const char* what = mask == Mask::causal ? "the past" : mask == Mask::anticausal ? "the future" : "everything";
    fmt::print("The trick behind self-attention: three ways to average {}, for one sequence\n"
               "x of (T, C) = ({}, {}) drawn from N(0, 1) with seed {}:\n", what, T, C, seed);
    print_matrix(x);

    // 1. A loop: xbow[t] = the mean of the x[i] the mask lets t see.  x (T, C) -> xbow (T, C)
    auto average_seen = [mask](const nn::Matrix& in) {
        nn::Matrix xbow = nn::Matrix::Zero(in.rows(), in.cols());
        const int n = static_cast<int>(in.rows());
        for (int t = 0; t < n; ++t) {
            int count = 0;
            for (int i = 0; i < n; ++i) {
                if (masked(mask, t, i)) continue;
                xbow.row(t) += in.row(i);
                ++count;
            }
            xbow.row(t) /= static_cast<float>(count);
        }
        return xbow;
    };
    const nn::Matrix xbow = average_seen(x);
    // The loop is linear in x, xbow = W x, so run on the identity it gives its weights W.
    const nn::Matrix wei1 = average_seen(nn::Matrix::Identity(T, T));
    fmt::print("\n1. a loop, xbow[t] = mean({}); its weights (the loop run on the (T, T) identity):\n", seen);
    print_matrix(wei1);

    // 2. wei = ones where the mask lets t see, each row divided by its sum; xbow2 = wei x.  (T, T) x (T, C)
    const nn::Matrix wei2 = averaging_matrix(T, mask);  // (T, T)
    const nn::Matrix xbow2 = wei2 * x;
    fmt::print("\n2. wei = {} / its row sums; xbow2 = wei @ x:\n", ones);
    print_matrix(wei2);

    // 3. wei = softmax(zeros with -inf where masked); xbow3 = wei x.  (T, T) x (T, C)
    nn::Matrix wei3 = nn::Matrix::Zero(T, T);
    for (int i = 0; i < T; ++i)
        for (int j = 0; j < T; ++j)
            if (masked(mask, i, j)) wei3(i, j) = -std::numeric_limits<float>::infinity();
    nn::softmax_rows(wei3);
    const nn::Matrix xbow3 = wei3 * x;
    fmt::print("\n3. wei = softmax(zeros(T, T){}); xbow3 = wei @ x:\n", minus_inf);
    print_matrix(wei3);

    fmt::print("\nxbow, the average of {} at every position:\n", what);
    print_matrix(xbow);
    fmt::print("\nlargest absolute difference of the results: |xbow - xbow2| {:.2g}, |xbow - xbow3| {:.2g}\n",
               (xbow - xbow2).cwiseAbs().maxCoeff(), (xbow - xbow3).cwiseAbs().maxCoeff());
    fmt::print("largest absolute difference of the weights: |wei1 - wei2| {:.2g}, |wei1 - wei3| {:.2g}\n",
               (wei1 - wei2).cwiseAbs().maxCoeff(), (wei1 - wei3).cwiseAbs().maxCoeff());
    fmt::print("Attention is version 3 with the zeros replaced by scores q.k computed from the data.\n");
}

// --mask's value as a Mask.
Mask mask_named(const std::string& name) {
    return std::map<std::string, Mask>{{"causal", Mask::causal}, {"anticausal", Mask::anticausal}, {"none", Mask::none}}.at(name);
}

// Every setting of a run, from the command line.
struct Options {
    std::string data_dir, metrics_path, prompt, attention_map, map_text = "To be or";
    std::string position = "learned", mask = "causal", score = "dot";
    int batch_size = 32, block_size = 8, max_iters = 5000, eval_interval = 500, eval_iters = 200;
    int n_embd = 32, n_head = 4, max_new_tokens = 500, top_k = 0;
    float learning_rate = 1e-3f, weight_decay = 0.01f, temperature = 1.0f;
    std::uint64_t seed = 1337;
    bool trick = false, per_position = false, no_scale = false;
};

void add_options(CLI::App& app, Options& o) {
    nn::add_data_option(app, o.data_dir);
    app.add_option("--batch-size", o.batch_size, "B: sequences per batch")
        ->check(nn::Count(1, 4096))->capture_default_str();
    app.add_option("--block-size", o.block_size, "T: characters per sequence (context length)")
        ->check(nn::Count(1, 8192))->capture_default_str();
    app.add_option("--n-embd", o.n_embd, "C: channels of each embedding")
        ->check(nn::Count(1, 16384))->capture_default_str();
    app.add_option("--n-head", o.n_head, "nh: attention heads, each of C / nh channels")
        ->check(nn::Count(1, 1024))->capture_default_str();
    app.add_option("--max-iters", o.max_iters, "Training steps")
        ->check(nn::Count(0, 1000000))->capture_default_str();
    app.add_option("--eval-interval", o.eval_interval, "Estimate the losses every this many steps")
        ->check(nn::Count(1, 1000000))->capture_default_str();
    app.add_option("--eval-iters", o.eval_iters, "Batches per split in each loss estimate")
        ->check(nn::Count(1, 10000))->capture_default_str();
    app.add_option("--lr", o.learning_rate, "AdamW learning rate")
        ->check(nn::Positive)->capture_default_str();
    app.add_option("--weight-decay", o.weight_decay, "AdamW decoupled weight decay")
        ->check(nn::NonNegative)->capture_default_str();
    app.add_option("--seed", o.seed, "Seed for the weights, the batches and the sampling")
        ->check(nn::Seed)->capture_default_str();
    nn::add_sampling_options(app, o.max_new_tokens, o.prompt, o.temperature, o.top_k);
    app.add_option("--metrics", o.metrics_path, "Write step, train_loss, val_loss, seconds as JSON lines here");
    app.add_option("--position", o.position, "Position embeddings: learned, or the fixed sinusoidal table")
        ->check(CLI::IsMember({"learned", "sinusoidal"}))->capture_default_str();
    app.add_option("--mask", o.mask, "Attention mask: causal (no peeking ahead), anticausal (no looking back), none")
        ->check(CLI::IsMember({"causal", "anticausal", "none"}))->capture_default_str();
    app.add_option("--score", o.score,
                   "Attention score: dot (q.k), squared-dot ((q.k)^2, sign lost), squared-elements "
                   "(sum q_c^2 k_c^2), negative-dot (-q.k), distance (-|q - k|^2), reciprocal (1/(q.k)), "
                   "inverse-distance (1/(1 + |q - k|^2)); each scaled to the spread of dot at initialisation")
        ->check(CLI::IsMember({"dot", "squared-dot", "squared-elements", "negative-dot", "distance", "reciprocal",
                               "inverse-distance"}))
        ->capture_default_str();
    app.add_flag("--no-scale", o.no_scale, "Attention scores without the 1/sqrt(hs): q.k, not q.k / sqrt(hs)");
    app.add_flag("--loss-per-position", o.per_position,
                 "After training, print the validation loss at each position of the context");
    app.add_flag("--show-trick", o.trick,
                 "Print the lecture's three ways to average what --mask lets each position see (a loop, "
                 "a matrix product, a masked softmax) for one random sequence of T = 8, C = 2, and exit");
    app.add_option("--attention-map", o.attention_map, "After training, draw the attention weights for --map-text into this PNG");
    app.add_option("--map-text", o.map_text, "Text for --attention-map, at most --block-size characters")
        ->capture_default_str();
}

// What the scale does at initialisation: the variance of the scores q.k over every (i, j) of each
// sequence, with and without 1 / sqrt(hs), and softmax's largest weight in a row (with the mask),
// averaged over the rows. qs, ks: each head's q, k (B*T, hs).
struct ScaleStats {
    double var_q = 0, var_k = 0, var_s = 0, max_scaled = 0, max_unscaled = 0, max_even = 0;
};
ScaleStats scale_stats(const std::vector<nn::Matrix>& qs, const std::vector<nn::Matrix>& ks, int B, int T, Mask mask) {
    auto variance = [](const auto& m) { return static_cast<double>((m.array() - m.mean()).square().mean()); };
    ScaleStats st;
    const int hs = static_cast<int>(qs[0].cols());
    nn::Matrix s(T, T), w(T, T);
    double sum_s = 0, sum_s2 = 0;
    const double n_heads = static_cast<double>(qs.size()), rows = n_heads * B * T;
    for (std::size_t h = 0; h < qs.size(); ++h) {
        st.var_q += variance(qs[h]) / n_heads;
        st.var_k += variance(ks[h]) / n_heads;
        for (int b = 0; b < B; ++b) {
            s.noalias() = qs[h].middleRows(b * T, T) * ks[h].middleRows(b * T, T).transpose();  // q.k, unscaled
            sum_s += s.sum();
            sum_s2 += s.squaredNorm();
            for (const bool scaled : {true, false}) {
                w = scaled ? (s / std::sqrt(static_cast<float>(hs))).eval() : s;
                for (int i = 0; i < T; ++i)
                    for (int j = 0; j < T; ++j)
                        if (masked(mask, i, j)) w(i, j) = -std::numeric_limits<float>::infinity();
                nn::softmax_rows(w);
                (scaled ? st.max_scaled : st.max_unscaled) += w.rowwise().maxCoeff().sum() / rows;
            }
        }
    }
    for (int i = 0; i < T; ++i) {  // evenly: 1 / (the number of positions row i sees)
        int seen = 0;
        for (int j = 0; j < T; ++j) seen += masked(mask, i, j) ? 0 : 1;
        st.max_even += 1.0 / seen / T;
    }
    const double n = n_heads * B * T * T, mean = sum_s / n;
    st.var_s = sum_s2 / n - mean * mean;
    return st;
}

// Prints scale_stats for the model's q and k on the batch print_shapes ran, then for q, k drawn from
// N(0, 1) as the lecture does (with their own generator: the run's is not touched).
void print_scale(const std::vector<nn::Matrix>& qs, const std::vector<nn::Matrix>& ks, int B, int T, Mask mask,
                 bool scaled, std::uint64_t seed) {
    const int hs = static_cast<int>(qs[0].cols());
    auto print = [&](const char* what, const ScaleStats& st) {
        fmt::print("  {}: var(q) {:.3f}, var(k) {:.3f}; var(q.k) {:.2f} (hs var(q) var(k) = {:.2f}), "
                   "var(q.k / sqrt(hs)) {:.3f}\n", what, st.var_q, st.var_k, st.var_s, hs * st.var_q * st.var_k,
                   st.var_s / hs);
        fmt::print("    softmax's largest weight in a row, averaged: {:.3f} with 1/sqrt(hs), {:.3f} without "
                   "(spread evenly: {:.3f})\n", st.max_scaled, st.max_unscaled, st.max_even);
    };
    fmt::print("the scale at initialisation, hs = {}, scores q.k of every (i, j) of a sequence:\n", hs);
    print("this batch's q, k", scale_stats(qs, ks, B, T, mask));
    nn::Rng draw(seed ^ 0x5ca1eULL);
    std::vector<nn::Matrix> unit_q(qs.size(), nn::Matrix(B * T, hs)), unit_k = unit_q;
    for (std::size_t h = 0; h < qs.size(); ++h) {
        draw.fill_normal(nn::as_span(unit_q[h]));
        draw.fill_normal(nn::as_span(unit_k[h]));
    }
    print("q, k from N(0, 1), the lecture's check", scale_stats(unit_q, unit_k, B, T, mask));
    fmt::print("  this run: {}\n\n", scaled ? "scores divided by sqrt(hs) (--no-scale: not)" : "no scale (--no-scale)");
}

// One batch walked through the model and back, to show the shapes.
void print_shapes(BigramLanguageModel& model, const nn::TextData& data, const Options& o, nn::Rng& rng) {
    const int B = o.batch_size, T = o.block_size, V = data.vocab.size();
    long n_params = 0;
    for (const nn::Parameter* p : model.parameters()) n_params += p->value.size();
    const nn::Batch example = nn::get_batch(data, nn::Split::train, B, T, rng);
    const double loss0 = model.loss(example);
    const int C = o.n_embd, hs = model.sa_heads.head_size;
    fmt::print("shapes, with B = {} (batch), T = {} (time), C = {} (n_embd), nh = {} (heads), hs = {} (head size), V = {}:\n",
               B, T, C, o.n_head, hs, V);
    fmt::print("  {:<44} ({}, {})  tokens; row b is text[i_b : i_b+{}]\n", "xb = get_batch('train')", B, T, T);
    fmt::print("  {:<44} ({}, {})  the next characters: text[i_b+1 : i_b+{}]\n", "yb", B, T, T + 1);
    fmt::print("  {:<44} {}  (B*T, C)\n", "tok_emb = token_embedding_table[xb]", nn::shape(model.token_embedding_table.y));
    fmt::print("  {:<44} {}  (B*T, C): row b*T+t is position t ({})\n", "pos_emb = position_embedding_table[t]",
               nn::shape(model.position_embedding_table.y), o.position);
    fmt::print("  {:<44} {}  (B*T, C)\n", "x = tok_emb + pos_emb", nn::shape(model.x));
    fmt::print("  in each of the {} heads:\n", o.n_head);
    const Head& head = model.sa_heads.heads[0];
    fmt::print("    {:<42} {}  (B*T, hs) each\n", "k, q, v = key(x), query(x), value(x)", nn::shape(head.key.y));
    fmt::print("    {:<42} {}  (B*T, T): B blocks of (T, T), the {} score\n", "s = " + score_formula(model.config.score, model.config.scale),
               nn::shape(head.s), o.score);
    fmt::print("    {:<42} {}  (B*T, T): {} mask, each row sums to 1\n", "wei = softmax(mask(s))", nn::shape(head.wei), o.mask);
    fmt::print("    {:<42} {}  (B*T, hs)\n", "out = wei v", nn::shape(head.out));
    fmt::print("  {:<44} {}  (B*T, nh*hs) = (B*T, C)\n", "cat = concat(out_1, ..., out_nh)", nn::shape(model.sa_heads.cat));
    fmt::print("  {:<44} {}  (B*T, C)\n", "a = proj(cat)", nn::shape(model.sa_heads.proj.y));
    fmt::print("  {:<44} {}  (B*T, C)\n", "h = ffwd(a) = relu(fc(a))", nn::shape(model.ffwd.out));
    fmt::print("  {:<44} {}  (B*T, V)\n", "logits = lm_head(h)", nn::shape(model.lm_head.y));
    fmt::print("  {:<44} ()  = {:.4f} (a uniform guess gives ln {} = {:.4f})\n",
               "loss = cross_entropy(logits, yb)", loss0, V, std::log(static_cast<double>(V)));
    model.backward();  // the same batch back: the gradient of each thing has its shape
    fmt::print("  backward, from the loss to the embeddings:\n");
    fmt::print("  {:<44} {}  (B*T, V): (softmax(logits) - one_hot(yb)) / (B*T)\n", "dlogits",
               nn::shape(model.criterion.dlogits));
    fmt::print("  {:<44} {}  (B*T, C)\n", "dh = dlogits Wlm", nn::shape(model.lm_head.dx));
    fmt::print("  {:<44} {}  (B*T, C): dh where fc(a) > 0, through fc\n", "da = ffwd.backward(dh)", nn::shape(model.ffwd.fc.dx));
    fmt::print("  {:<44} {}  (B*T, nh*hs): head h gets its hs columns\n", "dcat = da Wproj", nn::shape(model.sa_heads.proj.dx));
    fmt::print("  in each of the {} heads:\n", o.n_head);
    fmt::print("    {:<42} {}  (B*T, T)\n", "dwei = dout v^T", nn::shape(head.dwei));
    fmt::print("    {:<42} {}  (B*T, hs)\n", "dv = wei^T dout", nn::shape(head.dv));
    fmt::print("    {:<42} {}  (B*T, T): 0 where masked (in dwei's place)\n", "ds = wei * (dwei - rowsum(dwei * wei))",
               nn::shape(head.dwei));
    fmt::print("    {:<42} {}  (B*T, hs) each: the {} score's backward\n", "dq, dk", nn::shape(head.dq), o.score);
    fmt::print("    {:<42} {}  (hs, C) each\n", "d Wk, d Wq, d Wv", nn::shape(head.key.weight.grad));
    fmt::print("    {:<42} {}  (B*T, C)\n", "dx_h = dk Wk + dq Wq + dv Wv", nn::shape(head.dx));
    fmt::print("  {:<44} {}  (B*T, C)\n", "dx = dx_1 + ... + dx_nh", nn::shape(model.sa_heads.dx));
    fmt::print("  {:<44} {}  (V, C): row i sums the rows of dx where xb is i\n", "d token_embedding_table",
               nn::shape(model.token_embedding_table.weight.grad));
    if (model.config.position == Position::learned)
        fmt::print("  {:<44} {}  (T, C): row t sums the rows of dx at position t\n", "d position_embedding_table",
                   nn::shape(model.position_embedding_table.weight.grad));
    else
        fmt::print("  {:<44} none: the sinusoidal table is not trained\n", "d position_embedding_table");
    fmt::print("  {} trained parameters\n\n", n_params);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"05-multihead: multi-head masked self-attention and a feed-forward layer over "
                 "token and position embeddings, on Tiny Shakespeare, trained with hand-written "
                 "backprop and AdamW, then sampled.",
                 "05-multihead"};
    Options o;
    add_options(app, o);
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        // The matrices here are small (B*T = 256 rows of 32 channels): sharing each product
        // between threads costs more than it saves, so Eigen gets one thread.
        Eigen::setNbThreads(1);
        head_size(Config{.n_embd = o.n_embd, .n_head = o.n_head});  // the heads must split C evenly
        if (o.trick) {
            show_trick(o.seed, mask_named(o.mask));
            return 0;
        }
        const int B = o.batch_size, T = o.block_size;
        const nn::TextData data = nn::load_text(std::filesystem::path(o.data_dir) / "tinyshakespeare.txt");
        nn::check_context(data, T);
        const int V = data.vocab.size();
        const Config config{.vocab_size = V, .block_size = T, .n_embd = o.n_embd, .n_head = o.n_head,
                            .position = o.position == "learned" ? Position::learned : Position::sinusoidal,
                            .mask = mask_named(o.mask),
                            .score = std::map<std::string, Score>{{"dot", Score::dot}, {"squared-dot", Score::squared_dot},
                                                                  {"squared-elements", Score::squared_elements},
                                                                  {"negative-dot", Score::negative_dot},
                                                                  {"distance", Score::distance},
                                                                  {"reciprocal", Score::reciprocal},
                                                                  {"inverse-distance", Score::inverse_distance}}.at(o.score),
                            .scale = !o.no_scale};
        check_fits(config, B);  // the parameters, their gradients and moments, and the activations
        const std::vector<int> context = data.vocab.prompt(o.prompt);
        if (!o.attention_map.empty() && data.vocab.encode(o.map_text, "--map-text").size() > static_cast<std::size_t>(T))
            nn::fail("--map-text has more characters than the context of {} the model is built for (--block-size)", T);
        if (!o.attention_map.empty() && o.map_text.empty()) nn::fail("--map-text is empty");
        if (!o.attention_map.empty()) nn::check_writable(o.attention_map);
        fmt::print("Tiny Shakespeare from {}: {} characters\n", o.data_dir, data.train.size() + data.val.size());
        fmt::print("  vocabulary, V = {}: {}\n", V, data.vocab.printable());
        fmt::print("  train: the first {} tokens, val: the last {}\n\n", data.train.size(), data.val.size());

        nn::Rng rng(o.seed);
        BigramLanguageModel model(config, rng);
        nn::AdamW optimizer(model.parameters(), {.lr = o.learning_rate, .weight_decay = o.weight_decay});

        print_shapes(model, data, o, rng);  // One batch walked through the model.
        std::vector<nn::Matrix> qs, ks;  // every head's
        for (const Head& head : model.sa_heads.heads) qs.push_back(head.query.y), ks.push_back(head.key.y);
        print_scale(qs, ks, B, T, config.mask, config.scale, o.seed);

        nn::MetricsLog metrics(o.metrics_path);
        nn::Progress progress("step", o.max_iters);
        nn::Stopwatch clock;
        auto model_loss = [&](const nn::Batch& batch) { return model.loss(batch); };
        for (int iter = 0; iter < o.max_iters; ++iter) {
            if (iter % o.eval_interval == 0 || iter == o.max_iters - 1) {
                const nn::Losses losses = nn::estimate_loss(data, o.eval_iters, B, T, model_loss);
                progress.clear();
                fmt::print("step {}: train loss {:.4f}, val loss {:.4f}\n", iter, losses.train, losses.val);
                metrics.write_losses(iter, losses.train, losses.val, clock.seconds());
            }
            const nn::Batch batch = nn::get_batch(data, nn::Split::train, B, T, rng);
            const double loss = model.loss(batch);
            optimizer.zero_grad();
            model.backward();
            optimizer.step();
            progress.update(iter + 1, fmt::format("loss {:.3f}", loss));
        }
        progress.clear();
        const double seconds = clock.seconds();
        fmt::print("{} steps in {:.1f} s ({:.0f} steps/s, loss estimates included)\n\n", o.max_iters,
                   seconds, seconds > 0 ? o.max_iters / seconds : 0.0);

        if (o.per_position) print_loss_per_position(model, data, o.eval_iters, B, T);
        if (!o.attention_map.empty()) write_attention_map(model, data.vocab, o.map_text, o.attention_map);
        fmt::print("generate({} characters after {:?}):\n", o.max_new_tokens, data.vocab.decode(context));
        const std::vector<int> out = model.generate(context, o.max_new_tokens, rng, o.temperature, o.top_k);
        fmt::print("{}\n", data.vocab.decode(out));
        return 0;
    });
}
