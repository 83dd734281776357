// 06-gpt as a program: a short run whose loss falls, checkpoints that
// round-trip and refuse bad files, resuming that gives the same losses as an
// uninterrupted run, and sampling from a checkpoint.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>

#include "06-gpt/checkpoint.hpp"
#include "common/fileio.hpp"  // reseal_container: a crafted payload past the checksum
#include "lm_helpers.hpp"

namespace {
using Catch::Matchers::Contains;

// A model small enough to train in a fraction of a second.
const std::string kSmall =
    " --n-layer 2 --n-head 2 --n-embd 16 --block-size 16 --batch-size 8 --eval-iters 4 --lr 1e-2 --warmup-iters 10";

std::string run_args(const std::string& args) { return "--data " + test::shakespeare_dir() + kSmall + " " + args; }

// The "step N: train loss X, val loss Y" lines of an output, in order.
std::vector<std::string> loss_lines(const std::string& output) {
    static const std::regex line(R"(step \d+: train loss [0-9.]+, val loss [0-9.]+)");
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
        out.push_back(it->str());
    return out;
}

// The weights and AdamW moments a checkpoint file holds.
std::vector<nn::Matrix> weights(const std::filesystem::path& file) {
    CheckpointReader reader(file);
    nn::Rng rng(0);
    GPTLanguageModel model(reader.info.config, rng);
    nn::AdamW optimizer(model.parameters(), {});
    reader.restore(model, &optimizer);
    std::vector<nn::Matrix> out;
    for (const nn::Parameter* p : model.parameters()) out.push_back(p->value);
    for (const nn::Matrix& m : optimizer.first_moments()) out.push_back(m);
    for (const nn::Matrix& v : optimizer.second_moments()) out.push_back(v);
    return out;
}

float val_loss(const std::string& line) { return std::stof(line.substr(line.rfind(' ') + 1)); }

// One short training run with --out, --metrics and --plot, shared by the tests below.
struct TrainedRun {
    test::ScratchDir dir;
    test::RunResult result;
    std::filesystem::path ckpt() const { return dir / "ckpt"; }
    TrainedRun() {
        result = test::run_lesson("06-gpt", run_args("--threads 1 --max-iters 60 --eval-interval 30 --max-new-tokens 20 --out " +
                                                      ckpt().string() + " --metrics " + (dir / "m.jsonl").string() +
                                                      " --plot " + (dir / "p.png").string()));
    }
};
const TrainedRun& trained() {
    static const TrainedRun run;
    return run;
}

// A copy of the trained run's checkpoint directory, to damage.
struct CheckpointCopy {
    test::ScratchDir dir;
    std::filesystem::path file = dir / "last.ckpt";
    std::string bytes;
    CheckpointCopy() {
        std::filesystem::copy_file(trained().ckpt() / "last.ckpt", file);
        bytes = nn::read_file(file);
    }
    void rewrite(const std::string& b) const { std::ofstream(file, std::ios::binary | std::ios::trunc) << b; }
    test::RunResult resume(const std::string& extra = "") const {
        return test::run_lesson("06-gpt", run_args("--threads 1 --max-iters 60 --eval-interval 30 --max-new-tokens 0 --resume " +
                                                   dir.path.string() + extra));
    }
};

// Where a setting sits in a checkpoint: after the container's 20-byte header and
// the vocabulary size, in the table's order. An unknown flag gives the offset
// just past the settings, where the vocabulary starts.
std::size_t setting_offset(const std::string& wanted) {
    std::size_t offset = 20 + 4, found = 0;
    Config c;
    TrainConfig t;
    for_each_setting(c, t, [&](const char* flag, const auto& value, const char*, Bound) {
        if (flag == wanted) found = offset;
        offset += sizeof(nn::StoredAs<std::remove_cvref_t<decltype(value)>>);
    });
    return found != 0 ? found : offset;
}
template <typename T>
void poke(std::string& bytes, std::size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
}

}  // namespace

TEST_CASE("06-gpt trains: the loss falls, and checkpoints hold the model", "[06-gpt][run]") {
    const TrainedRun& run = trained();
    INFO(run.result.output);
    REQUIRE(run.result.status == 0);
    const auto lines = loss_lines(run.result.output);
    REQUIRE(lines.size() == 3);
    CHECK(val_loss(lines[2]) < val_loss(lines[0]) - 0.5f);
    CHECK_THAT(run.result.output, Contains("ms per training step"));
    CHECK(std::filesystem::exists(run.dir / "p.png"));
    CHECK(nn::read_file(run.dir / "m.jsonl").find(R"("step": 60)") != std::string::npos);

    // The checkpoint round-trips: same settings, same history; read into a
    // model and an optimizer and saved again, the same bytes.
    CheckpointReader best(run.ckpt() / "best.ckpt"), last(run.ckpt() / "last.ckpt");
    CHECK(last.info.step == 60);
    CHECK(last.info.config.n_layer == 2);
    CHECK(last.info.config.vocab_size == 65);
    CHECK(last.info.train.max_iters == 60);
    CHECK(last.info.history.size() == 3);
    CHECK(best.info.best_val == Approx(last.info.history.back().val).epsilon(1e-6));
    nn::Rng rng(0);
    GPTLanguageModel model(last.info.config, rng);
    nn::AdamW optimizer(model.parameters(), {});
    const nn::Matrix before = model.parameters()[0]->value;
    last.restore(model, &optimizer);
    CHECK(model.parameters()[0]->value != before);
    test::ScratchDir dir;
    save_checkpoint(dir / "copy.ckpt", last.info, model, optimizer);
    CHECK(nn::read_file(dir / "copy.ckpt") == nn::read_file(run.ckpt() / "last.ckpt"));
}

