// 07-encoder-decoder: the Transformer of "Attention Is All You Need", which
// translates dates written in English words into Spanish words.
//
// 06 trained a decoder-only GPT to continue a text. Here an encoder reads
// the English sentence, and a decoder writes the Spanish one word by word,
// reading the encoder's output through cross-attention. Sentences of a batch
// have different lengths, so attention masks the padding and the loss leaves
// it out. The recipe is the paper's: post-norm, sinusoidal positions, label
// smoothing 0.1, Adam (0.9, 0.98) with warm-up then an inverse-square-root
// decay. With the defaults it translates all 7305 held-out test dates
// exactly, after about 30 s of training on one thread.
//
// It is also a tool: --out saves checkpoints, `07-encoder-decoder translate
// --checkpoint DIR --text "..."` translates one sentence and can draw its
// cross-attention, and --pairs FILE.tsv trains on any sentence pairs.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "07-encoder-decoder/checkpoint.hpp"
#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/dates.hpp"
#include "07-encoder-decoder/decode.hpp"
#include "07-encoder-decoder/digits.hpp"
#include "07-encoder-decoder/extrapolation.hpp"
#include "07-encoder-decoder/lines.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/probe.hpp"
#include "07-encoder-decoder/pronouns.hpp"
#include "common/runtime.hpp"
#include "07-encoder-decoder/train.hpp"
#include "common/cli.hpp"
#include "common/limits.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/plot.hpp"
#include "common/progress.hpp"
#include "common/validators.hpp"

