// 08-data-parallel as a program, on 1 and 2 ranks over loopback: the same
// loss lines as one process and as gradient accumulation, identical weights
// on every rank, a killed rank that stops the run without a hang and leaves
// complete checkpoints (which resume on another number of ranks), and bad
// input reported once, also when only one rank is given it (a bad flag, other
// settings). Every mpirun runs under `timeout 120`.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include <cmath>
#include <regex>
#include <sstream>
#include <utility>

#include "08-data-parallel/checkpoint.hpp"
#include "common/fileio.hpp"  // reseal_container: a crafted payload past the checksum
#include "lm_helpers.hpp"

namespace {
using Catch::Matchers::Contains;

const std::string kLesson = "08-data-parallel";

// A model small enough that 100 steps take about a second. lr 3e-3 and not
// 1e-2: at 1e-2 this tiny model's AdamW steps amplify float rounding (the
// order of a sum) to 1e-2 in the loss within 100 steps, in 06 as in 08.
std::string small(const std::string& extra, int batch_size = 8, int max_iters = 100) {
    return "--data " + test::shakespeare_dir() +
           " --threads 1 --n-layer 2 --n-head 2 --n-embd 16 --block-size 16 --eval-iters 4 --lr 3e-3"
           " --warmup-iters 10 --eval-interval 20 --max-new-tokens 0 --batch-size " + std::to_string(batch_size) +
           " --max-iters " + std::to_string(max_iters) + " " + extra;
}

const std::string kBin = std::string(NN2GPT_BIN_DIR) + "/" + kLesson;

// mpirun under a timeout, so that a rank that hangs cannot hang the suite. As
// root, mpirun needs to be told; --oversubscribe: more ranks than cores is fine.
// Under the sanitizer preset, 08's processes (not this test program) run
// without leak detection: Open MPI's plugins, loaded with dlopen and unloaded
// before exit, leave allocations LeakSanitizer can neither free nor name.
// Every other AddressSanitizer and UBSan check stays on for them, and 06's
// tests check the same model code with leak detection on. Set before any test
// starts a process; -x passes it on to the ranks.
const bool kNoLeakCheckInChildren = ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1) == 0;

std::string mpirun() {
    return std::string("timeout 120 mpirun") + (::geteuid() == 0 ? " --allow-run-as-root" : "") +
           " --oversubscribe -x ASAN_OPTIONS=detect_leaks=0";
}

// The lesson on `ranks` processes; `env` is prefixed to the command (VAR=value ...).
test::RunResult run_mpi(int ranks, const std::string& args, const std::string& env = "") {
    return test::run_command(env + " " + mpirun() + " -np " + std::to_string(ranks) + " " + kBin + " " + args);
}

// Rank 0 with `args0`, rank 1 with `args1`: mpirun's MPMD form, which gives
// each rank its own command line.
test::RunResult run_two(const std::string& args0, const std::string& args1) {
    return test::run_command(mpirun() + " -np 1 " + kBin + " " + args0 + " : -np 1 " + kBin + " " + args1);
}

struct LossLine {
    int step;
    double train, val;
};
std::vector<LossLine> loss_lines(const std::string& output) {
    static const std::regex line(R"(step (\d+): train loss ([0-9.]+), val loss ([0-9.]+))");
    std::vector<LossLine> out;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), line); it != std::sregex_iterator(); ++it)
        out.push_back({std::stoi((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3])});
    return out;
}

// Every line of `b` is the line of `a` at the same step, within `tolerance`.
void check_same_losses(const std::vector<LossLine>& a, const std::vector<LossLine>& b, double tolerance = 1e-3) {
    REQUIRE(!b.empty());
    for (const LossLine& l : b) {
        const auto at = std::find_if(a.begin(), a.end(), [&](const LossLine& x) { return x.step == l.step; });
        INFO("step " << l.step);
        REQUIRE(at != a.end());
        CHECK(std::abs(at->train - l.train) <= tolerance);
        CHECK(std::abs(at->val - l.val) <= tolerance);
    }
}