TEST_CASE("06-gpt sample writes text from a checkpoint, the same with and without the cache", "[06-gpt][run]") {
    const std::string args = "sample --checkpoint " + trained().ckpt().string() +
                             " --prompt 'ROMEO:' --max-new-tokens 40 --num-samples 2 --seed 3";
    const auto cached = test::run_lesson("06-gpt", args);
    INFO(cached.output);
    REQUIRE(cached.status == 0);
    CHECK_THAT(cached.output, Contains("--- sample 2 ---"));
    CHECK_THAT(cached.output, Contains("tokens/s (key/value cache)"));
    const auto uncached = test::run_lesson("06-gpt", args + " --no-cache");
    REQUIRE(uncached.status == 0);
    CHECK_THAT(uncached.output, Contains("tokens/s (no cache)"));
    auto text = [](const std::string& out) { return out.substr(out.find("ROMEO:"), out.find(" tokens in") - out.find("ROMEO:")); };
    CHECK(text(cached.output) == text(uncached.output));
    // A prompt character outside the vocabulary is refused, naming it.
    const auto bad = test::run_lesson("06-gpt", "sample --checkpoint " + trained().ckpt().string() + " --prompt 'a~b'");
    CHECK(bad.status == 2);
    CHECK_THAT(bad.output, Contains("outside the vocabulary") && Contains("'~'"));
}

TEST_CASE("06-gpt refuses crafted checkpoints whose checksum is right, before allocating what they claim",
          "[06-gpt][run]") {
    CheckpointCopy copy;
    auto sample = [&](std::string bytes) {
        copy.rewrite(nn::reseal_container(std::move(bytes)));
        const auto r = test::run_command(test::memory_capped(std::string(NN2GPT_BIN_DIR) +
                                                             "/06-gpt sample --max-new-tokens 5 --checkpoint " +
                                                             copy.file.string()));
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, !Contains("out of memory"));
        return r.output;
    };
    const std::size_t vocabulary = setting_offset("");
    std::uint64_t vocab_bytes;
    std::memcpy(&vocab_bytes, copy.bytes.data() + vocabulary, 8);
    const std::size_t step = vocabulary + 8 + vocab_bytes;
    SECTION("the unchanged copy samples, so the cases below fail for their own fault") {
        copy.rewrite(nn::reseal_container(copy.bytes));
        const auto r = test::run_lesson("06-gpt", "sample --max-new-tokens 5 --checkpoint " + copy.file.string());
        CHECK(r.status == 0);
    }
    SECTION("settings whose model would take terabytes") {
        poke<std::int32_t>(copy.bytes, setting_offset("--n-layer"), 256);
        poke<std::int32_t>(copy.bytes, setting_offset("--n-embd"), 16384);
        poke<std::int32_t>(copy.bytes, setting_offset("--n-head"), 1);
        CHECK_THAT(sample(copy.bytes), Contains("where the weights of a model with those settings take"));
    }
    SECTION("a score that does not exist") {
        poke<std::int32_t>(copy.bytes, setting_offset("--score"), 7);
        CHECK_THAT(sample(copy.bytes), Contains("corrupt setting --score"));
    }
    SECTION("a setting beyond the command line's bound") {
        poke<std::int32_t>(copy.bytes, setting_offset("--eval-iters"), 2147483647);
        CHECK_THAT(sample(copy.bytes), Contains("holds --eval-iters 2147483647, which the command line refuses"));
    }
    SECTION("a negative step, and a step past --max-iters") {
        poke<std::int64_t>(copy.bytes, step, -5);
        CHECK_THAT(sample(copy.bytes), Contains("step -5 is outside [0, --max-iters 60]"));
        poke<std::int64_t>(copy.bytes, step, std::int64_t{1} << 62);
        CHECK_THAT(sample(copy.bytes), Contains("is outside [0, --max-iters 60]"));
    }
    SECTION("a vocabulary holding one character twice") {
        copy.bytes[vocabulary + 8 + 1] = copy.bytes[vocabulary + 8];
        CHECK_THAT(sample(copy.bytes), Contains("the vocabulary holds a character twice"));
    }
    SECTION("a tensor whose header claims 2^32 values") {
        // Past the step and best loss: two generator states, the loss history
        // (20-byte records), the parameter count, then the first tensor's rows,
        // cols and value count (see checkpoint.hpp).
        std::size_t at = step + 8 + 4;
        for (int s = 0; s < 2; ++s) {
            std::uint64_t n;
            std::memcpy(&n, copy.bytes.data() + at, 8);
            at += 8 + n;
        }
        std::uint64_t records;
        std::memcpy(&records, copy.bytes.data() + at, 8);
        poke<std::uint64_t>(copy.bytes, at + 8 + records * 20 + 8 + 16, std::uint64_t{1} << 32);
        CHECK_THAT(sample(copy.bytes), Contains("holds 4294967296 values where"));
    }
}