namespace {
namespace fs = std::filesystem;

// What a run does besides training (not part of a checkpoint).
struct RunOptions {
    std::string task = "dates";  // the built-in sentence pairs: dates.hpp or pronouns.hpp
    std::string pairs_path, metrics_path, summary_path, plot_path, positions_path, out_dir;
    std::string ablate_head;  // "LAYER.HEAD": zeroed when translating the test set
    std::string lines_dir, grade_path;  // --write-lines, --grade (lines.hpp)
    int threads = 0, beam = 0, show = 5;  // threads 0: one per idle core
    int train_max_len = 0;  // 0: train on every pair; N: only on those of at most N positions (extrapolation.hpp)
};

struct TranslateOptions {
    std::string checkpoint, text, map_path, encoder_map_path, ablate_head, explain;
    int beam = 0, threads = 1;
    bool verbose = false;
};

// Below this mean log-probability per word (a geometric mean probability of
// e^-0.2 = 0.82), translate warns that the model is unsure of what it wrote.
// Trained with label smoothing 0.1, the model gives a word it is sure of
// p = 0.9 at most (log -0.105): on 400 test dates the default run's model
// averaged -0.099 to -0.109; "march first", outside its grammar, -0.32.
constexpr double kLowConfidence = -0.2;

// --ablate-head's heads, separated by commas: "2.3" (encoder layer 2, head 3,
// both from 1), "self:2.3" (the decoder's self-attention), "cross:2.3"
// (cross-attention); "2.*": every head of that layer. Checked against the model later.
std::vector<HeadId> parse_heads(const std::string& text, int n_head) {
    std::vector<HeadId> out;
    for (std::size_t start = 0; start <= text.size();) {
        std::size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string rest = text.substr(start, end - start);
        start = end + 1;
        HeadId id{Heads::encoder, 0, 0};
        for (const auto& [prefix, where] : {std::pair{"self:", Heads::decoder_self}, std::pair{"cross:", Heads::cross}})
            if (rest.starts_with(prefix)) rest.erase(0, std::string(prefix).size()), id.where = where;
        char dot = 0, extra = 0;
        const bool all = rest.ends_with(".*");
        if (all) rest.replace(rest.size() - 1, 1, "1");
        if (std::sscanf(rest.c_str(), "%d%c%d%c", &id.layer, &dot, &id.head, &extra) != 3 || dot != '.' ||
            id.layer < 1 || id.head < 1)
            nn::fail("--ablate-head takes LAYER.HEAD from 1 (2.3: encoder layer 2, head 3; 2.*: all its heads), "
                     "self:LAYER.HEAD (the decoder's self-attention) or cross:LAYER.HEAD, separated by commas; not '{}'",
                     text);
        --id.layer, --id.head;
        for (int h = all ? 0 : id.head; h <= (all ? n_head - 1 : id.head); ++h) out.push_back({id.where, id.layer, h});
    }
    return out;
}

// The heads' names, "2.1,2.2".
std::string head_names(const std::vector<HeadId>& heads) {
    std::string out;
    for (const HeadId& id : heads) out += (out.empty() ? "" : ",") + id.name();
    return out;
}

// Refuses settings whose model cannot fit in this machine's memory, before
// anything is allocated: at the least, the parameters with their gradients and
// Adam's two moments, and, for a batch of B pairs of up to T words (the data's
// longest sentence, with <bos> or <eos>: a batch is padded to its longest),
// what each layer keeps at each of the B*T positions (the sums, LayerNorms,
// q, k, v, outputs and their gradients, about 40C, and the feed-forward's
// 6 d_ff), the attention weights and their gradients over up to T keys in
// each of its (at most 3) attentions, and the logits, their softmax and its
// gradient (3 Vt).
void check_fits(const Config& c, int B, int T) {
    const double params = parameter_count(c), BT = double(B) * T;
    const double layer = 40.0 * c.d_model + 6.0 * c.d_ff + 3 * 2.0 * c.n_head * T;
    const double activations = BT * (2 * c.n_layer * layer + 3.0 * c.tgt_vocab_size);
    nn::check_fits(4.0 * (4 * params + activations),
                   fmt::format("a model of {:.0f} parameters trained on batches of {} pairs of up to {} words", params,
                               B, T));
}

void add_run_options(CLI::App& app, RunOptions& o) {
    app.add_option("--task", o.task, "The built-in sentence pairs: dates (dates.hpp), or pronouns, where \"it\" "
                   "refers to a food or a container and the Spanish adjective agrees with it (pronouns.hpp), or digits, "
                   "strings of 1 to 15 digits read out word by word, for --train-max-len (digits.hpp)")
        ->check(CLI::IsMember({"dates", "pronouns", "digits"}))->capture_default_str();
    app.add_option("--pairs", o.pairs_path, "Train on the sentence pairs of this tab-separated file "
                   "(source<TAB>target per line) instead of the dates");
    app.add_option("--beam", o.beam, "Also translate the test set with beam search of this many beams (0: greedy only)")
        ->check(nn::Count(0, 64))->capture_default_str();
    app.add_option("--show", o.show, "Test sentences to print with their translations")
        ->check(nn::Count(0, 100000))->capture_default_str();
    nn::add_training_outputs(app, o.metrics_path, o.summary_path, o.plot_path);
    app.add_option("--plot-positions", o.positions_path, "Draw the positional-encoding table (position x dimension) into this PNG");
    app.add_option("--threads", o.threads, "OpenMP threads (0: one per core left idle by other programs)")
        ->check(nn::Count(0, 256))
        ->capture_default_str();
    app.add_option("--out", o.out_dir, "Save checkpoints here: best.ckpt (lowest val loss) and last.ckpt");
    app.add_option("--ablate-head", o.ablate_head, "Zero these heads' output when translating the test set after "
                   "training, an experiment: LAYER.HEAD from 1 (the encoder's), self:LAYER.HEAD (the decoder's "
                   "self-attention) or cross:LAYER.HEAD; LAYER.* for all of a layer's heads; several separated by commas");
    app.add_option("--train-max-len", o.train_max_len, "An experiment: train (and validate) only on the pairs of at "
                   "most this many positions (source words, or target words + 1), and score the test set apart for "
                   "the pairs within and beyond it (extrapolation.hpp)")
        ->check(nn::Count(1, 4096));
    app.add_option("--write-lines", o.lines_dir, "Instead of training, write the pairs of the train, val and test "
                   "splits to DIR/train.txt, val.txt, test.txt, one \"source = target\" line each (for 06-gpt --text)");
    app.add_option("--grade", o.grade_path, "Instead of training (--task pronouns), grade the translations of a file "
                   "of \"source<TAB>translation\" lines, the sources held-out test sentences: exact match and agreement");
}

CLI::App* add_translate_command(CLI::App& app, TranslateOptions& o) {
    CLI::App* translate = app.add_subcommand("translate", "Translate one sentence with a model saved by --out");
    nn::add_checkpoint_option(*translate, o.checkpoint);
    translate->add_option("--text", o.text, "The sentence to translate, e.g. \"november twenty-eighth two thousand twenty-six\"")
        ->required();
    translate->add_option("--beam", o.beam, "Beam search with this many beams (0 or 1: greedy)")
        ->check(nn::Count(0, 64))->capture_default_str();
    translate->add_option("--cross-attention-map", o.map_path,
                          "Draw each decoder layer's cross-attention (averaged over heads) into this PNG");
    translate->add_option("--encoder-attention-map", o.encoder_map_path,
                          "Draw the encoder's self-attention, every layer (rows) and head (columns), into this PNG");
    translate->add_option("--ablate-head", o.ablate_head, "Zero these heads' output, an experiment: LAYER.HEAD from 1 "
                          "(the encoder's), self:LAYER.HEAD or cross:LAYER.HEAD; LAYER.* for a whole layer; several "
                          "separated by commas");
    translate->add_option("--explain", o.explain, "Print how the encoder's self-attention weighs the source words for "
                          "this word of --text (the scores q.k/sqrt(hs) and their softmax, every layer and head), and "
                          "the decoder's cross-attention when it writes the last word");
    translate->add_option("--threads", o.threads, "OpenMP threads")->check(nn::Count(1, 256))->capture_default_str();
    translate->add_flag("--verbose", o.verbose,
                        "Also print on stderr each word written with its probability, and their mean log-probability");
    return translate;
}

// One batch walked through the model, to show the shapes.
void print_shapes(Transformer& model, const PairData& data, const TrainConfig& train, int threads) {
    const Config& c = model.config;
    nn::Rng show(train.seed + 1);
    const Batch batch = get_batch(data, Split::train, train.batch_size, show);
    const double loss0 = model.loss(batch);
    const EncoderLayer& e0 = model.encoder[0];
    const DecoderLayer& d0 = model.decoder[0];
    long n_params = 0;
    for (const nn::Parameter* p : model.parameters()) n_params += p->value.size();
    auto row = [](const std::string& what, const nn::Matrix& m, const std::string& note) {
        fmt::print("    {:<44} {}  {}\n", what, nn::shape(m), note);
    };
    const bool post = c.norm == Norm::post;
    auto add_norm = [&](const std::string& f, const char* x = "x") {
        return post ? fmt::format("{0} = LayerNorm({0} + {1}({0}))", x, f) : fmt::format("{0} = {0} + {1}(LayerNorm({0}))", x, f);
    };
    fmt::print("shapes, with B = {} (batch), Ts = {} and Tt = {} (the batch's longest source, and target + 1), "
               "C = {} (d_model), nh = {}, hs = {}, Vs = {}, Vt = {}:\n",
               batch.B, batch.Ts, batch.Tt, c.d_model, c.n_head, e0.sa.head_size, c.src_vocab_size, c.tgt_vocab_size);
    fmt::print("  {:<46} ({}, {})  source words, <pad> after each one's length\n", "src", batch.B, batch.Ts);
    fmt::print("  {:<46} ({}, {})  <bos> y_1 .. y_n, padded (teacher forcing)\n", "tgt_in", batch.B, batch.Tt);
    fmt::print("  {:<46} ({}, {})  y_1 .. y_n <eos>, padded: the targets\n", "tgt_out", batch.B, batch.Tt);
    fmt::print("  encoder, {} x EncoderLayer:\n", c.n_layer);
    row("x = src_emb * sqrt(C) + PE", model.x, "(B*Ts, C)");
    row("wei = softmax(pad_mask(q k^T / sqrt(hs)))", e0.sa.att.wei, "(B*nh*Ts, Ts): B*nh blocks of (Ts, Ts)");
    row(add_norm("self_attn"), e0.an1.sum, "(B*Ts, C)");
    row("h = relu(fc(x))", e0.ffwd.act.y, "(B*Ts, d_ff)");
    row(add_norm("ffwd"), model.memory, "(B*Ts, C): memory, the encoder's output");
    fmt::print("  decoder, {} x DecoderLayer:\n", c.n_layer);
    row("y = tgt_emb * sqrt(C) + PE", model.y, "(B*Tt, C)");
    row("wei = softmax(causal_mask(q k^T / sqrt(hs)))", d0.sa.att.wei, "(B*nh*Tt, Tt): B*nh blocks of (Tt, Tt)");
    row(add_norm("self_attn", "y"), d0.an1.sum, "(B*Tt, C)");
    row("q = query(y)", d0.ca.query.y, "(B*Tt, C): from the decoder");
    row("k, v = key_value(memory)", d0.ca.key_value.y, "(B*Ts, 2C): from the encoder");
    row("wei = softmax(pad_mask(q k^T / sqrt(hs)))", d0.ca.att.wei, "(B*nh*Tt, Ts): each target word over the source");
    row(add_norm("cross_attn", "y"), d0.an2.sum, "(B*Tt, C)");
    row(add_norm("ffwd", "y"), d0.an3.sum, "(B*Tt, C)");
    row("logits = y W_tgt_emb^T", model.logits, "(B*Tt, Vt): tied to the target embedding");
    fmt::print("  {:<46} ()  = {:.4f} over {} target words (a uniform guess gives about ln {} = {:.4f})\n",
               "loss = smoothed_cross_entropy(logits, tgt_out)", loss0, model.criterion.count, c.tgt_vocab_size,
               std::log(static_cast<double>(c.tgt_vocab_size)));
    fmt::print("  {} trained parameters, {} threads\n\n", n_params, threads);
}

// The mean loss over eval_iters batches of a split, the same batches every time.
float estimate_loss(Transformer& model, const PairData& data, Split split, const TrainConfig& train) {
    nn::Rng rng(train.seed + 2);
    double sum = 0;
    for (int k = 0; k < train.eval_iters; ++k) sum += model.loss(get_batch(data, split, train.batch_size, rng));
    return static_cast<float>(sum / train.eval_iters);
}

// What the training loop measured, and the peak memory when training ended
// (before the test set's translations).
struct LoopStats : nn::LoopStats {
    double peak_memory_mb = 0;
};

// The training loop: every eval_interval steps estimate the losses (and save
// checkpoints), otherwise get_batch, loss, backward, clip, Adam step with the
// learning rate of the schedule.
struct Training {
    Transformer& model;
    nn::AdamW& optimizer;
    const PairData& data;
    const TrainConfig& train;
    const RunOptions& run;
    Checkpoint& state;  // what --out saves; its history grows
    nn::Rng& rng;       // the batches'
};
LoopStats train_loop(const Training& t) {
    auto& [model, optimizer, data, train, run, state, rng] = t;
    nn::MetricsLog metrics(run.metrics_path);
    auto save = [&](const char* name, int step) {
        state.step = step;
        save_checkpoint(fs::path(run.out_dir) / name, state, model);
    };
    nn::Progress progress("step", std::max(1, train.max_iters));
    LoopStats stats;
    nn::Stopwatch clock;
    for (int step = 0;; ++step) {
        if (step % train.eval_interval == 0 || step == train.max_iters) {
            const nn::Stopwatch eval_clock;
            model.train(false);
            const float tr = estimate_loss(model, data, Split::train, train), va = estimate_loss(model, data, Split::val, train);
            model.train(true);
            stats.eval_seconds += eval_clock.seconds();
            progress.clear();
            fmt::print("step {}: train loss {:.4f}, val loss {:.4f}\n", step, tr, va);
            const EvalRecord e{step, tr, va, clock.seconds()};
            state.history.push_back(e);
            metrics.write_losses(e.step, e.train, e.val, e.seconds);
            if (!run.out_dir.empty()) {
                if (va < state.best_val) {
                    state.best_val = va;
                    save("best.ckpt", step);
                }
                save("last.ckpt", step);
            }
        }
        if (step >= train.max_iters) break;
        const nn::Stopwatch step_clock;
        optimizer.options.lr = get_lr(train, model.config.d_model, step);
        const Batch batch = get_batch(data, Split::train, train.batch_size, rng);
        const double loss = model.loss(batch);
        optimizer.zero_grad();
        model.backward();
        if (train.grad_clip > 0) nn::clip_grad_norm(model.parameters(), train.grad_clip);
        optimizer.step();
        stats.step_ms.push_back(step_clock.seconds() * 1e3);
        progress.update(step + 1, fmt::format("loss {:.3f}", loss));
    }
    progress.clear();
    stats.seconds = clock.seconds();
    stats.peak_memory_mb = nn::peak_rss_mb();
    return stats;
}

void report(const LoopStats& s, const TrainConfig& train, const RunOptions& run, const Checkpoint& state) {
    nn::print_loop_report(train.max_iters, s, s.peak_memory_mb);
    if (!run.out_dir.empty())
        fmt::print("checkpoints in {}: best.ckpt (val loss {:.4f}), last.ckpt (step {})\n", run.out_dir, state.best_val,
                   train.max_iters);
    nn::plot_losses(run.plot_path, "07-encoder-decoder: loss", state.history);
}

// --summary-json: the run's figures, and the test set's share of exact
// matches and (--task pronouns; otherwise null) of agreement.
void write_summary(const LoopStats& s, const TrainConfig& train, const RunOptions& run, const Checkpoint& state,
                   double exact, double agreement) {
    const EvalRecord last = nn::last_losses(state.history);  // NaNs, null in the summary, if there was none
    nn::write_summary_json(run.summary_path, {{"steps", train.max_iters}, {"seconds", s.seconds},
                                              {"eval_seconds", s.eval_seconds}, {"ms_per_step_median", s.median_step_ms()},
                                              {"peak_memory_mb", s.peak_memory_mb}, {"threads", run.threads},
                                              {"train_loss", last.train}, {"val_loss", last.val},
                                              {"test_exact_match", exact}, {"test_agreement", agreement}});
}

// Translates the test set and counts the sentences translated exactly; the
// translations go to `translations` too, if given.
int exact_matches(Transformer& model, const PairData& data, int beam, const RunOptions& run, bool show,
                  std::vector<std::vector<int>>* translations = nullptr) {
    const nn::Stopwatch clock;
    const std::vector<std::vector<int>> out = translate_all(model, data.test, beam);
    if (translations != nullptr) *translations = out;
    int right = 0;
    std::vector<std::size_t> wrong;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] == data.test[i].tgt) ++right;
        else wrong.push_back(i);
    }
    fmt::print(stderr, "({} test sentences translated in {:.1f} s)\n", out.size(), clock.seconds());
    if (!show) return right;
    auto print = [&](std::size_t i) {
        fmt::print("  {}\n    -> {}{}\n", data.test_text[i].first, data.tgt_vocab.decode(out[i]),
                   out[i] == data.test[i].tgt ? "" : fmt::format("   (expected: {})", data.test_text[i].second));
    };
    fmt::print("translations of test sentences:\n");
    for (std::size_t i = 0; i < std::min<std::size_t>(out.size(), static_cast<std::size_t>(run.show)); ++i) print(i);
    if (!wrong.empty() && run.show > 0) {
        fmt::print("mistakes ({} in all, the first {}):\n", wrong.size(), std::min<std::size_t>(wrong.size(), static_cast<std::size_t>(run.show)));
        for (std::size_t k = 0; k < std::min<std::size_t>(wrong.size(), static_cast<std::size_t>(run.show)); ++k)
            print(wrong[k]);
    }
    return right;
}