// The checksums of the line "weights checksum per rank: c0 c1 ... (identical)".
std::vector<std::string> checksums(const std::string& output) {
    const auto at = output.find("weights checksum per rank:");
    std::vector<std::string> out;
    if (at == std::string::npos) return out;
    static const std::regex hex("[0-9a-f]{16}");
    const std::string line = output.substr(at, output.find('\n', at) - at);
    for (auto it = std::sregex_iterator(line.begin(), line.end(), hex); it != std::sregex_iterator(); ++it)
        out.push_back(it->str());
    return out;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// The 2-rank run the tests below compare against, with dropout on (each
// sequence's masks are seeded by the step and its place in the global batch).
const test::RunResult& two_ranks() {
    static const test::RunResult r = run_mpi(2, small("--dropout 0.1"));
    return r;
}

}  // namespace

TEST_CASE("08-data-parallel: 2 ranks, 1 process and --grad-accum 2 print the same losses", "[08-data-parallel][run]") {
    const test::RunResult& two = two_ranks();
    INFO(two.output);
    REQUIRE(two.status == 0);
    CHECK_THAT(two.output, Contains("2 ranks x 1 micro-batch (--grad-accum) x 4 sequences"));
    const test::RunResult one = run_mpi(1, small("--dropout 0.1"));
    const test::RunResult accum = test::run_lesson(kLesson, small("--dropout 0.1 --grad-accum 2"));  // no mpirun
    INFO(one.output << accum.output);
    REQUIRE(one.status == 0);
    REQUIRE(accum.status == 0);
    CHECK_THAT(accum.output, Contains("1 rank x 2 micro-batches (--grad-accum) x 4 sequences"));
    const auto a = loss_lines(one.output), b = loss_lines(two.output), c = loss_lines(accum.output);
    REQUIRE(a.size() == 6);  // steps 0, 20, ..., 100
    REQUIRE(b.size() == a.size());
    REQUIRE(c.size() == a.size());
    check_same_losses(a, b);
    check_same_losses(a, c);
    CHECK(a.back().val < a.front().val - 0.5);  // and they learn
}

TEST_CASE("08-data-parallel: every rank ends with the same weights, bit for bit", "[08-data-parallel][run]") {
    const test::RunResult& two = two_ranks();
    INFO(two.output);
    REQUIRE(two.status == 0);
    // Each rank's checksum of its parameters, gathered on rank 0 and printed.
    const auto sums = checksums(two.output);
    REQUIRE(sums.size() == 2);
    CHECK(sums[0] == sums[1]);
    CHECK_THAT(two.output, Contains("(identical)"));
    CHECK_THAT(two.output, Contains("all-reduce of the gradients:"));
    CHECK(count(two.output, "step 100:") == 1);  // only rank 0 prints
}

TEST_CASE("08-data-parallel with dropout 0 on one rank prints 06's losses exactly, and its eval 06's",
          "[08-data-parallel][run]") {
    test::ScratchDir dir;
    const std::string out06 = (dir / "06").string(), out08 = (dir / "08").string();
    const test::RunResult gpt = test::run_lesson("06-gpt", small("--out " + out06, 8, 40));
    const test::RunResult dp = run_mpi(1, small("--out " + out08, 8, 40));
    INFO(gpt.output << dp.output);
    REQUIRE(gpt.status == 0);
    REQUIRE(dp.status == 0);
    const auto a = loss_lines(gpt.output), b = loss_lines(dp.output);
    REQUIRE(a.size() == 3);
    check_same_losses(a, b, 0.0);
    // The same weights in two checkpoint formats: `eval` (common/eval_command.hpp)
    // reads each with its lesson's reader and gives the same mean cross-entropy.
    const std::string text = (dir / "text.txt").string();
    std::ofstream(text) << "First Citizen:\nBefore we proceed any further, hear me speak.\n";
    const test::RunResult e06 = test::run_lesson("06-gpt", "eval --threads 1 --checkpoint " + out06 + " --text " + text);
    const test::RunResult e08 = test::run_lesson(kLesson, "eval --threads 1 --checkpoint " + out08 + " --text " + text);
    INFO(e06.output << e08.output);
    REQUIRE(e06.status == 0);
    REQUIRE(e08.status == 0);
    const auto mean = [](const std::string& output) {
        const auto at = output.find("mean cross-entropy ");
        return at == std::string::npos ? std::string() : output.substr(at, output.find(' ', at + 19) - at);
    };
    CHECK_FALSE(mean(e06.output).empty());
    CHECK(mean(e06.output) == mean(e08.output));
}