TEST_CASE("06-gpt refuses corrupt, truncated, foreign, wrong-version and mismatched checkpoints", "[06-gpt][run]") {
    CheckpointCopy copy;
    SECTION("the copy itself resumes") {
        const auto s = copy.resume();
        INFO(s.output);
        CHECK(s.status == 0);
    }
    // The copy rewritten as `bytes` and resumed: refused with exit status 2; what it printed.
    auto refused = [&](const std::string& bytes) {
        copy.rewrite(bytes);
        const auto s = copy.resume();
        CHECK(s.status == 2);
        return s.output;
    };
    SECTION("flipped bit") {
        copy.bytes[copy.bytes.size() / 2] ^= 0x01;
        CHECK_THAT(refused(copy.bytes), Contains("checksum mismatch"));
    }
    SECTION("truncated") {
        CHECK_THAT(refused(copy.bytes.substr(0, copy.bytes.size() - 100)), Contains("truncated"));
    }
    SECTION("wrong version") {
        copy.bytes[8] = 9;
        CHECK_THAT(refused(copy.bytes), Contains("format version 9"));
    }
    SECTION("a checkpoint of the format before --score joined the settings") {
        copy.bytes[8] = 3;
        CHECK_THAT(refused(copy.bytes), Contains("format version 3, but this program reads version 4"));
    }
    SECTION("not a checkpoint") {
        CHECK_THAT(refused("hello, world, this is not a checkpoint file at all"), Contains("wrong magic"));
    }
    SECTION("other settings") {
        const auto s = copy.resume(" --dropout 0.1");
        INFO(s.output);
        CHECK(s.status == 2);
        CHECK_THAT(s.output, Contains("--dropout 0 (this run: 0.1)"));
    }
    SECTION("sampling from a damaged file") {
        copy.bytes[copy.bytes.size() - 1] ^= 0x40;
        copy.rewrite(copy.bytes);
        const auto s = test::run_lesson("06-gpt", "sample --checkpoint " + copy.file.string());
        CHECK(s.status == 2);
        CHECK_THAT(s.output, Contains("checksum"));
    }
}

TEST_CASE("06-gpt names the checkpoint and the cause of every refusal; eval and sample ignore the generators",
          "[06-gpt][run]") {
    CheckpointCopy copy;
    const std::string name = copy.file.string();
    const std::size_t vocabulary = setting_offset("");
    std::uint64_t vocab_bytes;
    std::memcpy(&vocab_bytes, copy.bytes.data() + vocabulary, 8);
    const std::size_t best = vocabulary + 8 + vocab_bytes + 8, rng = best + 4;  // the batch generator's string
    std::uint64_t rng_bytes;
    std::memcpy(&rng_bytes, copy.bytes.data() + rng, 8);
    const std::size_t dropout = rng + 8 + rng_bytes;
    std::uint64_t dropout_bytes;
    std::memcpy(&dropout_bytes, copy.bytes.data() + dropout, 8);
    // The checkpoint with the string at `at` replaced, length and checksum made right.
    auto with_string = [&](std::size_t at, std::uint64_t old_size, const std::string& text) {
        std::string b = copy.bytes.substr(0, at);
        const std::uint64_t n = text.size();
        b.append(reinterpret_cast<const char*>(&n), 8).append(text).append(copy.bytes.substr(at + 8 + old_size));
        return nn::reseal_container(b);
    };
    auto refused = [&](const test::RunResult& r, const std::string& message) {
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains(name + ": " + message));
    };
    const std::string eval = "eval --text " + (copy.dir / "text.txt").string() + " --checkpoint " + name;
    test::write_text(copy.dir / "text.txt", "First Citizen:\nBefore we proceed any further, hear me speak.\n");
    SECTION("a batch generator's state that is not one") {
        copy.rewrite(with_string(rng, rng_bytes, "12 34 not a generator"));
        refused(copy.resume(), "corrupt random-number state");
    }
    SECTION("an all-zero generator, which would draw the same batch forever") {
        std::string zero;
        for (std::size_t i = 0; i < std::mt19937_64::state_size; ++i) zero += "0 ";
        copy.rewrite(with_string(rng, rng_bytes, zero + "312 0 0x0p+0"));
        refused(copy.resume(), "corrupt random-number state (all zero");
    }
    SECTION("a dropout generator's state that is not one: resuming refuses it, eval and sample never use it") {
        copy.rewrite(with_string(dropout, dropout_bytes, "garbage"));
        refused(copy.resume(), "corrupt random-number state");
        const auto e = test::run_lesson("06-gpt", eval);
        INFO(e.output);
        CHECK(e.status == 0);
        CHECK_THAT(e.output, Contains("mean cross-entropy"));
        const auto s = test::run_lesson("06-gpt", "sample --max-new-tokens 5 --checkpoint " + name);
        CHECK(s.status == 0);
    }
    SECTION("a NaN or negative best validation loss") {
        for (float bad : {NAN, -1.0f}) {
            poke<float>(copy.bytes, best, bad);
            copy.rewrite(nn::reseal_container(copy.bytes));
            refused(test::run_lesson("06-gpt", eval), "corrupt best validation loss");
        }
    }
    SECTION("cut to 8-23 bytes: its magic number is right, it is truncated") {
        for (std::size_t size : {8, 12, 20, 23}) {
            copy.rewrite(copy.bytes.substr(0, size));
            refused(copy.resume(), "truncated (" + std::to_string(size) + " bytes");
        }
    }
    SECTION("other settings") {
        const auto r = copy.resume(" --dropout 0.1");
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains(name + " was trained with other settings"));
    }
    SECTION("a text too short for the context") {
        test::ScratchDir data;
        test::write_text(data / "tinyshakespeare.txt", std::string(79, 'a') + "\n");  // val: 8 characters
        const auto r = test::run_lesson("06-gpt", "--data " + data.path.string() + kSmall);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains((data / "tinyshakespeare.txt").string() +
                                      ": its validation split has 8 characters, too few for a context of 16"));
    }
}