// A word as the plot's font can draw it: ASCII only, so the accents go (é -> e).
std::string plot_label(const std::string& word) {
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
void plot_positions(const Transformer& model, const std::string& path) {
    Config c = model.config;
    if (c.position == Position::sinusoidal) c.max_len = std::max(c.max_len, 64);
    nn::Rng unused(0);
    const nn::Matrix pe = c.position == Position::sinusoidal ? PositionalEncoding(c, unused).table.value
                                                             : model.positions.table.value;
    nn::write_signed_heatmap(path, fmt::format("{} positional encoding: position (down) x dimension (across), "
                                               "-1 blue .. +1 red", setting_text(c.position)),
                             pe, "dimension", "position");
    fmt::print("wrote the positional encoding ({} positions x {} dimensions) to {}\n", pe.rows(), pe.cols(), path);
}

// The cross-attention of every decoder layer, averaged over heads, for the
// source and the translation the decoder wrote (already in the model).
void plot_cross_attention(const Transformer& model, const WordVocabulary& src_vocab, const WordVocabulary& tgt_vocab,
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
void plot_encoder_attention(const Transformer& model, const WordVocabulary& src_vocab, const std::vector<int>& src,
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

// 07-encoder-decoder translate: one sentence, from a saved model.
int translate_command(const TranslateOptions& o) {
    nn::set_threads(o.threads);
    const fs::path file = checkpoint_file(o.checkpoint, "best.ckpt");
    CheckpointReader reader(file);
    const Checkpoint& k = reader.info;
    const std::vector<std::string> words = split_words(o.text, "--text");
    if (words.empty()) nn::fail("--text is empty: give a sentence to translate");
    refuse_specials(words, "--text");
    if (static_cast<int>(words.size()) > k.config.max_len - 1)
        nn::fail("--text has {} words, more than the {} this model takes (--max-len {})", words.size(),
                 k.config.max_len - 1, k.config.max_len);
    const Example source{k.src_vocab.encode(words, "--text"), {}};
    const auto explained = std::find(words.begin(), words.end(), o.explain);  // its first occurrence
    if (!o.explain.empty() && explained == words.end())
        nn::fail("--explain '{}' is not a word of --text", o.explain);
    nn::Rng init(0);
    Transformer model(k.config, init);
    reader.restore(model);
    if (!o.ablate_head.empty()) model.ablate(parse_heads(o.ablate_head, k.config.n_head));
    const Example* sources[] = {&source};
    const std::vector<int> out = beam_decode(model, sources, o.beam).front();
    fmt::print("{}\n", k.tgt_vocab.decode(out));
    std::fflush(stdout);

    // How sure the model is of what it wrote: the decoder reads <bos> and the
    // translation (teacher forcing on its own words), and row t of the logits
    // gives the probability of the word written at t, then of <eos>, if the
    // sentence ended rather than reaching the most words it may have.
    const int src_len = static_cast<int>(source.src.size());
    std::vector<int> tgt_in{kBos};
    tgt_in.insert(tgt_in.end(), out.begin(), out.end());
    model.encode(source.src, std::vector<int>{src_len}, 1, src_len);
    const nn::Matrix& logits = model.decode(tgt_in, static_cast<int>(tgt_in.size()));
    const bool ended = static_cast<int>(out.size()) < max_words(k.config, src_len);
    double sum = 0;
    int count = 0;
    for (std::size_t t = 0; t < out.size() + (ended ? 1 : 0); ++t) {
        const int word = t < out.size() ? out[t] : kEos;
        const auto row = logits.row(static_cast<Eigen::Index>(t));
        const double logp = static_cast<double>(row(word)) - nn::log_sum_exp(row);
        sum += logp, ++count;
        if (o.verbose) fmt::print(stderr, "  {:<14} p {:.4f}\n", k.tgt_vocab.word(word), std::exp(logp));
    }
    const double mean = sum / count;
    if (o.verbose)
        fmt::print(stderr, "mean log-probability {:.4f} over {} (a warning below {})\n", mean,
                   out.empty() ? std::string("<eos> alone")
                               : fmt::format("{} word{}{}", out.size(), out.size() == 1 ? "" : "s",
                                             ended ? " and <eos>" : " (no <eos>: the most words it may write)"),
                   kLowConfidence);
    if (out.empty())
        fmt::print(stderr, "07-encoder-decoder: warning: the translation is empty: the model wrote <eos> first "
                           "(p {:.4f}); the sentence is probably outside what it was trained on\n", std::exp(mean));
    else if (mean < kLowConfidence)
        fmt::print(stderr, "07-encoder-decoder: warning: low confidence: mean log-probability {:.4f} per word, below {}; "
                           "the sentence is probably outside what the model was trained on\n", mean, kLowConfidence);
    if (!o.map_path.empty()) plot_cross_attention(model, k.src_vocab, k.tgt_vocab, source.src, out, o.map_path);
    if (!o.encoder_map_path.empty()) plot_encoder_attention(model, k.src_vocab, source.src, o.encoder_map_path);
    if (!o.explain.empty())
        explain_word(model, k.src_vocab, k.tgt_vocab, source.src, out, static_cast<int>(explained - words.begin()));
    return 0;
}

// --grade, instead of training: grades a file of translations of the
// pronoun task's held-out test sentences (lines.hpp).
int grade_command(const RunOptions& run) {
    if (run.task != "pronouns") nn::fail("--grade grades the pronoun task's translations: give --task pronouns");
    const Graded g = grade_translations(run.grade_path);
    fmt::print("{}: {} of the {} held-out test sentences\n", run.grade_path, g.scores.all.n, g.held_out);
    print_pronoun_scores(g.scores);
    return 0;
}

// --write-lines, instead of training: the splits' pairs as "source = target"
// lines, for 06-gpt --text (lines.hpp).
int write_lines_command(const PairData& data, const std::string& dir) {
    const auto n = write_lines(data, dir);
    fmt::print("wrote {} training, {} validation and {} test pairs as \"source = target\" lines to {}/"
               "train.txt, val.txt, test.txt\n", n[0], n[1], n[2], dir);
    return 0;
}

// The run's sentence pairs, split, with their vocabularies: the built-in
// task's (the dates, the pronoun sentences or the digit strings), or those of
// --pairs' file. `sentences`: the pronoun task's, or none.
PairData load_pairs(const RunOptions& run, int max_len, const std::vector<pronouns::Sentence>& sentences) {
    if (!run.pairs_path.empty()) return make_pair_data(read_pairs(run.pairs_path), max_len, run.pairs_path);
    if (run.task == "pronouns")
        return make_pair_data(pronouns::sentence_pairs(sentences), max_len, "the pronoun sentences",
                              pronouns::split_of(sentences));
    if (run.task == "digits") return make_pair_data(digits::digit_pairs(), max_len, "the digit strings");
    return make_pair_data(dates::date_pairs(), max_len, "the dates");
}

// The most positions a pair of the data takes: its source's words, or its
// target's and <bos> (or <eos>).
int longest_pair(const PairData& data) {
    int longest = 0;
    for (const auto* split : {&data.train, &data.val, &data.test})
        for (const Example& e : *split) longest = std::max({longest, int(e.src.size()), int(e.tgt.size()) + 1});
    return longest;
}

// What the data is: its `n_pairs` pairs and one of them, the vocabularies,
// with --train-max-len the positions the pairs need (`lengths`), and the splits.
void print_data(const PairData& data, const Config& config, const RunOptions& run, std::size_t n_pairs,
                const std::map<int, int>& lengths) {
    fmt::print("{}: {} sentence pairs, e.g.\n  {}\n  -> {}\n",
               !run.pairs_path.empty()  ? run.pairs_path
               : run.task == "pronouns" ? "\"it\" and two nouns"
               : run.task == "digits"   ? "strings of 1 to 15 digits"
                                        : "dates from 1900 to 2099",
               n_pairs, data.test_text.front().first, data.test_text.front().second);
    fmt::print("  vocabularies: {} source words, {} target words (with <pad>, <bos>, <eos>)\n", config.src_vocab_size,
               config.tgt_vocab_size);
    if (run.train_max_len > 0)
        fmt::print("  positions a pair needs (source words, or target words + 1): pairs\n    {}\n"
                   "  --train-max-len {}: train and val only on pairs of at most {} positions\n",
                   histogram_text(lengths), run.train_max_len, run.train_max_len);
    if (run.task == "pronouns")
        fmt::print("  train: {} pairs, val: {}, test: {} (every sentence of 20 held-out noun pairs and of 20 "
                   "held-out noun-adjective combinations; none of them is trained on)\n\n",
                   data.train.size(), data.val.size(), data.test.size());
    else
        fmt::print("  train: {} pairs, val: {}, test: {} (a fixed shuffle; no test sentence is trained on)\n\n",
                   data.train.size(), data.val.size(), data.test.size());
}

// The test set's translations: greedy, and with --beam those of beam search,
// which are then the ones scored.
struct TestTranslations {
    std::vector<std::vector<int>> greedy, out;  // out: greedy's, or beam search's
    int right = 0;                              // sentences of `out` translated exactly
};
TestTranslations translate_test_set(Transformer& model, const PairData& data, const RunOptions& run) {
    const int M = static_cast<int>(data.test.size());
    TestTranslations t;
    const int greedy = exact_matches(model, data, 1, run, true, &t.greedy);
    t.right = greedy;
    t.out = t.greedy;
    if (run.beam > 1) {
        fmt::print("greedy decoding: {} / {} ({:.2f}%)\n", greedy, M, 100.0 * greedy / M);
        t.right = exact_matches(model, data, run.beam, run, false, &t.out);
        fmt::print("beam search, {} beams:\n", run.beam);
    }
    return t;
}

// The pronoun task's report: agreement, and with no head zeroed, where "it"
// looks and what zeroing each head costs (probe.hpp). Returns the test set's
// share of agreement.
double report_pronouns(Transformer& model, const std::vector<pronouns::Sentence>& sentences, const PairData& data,
                       const std::vector<HeadId>& ablated, const TestTranslations& t) {
    const PronounScores scores = score_pronouns(sentences, data, t.out);
    fmt::print("\n");
    if (!ablated.empty()) fmt::print("heads zeroed: {}\n", head_names(ablated));
    print_pronoun_scores(scores);
    if (ablated.empty()) {
        fmt::print("\n");
        print_attention_from_it(attention_from_it(model, sentences, data), model.config.n_head,
                                static_cast<int>(data.test.size()));
        fmt::print("\n");
        print_ablation(score_pronouns(sentences, data, t.greedy), ablation_scores(model, sentences, data));
    }
    fmt::print("\n");
    return static_cast<double>(scores.all.agree) / scores.all.n;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"07-encoder-decoder: the Transformer of \"Attention Is All You Need\" (an encoder, a decoder "
                 "with cross-attention), trained with hand-written backprop to translate dates from English "
                 "into Spanish; `07-encoder-decoder translate` translates with a checkpoint.",
                 "07-encoder-decoder"};
    Config config;
    TrainConfig train;
    RunOptions run;
    TranslateOptions translate_options;
    nn::add_settings(app, config, train);
    add_run_options(app, run);
    const CLI::App* translate = add_translate_command(app, translate_options);
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        nn::keep_freed_memory();
        if (*translate) return translate_command(translate_options);
        // 1. Settings: refuse what cannot work, before any work is done.
        config.validate();
        train.validate();
        std::vector<HeadId> ablate;  // --ablate-head
        if (!run.ablate_head.empty()) ablate = parse_heads(run.ablate_head, config.n_head);
        for (const HeadId& id : ablate) Transformer::check_head(config, id);
        if (run.threads == 0) run.threads = nn::idle_cores();
        nn::set_threads(run.threads);

        // 2. Data: the sentence pairs, their vocabularies, the train, val and test splits.
        if (!run.pairs_path.empty() && run.task != "dates")
            nn::fail("--pairs and --task {} both name the sentence pairs: give one", run.task);
        if (!run.grade_path.empty() && !run.lines_dir.empty()) nn::fail("--grade and --write-lines: give one");
        if (!run.grade_path.empty()) return grade_command(run);
        const bool pronoun_task = run.task == "pronouns";
        const std::vector<pronouns::Sentence> sentences = pronoun_task ? pronouns::all_sentences()
                                                                       : std::vector<pronouns::Sentence>{};
        PairData data = load_pairs(run, config.max_len, sentences);
        const std::size_t n_pairs = data.train.size() + data.val.size() + data.test.size();
        const std::map<int, int> lengths = length_histogram(data);
        if (!run.lines_dir.empty()) return write_lines_command(data, run.lines_dir);
        if (run.train_max_len > 0) keep_short_pairs(data, run.train_max_len, config.max_len);
        config.src_vocab_size = data.src_vocab.size();
        config.tgt_vocab_size = data.tgt_vocab.size();
        check_fits(config, train.batch_size, longest_pair(data));
        print_data(data, config, run, n_pairs, lengths);

        // 3. The model and its optimizer (Adam: no weight decay).
        nn::Rng rng(train.seed);
        Transformer model(config, rng);
        model.criterion.smoothing = train.label_smoothing;
        nn::AdamW optimizer(model.parameters(), {.lr = get_lr(train, config.d_model, 0), .beta1 = train.beta1,
                                                 .beta2 = train.beta2, .eps = 1e-9f, .weight_decay = 0.0f});
        Checkpoint state;  // what --out saves
        state.config = config, state.train = train, state.src_vocab = data.src_vocab, state.tgt_vocab = data.tgt_vocab;
        if (!run.positions_path.empty()) plot_positions(model, run.positions_path);
        nn::check_outputs(run.out_dir, {run.plot_path, run.summary_path});  // now, not after training

        // 4. One batch through the model.
        print_shapes(model, data, train, run.threads);

        // 5. Train, 6. report.
        const LoopStats stats = train_loop({model, optimizer, data, train, run, state, rng});
        report(stats, train, run, state);

        // 7. Translate the test set: greedy, and beam search with --beam; with --ablate-head, without those heads.
        fmt::print("\n");
        model.ablate(ablate);
        const TestTranslations test = translate_test_set(model, data, run);

        // 8. The pronoun task: agreement, where "it" looks and what each head is for; with
        // --train-max-len, the scores within and beyond N positions.
        const double agreement = pronoun_task ? report_pronouns(model, sentences, data, ablate, test)
                                              : std::numeric_limits<double>::quiet_NaN();
        if (run.train_max_len > 0) {
            print_by_length(score_by_length(data.train, data.test, test.out, run.train_max_len), run.train_max_len);
            print_forced(forced_beyond(model, data.test, run.train_max_len), run.train_max_len);
        }
        const int M = static_cast<int>(data.test.size());
        write_summary(stats, train, run, state, static_cast<double>(test.right) / M, agreement);
        fmt::print("exact match on the test set: {} / {} ({:.2f}%)\n", test.right, M, 100.0 * test.right / M);
        return 0;
    });
}