TEST_CASE("08-data-parallel: a killed rank stops the run, leaves complete checkpoints, which resume on 1 rank",
          "[08-data-parallel][run]") {
    test::ScratchDir dir;
    const std::string out = (dir / "ckpt").string();
    // Rank 1 kills itself (SIGKILL) at step 30, after the checkpoints of step 20.
    const test::RunResult killed = run_mpi(2, small("--dropout 0.1 --out " + out), "NN2GPT_KILL_RANK_AT=1:30");
    INFO(killed.output);
    CHECK(killed.status != 0);
    CHECK(killed.status != 124);  // not stopped by the timeout: mpirun ended the job
    CHECK_THAT(killed.output, Contains("step 20:"));
    CHECK_THAT(killed.output, !Contains("step 40:"));
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(out)) files.push_back(entry.path().filename().string());
    std::sort(files.begin(), files.end());
    CHECK(files == std::vector<std::string>{"best.ckpt", "last.ckpt"});  // no .tmp left
    CHECK(CheckpointReader(std::filesystem::path(out) / "last.ckpt").info.step == 20);
    CHECK(CheckpointReader(std::filesystem::path(out) / "best.ckpt").info.step == 20);
    // Resumed by one process with --grad-accum 2, it goes on as the 2-rank run did.
    const test::RunResult resumed = test::run_lesson(kLesson, small("--dropout 0.1 --grad-accum 2 --resume " + out));
    INFO(resumed.output);
    REQUIRE(resumed.status == 0);
    CHECK_THAT(resumed.output, Contains("at step 20 on 1 rank"));
    const auto lines = loss_lines(resumed.output);
    REQUIRE(lines.size() == 4);  // steps 40, 60, 80, 100
    check_same_losses(loss_lines(two_ranks().output), lines);
}

TEST_CASE("08-data-parallel: data a rank cannot read is one line and a non-zero exit", "[08-data-parallel][run]") {
    test::ScratchDir dir;
    const std::string missing = (dir / "nothing").string();
    // Every rank fails alike: the line of 06, printed once, status 2.
    const test::RunResult all = run_mpi(2, "--data " + missing);
    INFO(all.output);
    CHECK(all.status == 2);
    const std::string line = "08-data-parallel: error: cannot open " + missing + "/tinyshakespeare.txt: No such file or directory";
    CHECK(count(all.output, line) == 1);
    // Only rank 1 fails (mpirun's MPMD form gives each rank its own --data): still once, still not 0.
    std::string bad = small("");
    bad.replace(bad.find(test::shakespeare_dir()), test::shakespeare_dir().size(), missing);
    const std::string command = mpirun() + " -np 1 " + kBin + " " + small("") + " : -np 1 " + kBin + " " + bad;
    const test::RunResult one = test::run_command(command);
    INFO(command << "\n" << one.output);
    CHECK(one.status == 2);
    CHECK(count(one.output, line) == 1);
    CHECK_THAT(one.output, !Contains("step 0:"));
}

TEST_CASE("08-data-parallel: ranks given different settings stop before training, naming each setting",
          "[08-data-parallel][run]") {
    const std::string base = small("", 8, 20), fewer = std::regex_replace(base, std::regex("--n-layer 2"), "--n-layer 1");
    // Another model shape: its gradient buffer has another size. Before the
    // check, the all-reduce corrupted memory ("free(): invalid next size").
    const test::RunResult shape = run_two(base, fewer);
    INFO(shape.output);
    CHECK(shape.status == 2);
    CHECK(count(shape.output, "08-data-parallel: error: the ranks were given different settings: --n-layer (rank 0: 2, "
                              "rank 1: 1); mpirun must start every rank with the same ones\n") == 1);
    CHECK(count(shape.output, "error") == 1);  // once, and no rank crashed or aborted the job
    CHECK_THAT(shape.output, !Contains("MPI_ABORT"));
    CHECK_THAT(shape.output, !Contains("step 0:"));
    // Another seed alone: other weights, which used to train to the end, status 0.
    const test::RunResult seed = run_two(base, base + " --seed 2 --weight-decay 0");
    INFO(seed.output);
    CHECK(seed.status == 2);
    CHECK(count(seed.output, "different settings: --weight-decay (rank 0: 0.1, rank 1: 0), --seed (rank 0: 1337, rank 1: 2);") == 1);
    CHECK_THAT(seed.output, !Contains("step 0:"));
    // Another command on rank 1 (it would not train at all).
    const test::RunResult command = run_two(base, "sample --checkpoint nothing");
    INFO(command.output);
    CHECK(command.status == 2);
    CHECK(count(command.output, "different settings: the command (rank 0: training, rank 1: sample);") == 1);
}