TEST_CASE("06-gpt's default model trains to the same weights, bit for bit, with 1 thread and with 2", "[06-gpt][run]") {
    // The default sizes, where the products, LayerNorm, attention and the
    // column sums are shared between threads (the small model above is not).
    test::ScratchDir dir;
    auto train = [&](int threads) {
        const std::string out = (dir / std::to_string(threads)).string();
        const auto r = test::run_lesson("06-gpt", "--data " + test::shakespeare_dir() + " --threads " +
                                                      std::to_string(threads) +
                                                      " --max-iters 3 --eval-interval 3 --eval-iters 1 --max-new-tokens 0"
                                                      " --dropout 0.1 --out " + out);
        INFO(r.output);
        REQUIRE(r.status == 0);
        return weights(std::filesystem::path(out) / "last.ckpt");
    };
    CHECK(train(1) == train(2));
}

TEST_CASE("06-gpt --resume gives the same losses as a run that was never interrupted", "[06-gpt][run]") {
    test::ScratchDir dir;
    // Two threads: the results must not depend on how the work was split.
    const std::string common = run_args("--threads 2 --max-iters 40 --eval-interval 10 --max-new-tokens 0 --dropout 0.1");
    const auto whole = test::run_lesson("06-gpt", common + " --out " + (dir / "a").string());
    REQUIRE(whole.status == 0);
    // Stopped after 25 steps (between two estimates), then resumed.
    const auto first = test::run_lesson("06-gpt", common + " --stop-at 25 --out " + (dir / "b").string());
    REQUIRE(first.status == 0);
    const auto second = test::run_lesson("06-gpt", common + " --resume " + (dir / "b").string());
    INFO(first.output << second.output);
    REQUIRE(second.status == 0);
    CHECK_THAT(second.output, Contains("resumed from"));
    const auto a = loss_lines(whole.output), b1 = loss_lines(first.output), b2 = loss_lines(second.output);
    REQUIRE(a.size() == 5);
    REQUIRE(b1.size() == 3);
    REQUIRE(b2.size() == 2);
    CHECK(b1[0] == a[0]);
    CHECK(b1[2] == a[2]);
    CHECK(b2[0] == a[3]);
    CHECK(b2[1] == a[4]);
    // And the final weights are the same, bit for bit.
    CHECK(weights(dir / "a" / "last.ckpt") == weights(dir / "b" / "last.ckpt"));
    // Stopping before the checkpoint's step is refused, and leaves it alone.
    const auto back = test::run_lesson("06-gpt", common + " --resume " + (dir / "b").string() + " --stop-at 20");
    CHECK(back.status == 2);
    CHECK_THAT(back.output, Contains("--stop-at 20 is not after step 40"));
    CHECK(CheckpointReader(dir / "b" / "last.ckpt").info.step == 40);
}

