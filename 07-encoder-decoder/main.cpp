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
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "07-encoder-decoder/checkpoint.hpp"
#include "07-encoder-decoder/data.hpp"
#include "07-encoder-decoder/decode.hpp"
#include "07-encoder-decoder/extrapolation.hpp"
#include "07-encoder-decoder/maps.hpp"
#include "07-encoder-decoder/model.hpp"
#include "07-encoder-decoder/probe.hpp"
#include "07-encoder-decoder/pronouns.hpp"
#include "07-encoder-decoder/run.hpp"
#include "07-encoder-decoder/train.hpp"
#include "07-encoder-decoder/translate.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/progress.hpp"
#include "common/runtime.hpp"
#include "common/training.hpp"

namespace {
namespace fs = std::filesystem;

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
    fmt::print("  {} trained parameters, {} thread{}\n\n", n_params, threads, threads == 1 ? "" : "s");
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