TEST_CASE("08-data-parallel: a command line only one rank cannot parse stops every rank, in one line",
          "[08-data-parallel][run]") {
    const std::string base = small("", 8, 20);
    // Rank 1 stopped alone, in silence, and rank 0 waited for it until the timeout.
    const test::RunResult bogus = run_two(base, base + " --bogus");
    INFO(bogus.output);
    CHECK(bogus.status == 2);  // not 124: the timeout
    CHECK(count(bogus.output, "08-data-parallel: error: rank 1: The following argument was not expected: --bogus (see --help)\n") == 1);
    CHECK(count(bogus.output, "error") == 1);
    const test::RunResult help = run_two(base, base + " --help");
    INFO(help.output);
    CHECK(help.status == 2);
    CHECK(count(help.output, "08-data-parallel: error: --help on rank 1 but not on rank 0: mpirun must start every rank "
                             "with the same command line\n") == 1);
    CHECK_THAT(help.output, !Contains("Usage:"));
    // On every rank: each stops alike, rank 0 alone prints.
    const test::RunResult all_bogus = run_mpi(2, base + " --bogus");
    INFO(all_bogus.output);
    CHECK(all_bogus.status == 2);
    CHECK(count(all_bogus.output, "08-data-parallel: error: The following argument was not expected: --bogus (see --help)\n") == 1);
    const test::RunResult all_help = run_mpi(2, "--help");
    INFO(all_help.output);
    CHECK(all_help.status == 0);
    CHECK(count(all_help.output, "Usage: 08-data-parallel") == 1);
}

TEST_CASE("08-data-parallel refuses a global batch that does not split evenly", "[08-data-parallel][run]") {
    const test::RunResult r = run_mpi(2, small("--grad-accum 3"));
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK(count(r.output, "--batch-size 8 does not split into 2 ranks x --grad-accum 3: it must be a multiple of 6") == 1);
    const test::RunResult one = test::run_lesson(kLesson, small("--grad-accum 4", 6));
    CHECK(one.status == 2);
    CHECK_THAT(one.output, Contains("--batch-size 6 does not split into 1 rank x --grad-accum 4: it must be a multiple of 4"));
}

TEST_CASE("08-data-parallel: bad input is one line and exit status 2, and --help lists --grad-accum", "[08-data-parallel][run]") {
    test::check_refuses_bad_input(kLesson);
    test::check_help(kLesson, {"--grad-accum", "--batch-size", "--threads", "sample"});
}

TEST_CASE("08-data-parallel refuses up front what cannot fit: the (B, nh, T, T) attention weights", "[08-data-parallel][run]") {
    test::check_refuses_what_cannot_fit(kLesson, "--data " + test::shakespeare_dir() +
                                                     " --batch-size 16 --block-size 8192 --n-head 16 --n-embd 64 --n-layer 1",
                                        "trained on batches of 16 x 8192 characters");
}