TEST_CASE("06-gpt refuses impossible settings with exit status 2", "[06-gpt][run]") {
    for (const std::string args : {"--n-embd 30 --n-head 4", "--dropout 1", "--min-lr 0.1", "--stop-at 999 --max-iters 10",
                                   "--preset nonsense", "--batch-size 0"}) {
        DYNAMIC_SECTION(args) {
            const auto r = test::run_lesson("06-gpt", "--data " + test::shakespeare_dir() + " --threads 1 " + args);
            CHECK(r.status == 2);
            CHECK_THAT(r.output, Contains("error"));
        }
    }
    const auto r = test::run_lesson("06-gpt", "--data " + test::shakespeare_dir() + " --block-size 64 --n-embd 30 --n-head 4");
    CHECK_THAT(r.output, Contains("multiple of --n-head"));
    // Output paths that cannot be written are refused before training, not after.
    test::ScratchDir dir;
    std::ofstream(dir / "a-file") << "x";
    const std::vector<std::pair<std::string, std::string>> paths{
        {"--out " + (dir / "a-file").string(), "a-file: cannot make it a directory (it is a file)"},
        {"--plot " + (dir / "no-such-dir" / "loss.png").string(), "no-such-dir/loss.png: No such file or directory"},
        {"--block-size 200000", "--block-size: must be a whole number in [1, 8192], not 200000"},
        {"--n-layer 256 --n-embd 16384 --n-head 1",
         "a model of 824690393088 parameters trained on batches of 12 x 64 characters would need"}};
    for (const auto& [args, message] : paths) {
        const auto p = test::run_lesson("06-gpt", "--data " + test::shakespeare_dir() + " --threads 1 " + args);
        INFO(args << "\n" << p.output);
        CHECK(p.status == 2);
        CHECK_THAT(p.output, Contains(message));
        CHECK_THAT(p.output, !Contains("step 0:"));
    }
}

TEST_CASE("06-gpt refuses up front what cannot fit: the (B, nh, T, T) attention weights", "[06-gpt][run]") {
    // One attention matrix alone is 16 x 16 x 8192 x 8192 floats, 68.7 GB.
    test::check_refuses_what_cannot_fit("06-gpt", "--data " + test::shakespeare_dir() +
                                                      " --batch-size 16 --block-size 8192 --n-head 16 --n-embd 64 --n-layer 1",
                                        "trained on batches of 16 x 8192 characters");
}

TEST_CASE("06-gpt --preset lecture builds the lecture's model", "[06-gpt][run]") {
    const auto r = test::run_lesson("06-gpt", "--data " + test::shakespeare_dir() +
                                                  " --threads 1 --preset lecture --max-iters 1 --eval-iters 1 --batch-size 2 --max-new-tokens 5");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("C = 384 (n_embd), nh = 6 (heads), hs = 64"));
    CHECK_THAT(r.output, Contains("6 x Block"));
    CHECK_THAT(r.output, Contains("(B*T, 4C)"));
}

TEST_CASE("06-gpt: --help lists every setting of the table with its default", "[06-gpt][run]") {
    test::check_help("06-gpt", {"--n-layer", "--dropout", "--no-residual", "--no-layernorm", "--no-proj", "--activation",
                                "gelu", "--ffwd-mult", "--no-tie", "--lr-schedule", "cosine", "--seed", "1337",
                                "sample", "--preset"});
}

TEST_CASE("06-gpt: bad input is one line and exit status 2", "[06-gpt][run]") {
    test::check_refuses_bad_input("06-gpt");
    const auto r = test::run_lesson("06-gpt", "--activation swish");
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("--activation"));
    const auto p = test::run_lesson("06-gpt", run_args("--no-proj"));
    CHECK(p.status == 2);
    CHECK_THAT(p.output, Contains("--no-proj needs --ffwd-mult 1"));
}

TEST_CASE("06-gpt: a short run of each switch prints its shapes and learns", "[06-gpt][run]") {
    const std::vector<std::pair<std::string, std::string>> switches{
        {"--no-residual", "x = proj(out)"},
        {"--no-layernorm", "h = gelu(fc(x))"},
        {"--activation relu", "h = relu(fc(ln2(x)))"},
        {"--ffwd-mult 2", "(B*T, 2C)"},
        {"--no-tie", "its own (V, C) matrix"},
        {"--lr-schedule constant", "x = x + proj(h)"},
        {"--init pytorch", "x = x + proj(h)"},
        {"--no-proj --ffwd-mult 1", "(B*T, 1C)"},
        {"--score squared-elements", "wei = softmax(mask(q^2 (k^2)^T / sqrt(6) / sqrt(hs)))"},
        {"--score inverse-distance", "(T, hs) each: the inverse-distance score's backward"},
    };
    for (const auto& [flags, shape] : switches) {
        DYNAMIC_SECTION(flags) {
            const auto r = test::run_lesson("06-gpt", run_args("--threads 1 --max-iters 60 --eval-interval 30 --max-new-tokens 10 " + flags));
            INFO(r.output);
            REQUIRE(r.status == 0);
            CHECK_THAT(r.output, Contains(shape));
            const auto lines = loss_lines(r.output);
            REQUIRE(lines.size() == 3);
            CHECK(val_loss(lines[2]) < val_loss(lines[0]) - 0.3f);
        }
    }
    // --no-layernorm leaves out the LayerNorm lines, and their parameters.
    const auto full = test::run_lesson("06-gpt", run_args("--max-iters 0 --max-new-tokens 0"));
    const auto bare = test::run_lesson("06-gpt", run_args("--max-iters 0 --max-new-tokens 0 --no-layernorm"));
    CHECK_THAT(full.output, Contains("ln1(x)"));
    // The backward's shapes: the attention's, per (sequence, head), and the gradients of the parameters.
    CHECK_THAT(full.output, Contains("backward, from the loss to the embeddings:") &&
                                Contains("ds = wei * (dwei - rowsum(dwei * wei))") &&
                                Contains("(B*T, 3C): every head's dq, dk, dv in its columns") &&
                                Contains("d c_attn.weight") && Contains("d position_embedding_table"));
    CHECK_THAT(bare.output, !Contains("ln1(x)"));
}

