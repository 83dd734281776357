// 03-bigram: text as numbers, and the simplest language model.
//
// Reads Tiny Shakespeare, turns each character into a token (an index into the
// 65-character vocabulary), and trains a bigram model: a (V, V) table whose row
// i holds the logits of the character after character i. Training draws random
// batches of B sequences of T characters, scores every next character with
// softmax cross-entropy, backpropagates into the table and updates it with
// AdamW. Then the model writes 500 characters. The lecture's bigram.py reaches
// a validation loss of about 2.5; this does too.
#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "03-bigram/model.hpp"
#include "common/cli.hpp"
#include "common/limits.hpp"
#include "common/metrics.hpp"
#include "common/optim.hpp"
#include "common/progress.hpp"
#include "common/text.hpp"
#include "common/validators.hpp"

namespace {

// Every setting of a run, from the command line.
struct Options {
    std::string data_dir, metrics_path, prompt;
    int batch_size = 32, block_size = 8, max_iters = 3000, eval_interval = 300, eval_iters = 200;
    int max_new_tokens = 500, top_k = 0;
    float learning_rate = 1e-2f, weight_decay = 0.01f, temperature = 1.0f;
    std::uint64_t seed = 1337;
};

void add_options(CLI::App& app, Options& o) {
    nn::add_data_option(app, o.data_dir);
    app.add_option("--batch-size", o.batch_size, "B: sequences per batch")
        ->check(nn::Count(1, 4096))->capture_default_str();
    app.add_option("--block-size", o.block_size, "T: characters per sequence (context length)")
        ->check(nn::Count(1, 8192))->capture_default_str();
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
}

// One batch walked through the model, to show the shapes.
void print_shapes(BigramLanguageModel& model, const nn::TextData& data, const Options& o, nn::Rng& rng) {
    const int B = o.batch_size, T = o.block_size, V = data.vocab.size();
    const nn::Batch example = nn::get_batch(data, nn::Split::train, B, T, rng);
    const double loss0 = model.loss(example);
    fmt::print("shapes, with B = {} (batch), T = {} (time), V = {} (vocabulary):\n", B, T, V);
    fmt::print("  {:<44} ({}, {})  tokens; row b is text[i_b : i_b+{}]\n", "xb = get_batch('train')", B, T, T);
    fmt::print("  {:<44} ({}, {})  the next characters: text[i_b+1 : i_b+{}]\n", "yb", B, T, T + 1);
    fmt::print("  {:<44} {}  the (V, V) table\n", "token_embedding_table",
               nn::shape(model.token_embedding_table.weight.value));
    fmt::print("  {:<44} {}  (B*T, V): one row per position\n", "logits = token_embedding_table[xb]",
               nn::shape(model.token_embedding_table.y));
    fmt::print("  {:<44} ()  = {:.4f} (a uniform guess gives ln {} = {:.4f})\n",
               "loss = cross_entropy(logits, yb)", loss0, V, std::log(static_cast<double>(V)));
    model.backward();  // the same batch back: the gradient of each thing has its shape
    fmt::print("  backward, from the loss to the table:\n");
    fmt::print("  {:<44} {}  (B*T, V): (softmax(logits) - one_hot(yb)) / (B*T)\n", "dlogits",
               nn::shape(model.criterion.dlogits));
    fmt::print("  {:<44} {}  (V, V): row i sums the rows of dlogits where xb is i\n\n", "d token_embedding_table",
               nn::shape(model.token_embedding_table.weight.grad));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"03-bigram: a bigram language model on Tiny Shakespeare, trained with "
                 "hand-written backprop and AdamW, then sampled.",
                 "03-bigram"};
    Options o;
    add_options(app, o);
    if (auto status = nn::parse(app, argc, argv)) return *status;

    return nn::guarded(app, [&] {
        const int B = o.batch_size, T = o.block_size;
        const nn::TextData data = nn::load_text(std::filesystem::path(o.data_dir) / "tinyshakespeare.txt");
        nn::check_context(data, T);
        const int V = data.vocab.size();
        // The table, its gradient and AdamW's two moments: four (V, V) float matrices.
        nn::check_fits(16.0 * V * V, fmt::format("the bigram table for V = {} characters", V));
        // With a batch's logits, their softmax and its gradient: three (B*T, V) more.
        nn::check_fits(16.0 * V * V + 12.0 * B * T * V,
                       fmt::format("the bigram table and the logits of B = {} sequences of T = {} over V = {} characters",
                                   B, T, V));
        const std::vector<int> context = data.vocab.prompt(o.prompt);
        fmt::print("Tiny Shakespeare from {}: {} characters\n", o.data_dir, data.train.size() + data.val.size());
        fmt::print("  vocabulary, V = {}: {}\n", V, data.vocab.printable());
        fmt::print("  train: the first {} tokens, val: the last {}\n\n", data.train.size(), data.val.size());

        nn::Rng rng(o.seed);
        BigramLanguageModel model(V, rng);
        nn::AdamW optimizer(model.parameters(), {.lr = o.learning_rate, .weight_decay = o.weight_decay});

        print_shapes(model, data, o, rng);  // One batch walked through the model.

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

        fmt::print("generate({} characters after {:?}):\n", o.max_new_tokens, data.vocab.decode(context));
        const std::vector<int> out = model.generate(context, o.max_new_tokens, rng, o.temperature, o.top_k);
        fmt::print("{}\n", data.vocab.decode(out));
        return 0;
    });
}