TEST_CASE("08-data-parallel --resume names the checkpoint in each refusal, and refuses impossible state",
          "[08-data-parallel][run]") {
    test::ScratchDir dir;
    const auto first = test::run_lesson(kLesson, small("--out " + (dir / "ckpt").string(), 8, 20));
    REQUIRE(first.status == 0);
    const std::filesystem::path file = dir / "ckpt" / "last.ckpt";
    const std::string name = file.string(), good = nn::read_file(file);
    // Where --grad-accum sits, and where the settings end (checkpoint.hpp's layout).
    std::size_t offset = 20 + 4, grad_accum = 0;
    Config c;
    DataParallelTrainConfig t;
    for_each_setting(c, t, [&](const char* flag, const auto& value, const char*, Bound) {
        if (flag == std::string("--grad-accum")) grad_accum = offset;
        offset += sizeof(nn::StoredAs<std::remove_cvref_t<decltype(value)>>);
    });
    REQUIRE(grad_accum != 0);
    std::uint64_t vocab_bytes;
    std::memcpy(&vocab_bytes, good.data() + offset, 8);
    const std::size_t best = offset + 8 + vocab_bytes + 8, rng = best + 4;
    std::uint64_t rng_bytes;
    std::memcpy(&rng_bytes, good.data() + rng, 8);
    auto resume = [&](const std::string& bytes, const std::string& extra = "") {
        std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
        return test::run_lesson(kLesson, small(extra + " --resume " + name, 8, 20));
    };
    auto refused = [&](const test::RunResult& r, const std::string& message) {
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK_THAT(r.output, Contains(name + message));
    };
    CHECK(resume(good).status == 0);  // so that each case below fails for its own fault
    std::string bytes = good;
    std::int32_t three = 3;
    std::memcpy(bytes.data() + grad_accum, &three, 4);
    refused(resume(nn::reseal_container(bytes)), ": holds --grad-accum 3, which does not divide its --batch-size 8");
    bytes = good;
    const float nan = NAN;
    std::memcpy(bytes.data() + best, &nan, 4);
    refused(resume(nn::reseal_container(bytes)), ": corrupt best validation loss");
    std::string zero;
    for (std::size_t i = 0; i < std::mt19937_64::state_size; ++i) zero += "0 ";
    zero += "312 0 0x0p+0";
    bytes = good.substr(0, rng);
    const std::uint64_t n = zero.size();
    bytes.append(reinterpret_cast<const char*>(&n), 8).append(zero).append(good.substr(rng + 8 + rng_bytes));
    refused(resume(nn::reseal_container(bytes)), ": corrupt random-number state (all zero");
    refused(resume(good, "--dropout 0.1"), " was trained with other settings");
    refused(resume(good.substr(0, 16)), ": truncated (16 bytes");
}

TEST_CASE("08-data-parallel: a sequence's dropout masks do not depend on the micro-batch it is in", "[08-data-parallel]") {
    Config c;
    c.vocab_size = 11, c.block_size = 5, c.n_embd = 8, c.n_head = 2, c.n_layer = 2, c.dropout = 0.5f;
    nn::Rng init(7), data(8);
    DataParallelGPT model(c, init);
    const nn::Batch whole = test::random_batch(4, c.block_size, c.vocab_size, data);
    auto floats = [](const DropMask& bits) {  // a mask as 0 or 1 / (1 - p)
        nn::Matrix m(bits.rows, bits.cols);
        for (Eigen::Index i = 0; i < m.rows(); ++i)
            for (Eigen::Index j = 0; j < m.cols(); ++j) m(i, j) = bits.kept(i, j) ? bits.keep : 0.0f;
        return m;
    };
    auto masks = [&](const nn::Batch& batch, int first) {  // every dropout mask of one forward
        model.seed_dropout(42, first, batch.B);
        model.loss(batch);
        std::vector<nn::Matrix> out;
        for (const Block& b : model.blocks)
            out.insert(out.end(), {floats(b.sa.attn_dropout.mask), floats(b.sa.resid_dropout.mask),
                                   floats(b.ffwd.dropout.mask)});
        return out;
    };
    const std::vector<nn::Matrix> all = masks(whole, 0);
    // Sequences 2 and 3 alone, as the second micro-batch (or rank) of two.
    nn::Batch half{2, whole.T, {whole.x.begin() + 2 * whole.T, whole.x.end()}, {whole.y.begin() + 2 * whole.T, whole.y.end()}};
    const std::vector<nn::Matrix> part = masks(half, 2);
    REQUIRE(all.size() == part.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        INFO("dropout " << i);
        const Eigen::Index rows = part[i].rows();  // the last `rows` rows of the whole batch's mask
        CHECK(all[i].bottomRows(rows) == part[i]);
        CHECK(all[i].topRows(rows) != part[i]);  // the other sequences got other masks
    }
    // Another step, other masks.
    model.seed_dropout(43, 2, 2);
    model.loss(half);
    CHECK(floats(model.blocks[0].sa.resid_dropout.mask) != part[1]);
}