TEST_CASE("06-gpt sample --attention-map draws every head and measures where it looks", "[06-gpt][run]") {
    test::ScratchDir dir;
    const std::string ckpt = trained().ckpt().string();
    const auto r = test::run_lesson("06-gpt", "sample --checkpoint " + ckpt + " --prompt 'ROMEO:\nBut soft' --max-new-tokens 5 "
                                              "--attention-map " + (dir / "map.png").string());
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("where each head looks") && Contains("word's space") && Contains("2, 2"));
    CHECK_THAT(r.output, Contains("wrote the attention maps of 2 layers x 2 heads"));
    // A PNG: its signature, and an IHDR chunk of a picture wider than its 2 x 2 grid of 14 x 14 cells.
    const std::string png = nn::read_file(dir / "map.png");
    REQUIRE(png.size() > 24);
    CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    CHECK(png.substr(12, 4) == "IHDR");
    const auto width = (static_cast<unsigned char>(png[18]) << 8) | static_cast<unsigned char>(png[19]);
    CHECK(width > 2 * 14 * 12);
    // The model's context is 16 characters: a longer prompt has no map; nor has a character outside the vocabulary.
    const auto long_prompt = test::run_lesson("06-gpt", "sample --checkpoint " + ckpt + " --prompt 'ROMEO: But soft, what light' "
                                                        "--attention-map " + (dir / "x.png").string());
    CHECK(long_prompt.status == 2);
    CHECK_THAT(long_prompt.output, Contains("the prompt has 27 characters, more than the model's context of 16"));
    const auto bad = test::run_lesson("06-gpt", "sample --checkpoint " + ckpt + " --prompt 'a~b' --attention-map " +
                                                (dir / "y.png").string());
    CHECK(bad.status == 2);
    CHECK_THAT(bad.output, Contains("outside the vocabulary"));
    CHECK_FALSE(std::filesystem::exists(dir / "x.png"));
    CHECK_FALSE(std::filesystem::exists(dir / "y.png"));
}

TEST_CASE("06-gpt --score is saved with the model: sample, eval and --attention-map use it, --resume holds to it",
          "[06-gpt][run]") {
    test::ScratchDir dir;
    const std::string ckpt = (dir / "ckpt").string();
    const auto r = test::run_lesson("06-gpt", run_args("--threads 1 --max-iters 30 --eval-interval 30 --max-new-tokens 0 "
                                                       "--score inverse-distance --out " + ckpt));
    INFO(r.output);
    REQUIRE(r.status == 0);
    // eval reads the saved score: its loss on one window is this model's with inverse-distance, not with dot.
    const std::string text = "ROMEO:\nWhat light";  // 17 characters: one window of 16 predictions
    std::ofstream(dir / "w.txt", std::ios::binary) << text;
    const auto eval = test::run_lesson("06-gpt", "eval --checkpoint " + (dir / "ckpt" / "last.ckpt").string() +
                                                 " --text " + (dir / "w.txt").string());
    INFO(eval.output);
    REQUIRE(eval.status == 0);
    std::smatch m;
    REQUIRE(std::regex_search(eval.output, m, std::regex(R"(mean cross-entropy ([0-9.]+))")));
    auto loss_with = [&](std::optional<Score> score) {
        CheckpointReader reader(dir / "ckpt" / "last.ckpt");
        Config c = reader.info.config;
        CHECK(c.score == Score::inverse_distance);
        if (score) c.score = *score;
        nn::Rng init(0);
        GPTLanguageModel model(c, init);
        reader.restore(model, nullptr);
        model.train(false);
        const nn::Vocabulary vocab(nn::decode_utf8(reader.info.vocabulary));
        const std::vector<int> tokens = vocab.encode(text, "a test");
        nn::Batch batch{1, 16, std::vector<int>(tokens.begin(), tokens.end() - 1), std::vector<int>(tokens.begin() + 1, tokens.end())};
        return model.loss(batch);
    };
    CHECK(std::stod(m[1]) == Approx(loss_with(std::nullopt)).epsilon(1e-5));
    CHECK(std::abs(std::stod(m[1]) - loss_with(Score::dot)) > 1e-3);
    const auto map = test::run_lesson("06-gpt", "sample --checkpoint " + (dir / "ckpt" / "last.ckpt").string() +
                                                 " --prompt 'ROMEO:' --max-new-tokens 5 --attention-map " +
                                                 (dir / "map.png").string());
    INFO(map.output);
    CHECK(map.status == 0);
    CHECK(std::filesystem::exists(dir / "map.png"));
    CHECK_THAT(map.output, Contains("context 16, score inverse-distance"));
    const auto other = test::run_lesson("06-gpt", run_args("--threads 1 --max-iters 60 --eval-interval 30 --max-new-tokens 0 "
                                                           "--resume " + ckpt));
    CHECK(other.status == 2);
    CHECK_THAT(other.output, Contains("--score inverse-distance (this run: dot)"));
}