TEST_CASE("08's settings are 06's table, then --grad-accum", "[08-data-parallel]") {
    Config c;
    TrainConfig t6;
    DataParallelTrainConfig t8;
    std::vector<std::string> flags6, flags8;
    for_each_setting(c, t6, [&](const char* flag, const auto&, const char*, Bound) { flags6.push_back(flag); });
    for_each_setting(c, t8, [&](const char* flag, const auto&, const char*, Bound) { flags8.push_back(flag); });
    flags6.push_back("--grad-accum");
    CHECK(flags8 == flags6);
    // The checkpoint's walk too (a const table): --grad-accum is the last setting stored.
    const DataParallelTrainConfig& saved = t8;
    std::string last;
    for_each_setting(std::as_const(c), saved, [&](const char* flag, const auto&, const char*, Bound) { last = flag; });
    CHECK(last == "--grad-accum");
}

// 08's checkpoint.hpp is a copy of 06's, since its Checkpoint holds 08's
// settings and no dropout generator. Every hunk of the diff between the two
// (lines removed from 06's and added in 08's) must be one of the named
// differences, and short: anything else is a copy that drifted.
TEST_CASE("08's checkpoint.hpp is 06's but for its name, magic, version, settings and dropout generator",
          "[08-data-parallel]") {
    auto lines = [](const std::string& path) {
        std::vector<std::string> out;
        std::istringstream in(nn::read_file(std::string(NN2GPT_SOURCE_DIR) + "/" + path));
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    };
    const std::vector<std::string> a = lines("06-gpt/checkpoint.hpp"), b = lines("08-data-parallel/checkpoint.hpp");
    // The longest common subsequence of lines, then its gaps: the hunks.
    std::vector<std::vector<int>> lcs(a.size() + 1, std::vector<int>(b.size() + 1, 0));
    for (std::size_t i = a.size(); i-- > 0;)
        for (std::size_t j = b.size(); j-- > 0;)
            lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    std::vector<std::string> hunks;  // "< " 06's lines, then "> " 08's
    std::string removed, added;
    std::size_t i = 0, j = 0, hunk_lines = 0, longest = 0;
    auto end_hunk = [&] {
        if (hunk_lines > 0) hunks.push_back(removed + added);
        removed.clear(), added.clear(), hunk_lines = 0;
    };
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && j < b.size() && a[i] == b[j]) {
            end_hunk(), ++i, ++j;
        } else if (j < b.size() && (i == a.size() || lcs[i][j + 1] >= lcs[i + 1][j])) {
            added += "> " + b[j++] + "\n", longest = std::max(longest, ++hunk_lines);
        } else {
            removed += "< " + a[i++] + "\n", longest = std::max(longest, ++hunk_lines);
        }
    }
    end_hunk();
    const std::vector<std::pair<const char*, std::regex>> differences{
        {"the lesson's name", std::regex("^< // 06-gpt: .*\n> // 08-data-parallel: ")},
        {"the magic and the version", std::regex("NN2GPTCK|kCheckpointMagic|kCheckpointVersion")},
        {"the lesson's own model and settings", std::regex("#include \"0[68]-[a-z-]+/(model|train)\\.hpp\"|TrainConfig train;")},
        {"no dropout generator (08 seeds each mask)", std::regex("dropout")},
        {"--grad-accum, which must divide --batch-size", std::regex("grad.accum")},
    };
    REQUIRE(!hunks.empty());
    CHECK(longest <= 6);
    for (const std::string& h : hunks) {
        INFO("this hunk is none of the named differences:\n" << h);
        CHECK(std::any_of(differences.begin(), differences.end(),
                          [&](const auto& d) { return std::regex_search(h, d.second); }));
    }
}