TEST_CASE("06-gpt eval gives the mean cross-entropy over consecutive windows, whatever the batch", "[06-gpt][run]") {
    const auto ckpt = trained().ckpt();
    // The loss of one window computed here, with the model read from the same file.
    CheckpointReader reader(ckpt / "best.ckpt");
    const nn::Vocabulary vocab(nn::decode_utf8(reader.info.vocabulary));
    nn::Rng rng(0);
    GPTLanguageModel model(reader.info.config, rng);
    reader.restore(model, nullptr);
    model.train(false);
    const int T = reader.info.config.block_size;
    const std::string text = "First Citizen:\nBefore we proceed any further";  // more than T + 1 characters
    const std::vector<int> tokens = vocab.encode(text);
    REQUIRE(tokens.size() > static_cast<std::size_t>(T) + 1);
    auto window_sum = [&](std::size_t at, int t) {
        nn::Batch b{1, t, {tokens.begin() + at, tokens.begin() + at + t}, {tokens.begin() + at + 1, tokens.begin() + at + t + 1}};
        return model.loss(b) * t;
    };
    const std::size_t predictions = tokens.size() - 1, rest = predictions % T;
    double sum = 0;
    for (std::size_t at = 0; at + T <= predictions; at += T) sum += window_sum(at, T);
    if (rest > 0) sum += window_sum(predictions - rest, static_cast<int>(rest));
    test::ScratchDir dir;
    std::ofstream(dir / "t.txt") << text;
    auto eval_loss = [&](const std::string& args) {
        const auto r = test::run_lesson("06-gpt", "eval --checkpoint " + ckpt.string() + " " + args);
        INFO(r.output);
        REQUIRE(r.status == 0);
        const auto at = r.output.find("mean cross-entropy ");
        REQUIRE(at != std::string::npos);
        return std::stod(r.output.substr(at + 19));
    };
    CHECK(eval_loss("--text " + (dir / "t.txt").string()) == Approx(sum / predictions).epsilon(1e-5));
    const std::string data = " --data " + test::shakespeare_dir();
    CHECK(eval_loss(data + " --batch-size 1") == Approx(eval_loss(data + " --batch-size 64")).epsilon(1e-5));

    std::ofstream(dir / "cafe.txt") << "caf\xc3\xa9";
    const auto r = test::run_lesson("06-gpt", "eval --checkpoint " + ckpt.string() + " --text " + (dir / "cafe.txt").string());
    CHECK(r.status == 2);
    CHECK_THAT(r.output, Contains("1 character outside the vocabulary: '\xc3\xa9'"));
}

TEST_CASE("06-gpt --summary-json: the figures it printed, as one JSON line the benchmarks read", "[06-gpt][run]") {
    test::ScratchDir dir;
    const std::string path = (dir / "summary.json").string();
    const auto r = test::run_lesson("06-gpt", run_args("--threads 1 --max-iters 20 --eval-interval 10 --max-new-tokens 0 "
                                                       "--summary-json " + path));
    INFO(r.output);
    REQUIRE(r.status == 0);
    const std::string json = nn::read_file(path);
    INFO(json);
    CHECK(std::count(json.begin(), json.end(), '\n') == 1);
    auto field = [&](const std::string& key) {
        const auto at = json.find("\"" + key + "\": ");
        REQUIRE(at != std::string::npos);
        return std::stod(json.substr(at + key.size() + 4));
    };
    CHECK(field("steps") == 20);
    CHECK(field("threads") == 1);
    CHECK(field("ms_per_step_median") > 0);
    CHECK(field("peak_memory_mb") > 0);
    CHECK(field("seconds") >= field("eval_seconds"));
    // The last estimate's losses, as printed to 4 decimals.
    std::smatch m;
    REQUIRE(std::regex_search(r.output, m, std::regex("step 20: train loss ([0-9.]+), val loss ([0-9.]+)")));
    CHECK(field("train_loss") == Approx(std::stod(m[1].str())).margin(5e-5));
    CHECK(field("val_loss") == Approx(std::stod(m[2].str())).margin(5e-5));
    // A path that cannot be written is refused before the run.
    const auto bad = test::run_lesson("06-gpt", run_args("--max-iters 20 --summary-json " +
                                                         (dir / "no-such-dir" / "s.json").string()));
    CHECK(bad.status == 2);
    CHECK_THAT(bad.output, Contains("no-such-dir/s.json: No such file or directory"));
    CHECK_THAT(bad.output, !Contains("step 0:"));
}

TEST_CASE("06-gpt --text trains on lines of the user's, and complete writes each line's rest greedily", "[06-gpt][run]") {
    test::ScratchDir dir;
    // A text of translations, one "english = spanish" line each.
    std::string train, val;
    const char* nouns[][2] = {{"cat", "gato"}, {"dog", "perro"}, {"house", "casa"}, {"tree", "árbol"}};
    for (int k = 0; k < 60; ++k)
        for (const auto& n : nouns) (k < 50 ? train : val) += fmt::format("the {} = el {}\n", n[0], n[1]);
    test::write_text(dir / "train.txt", train);
    test::write_text(dir / "val.txt", val);
    const std::string ckpt = (dir / "ckpt").string();
    const test::RunResult r = test::run_lesson(
        "06-gpt", "--text " + (dir / "train.txt").string() + " --val-text " + (dir / "val.txt").string() + kSmall +
                      " --threads 1 --max-iters 150 --eval-interval 75 --max-new-tokens 0 --out " + ckpt);
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.output, Contains("vocabulary, V = 18: \\n =abcdeghloprstuá"));
    CHECK_THAT(r.output, Contains(fmt::format("train: the {} tokens of", nn::decode_utf8(train).size())));
    CHECK_THAT(r.output, Contains(fmt::format("val: the {} of", nn::decode_utf8(val).size())));
    const std::vector<std::string> losses = loss_lines(r.output);
    REQUIRE(losses.size() == 3);
    CHECK(val_loss(losses.back()) < 0.5 * val_loss(losses.front()));
    // Prompts: a line with its " = " (the rest ignored), one without (the whole line is the source).
    test::write_text(dir / "prompts.txt", "the cat = ignored\n\nthe tree\r\n");
    const test::RunResult c = test::run_lesson("06-gpt", "complete --checkpoint " + ckpt + " --prompts " +
                                                             (dir / "prompts.txt").string() + " --max-new-tokens 30");
    INFO(c.output);
    REQUIRE(c.status == 0);
    static const std::regex lines(R"(^the cat\t[^\n\t]*\nthe tree\t[^\n\t]*\n2 lines completed greedily in )");
    CHECK(std::regex_search(c.output, lines));
    // Greedy: the same output twice.
    const test::RunResult again = test::run_lesson("06-gpt", "complete --checkpoint " + ckpt + " --prompts " +
                                                                 (dir / "prompts.txt").string() + " --max-new-tokens 30");
    CHECK(again.output.substr(0, again.output.find("lines completed")) == c.output.substr(0, c.output.find("lines completed")));
    // Refused in one line with status 2: characters outside the vocabulary, a prompt longer than the context,
    // an empty file; --val-text without --text, or with characters --text does not have.
    test::write_text(dir / "bad.txt", "the cat = el gato\nthe bird§ = \n");
    test::write_text(dir / "long.txt", "the cat the cat the cat = el\n");
    test::write_text(dir / "empty.txt", "\n\n");
    test::write_text(dir / "val2.txt", "the bird = el pájaro\n");
    const std::pair<std::string, std::string> refused[] = {
        {"complete --checkpoint " + ckpt + " --prompts " + (dir / "bad.txt").string(), "line 2"},
        {"complete --checkpoint " + ckpt + " --prompts " + (dir / "long.txt").string(),
         "the prompt has 27 characters, more than the model's context of 16"},
        {"complete --checkpoint " + ckpt + " --prompts " + (dir / "empty.txt").string(), "holds no lines to complete"},
        {"--val-text " + (dir / "val.txt").string() + kSmall, "--val-text needs --text"},
        {"--text " + (dir / "train.txt").string() + " --val-text " + (dir / "val2.txt").string() + kSmall, "val2.txt"},
    };
    for (const auto& [args, message] : refused) {
        const test::RunResult bad = test::run_lesson("06-gpt", args);
        INFO(args << "\n" << bad.output);
        CHECK(bad.status == 2);
        CHECK_THAT(bad.output, Contains(message));
        CHECK(std::count(bad.output.begin(), bad.output.end(), '\n') == 1);
    }
}
