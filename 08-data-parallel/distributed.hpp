// 08-data-parallel: the MPI side of data parallelism, what this lesson adds
// to 06 with gradients.hpp. Starting and stopping MPI, which rank this
// process is, the one all-reduce of the gradients (timed with MPI_Wtime),
// sums and maxima of a few numbers across ranks, the check that every rank
// was given the same settings, and how an error on one rank stops them all
// without a hang.
//
// Every rank runs the same program on the same settings (mpirun starts them);
// they differ only in `rank`. Only rank 0 prints to stdout: the others' stdout
// goes to /dev/null, their stderr stays, for errors.
#pragma once
#include <mpi.h>

#include <signal.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/error.hpp"
#include "08-data-parallel/gradients.hpp"
#include "08-data-parallel/train.hpp"
#include "common/layers.hpp"
#include "common/random.hpp"
#include "common/settings.hpp"
#include "common/text.hpp"

// Thrown on the ranks that stop because another rank reported the error.
struct StoppedByOtherRank {};

// A setting every rank must share, by name, as text: ("--n-layer", "2").
using SharedSetting = std::pair<std::string, std::string>;

class Distributed {
public:
    int rank = 0, world = 1;
    double allreduce_seconds = 0;  // time spent in the gradients' MPI_Allreduce, all steps so far
    bool error_agreed = false;     // every rank knows of the error that ends this run

    Distributed(int& argc, char**& argv) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        if (rank != 0) std::freopen("/dev/null", "w", stdout);
        // A test hook: NN2GPT_KILL_RANK_AT=R:S makes rank R kill itself (SIGKILL)
        // at training step S, as a crashed machine would.
        if (const char* kill = std::getenv("NN2GPT_KILL_RANK_AT"))
            if (std::sscanf(kill, "%d:%d", &kill_rank_, &kill_step_) != 2) kill_rank_ = -1;
    }
    ~Distributed() { MPI_Finalize(); }
    Distributed(const Distributed&) = delete;

    bool root() const { return rank == 0; }

    // Sums `values` over all ranks, in place: every rank gets the same sums.
    void sum(std::span<double> values) const {
        MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
    double max(double value) const {
        MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        return value;
    }
    // Every rank's `value`, gathered on every rank.
    std::vector<std::uint64_t> gather(std::uint64_t value) const {
        std::vector<std::uint64_t> all(static_cast<std::size_t>(world));
        MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
        return all;
    }

    // Every parameter's gradient becomes the sum of all ranks' gradients,
    // divided by world K (gradients.hpp's average_gradients), with one
    // MPI_Allreduce over one flat buffer: the parameters' gradients are copied
    // into it end to end, and back. (The plain form: one MPI_Allreduce per
    // parameter, 4 + 12 n_layer small messages a step.)
    void allreduce_gradients(const std::vector<nn::Parameter*>& params, int K) {
        std::size_t n = 0;
        for (const nn::Parameter* p : params) n += static_cast<std::size_t>(p->grad.size());
        flat_.resize(n);
        float* at = flat_.data();
        for (const nn::Parameter* p : params) at = std::copy(p->grad.data(), p->grad.data() + p->grad.size(), at);
        const double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, flat_.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        allreduce_seconds += MPI_Wtime() - t0;
        average_gradients(flat_, world, K, params);
    }

    // Runs `work` (reading settings, data, a checkpoint) on every rank. If it
    // throws InputError on any rank, all ranks stop together: the lowest such
    // rank rethrows it (nn::guarded prints it: one line, status 2), the others
    // throw StoppedByOtherRank and exit with status 2 in silence. So a bad
    // setting is reported once, not once per rank, and no rank waits forever.
    template <typename Work>
    void on_every_rank(Work&& work) {
        std::optional<nn::InputError> error;
        try {
            work();
        } catch (const nn::InputError& e) {
            error = e;
        } catch (const std::filesystem::filesystem_error& e) {  // e.g. --out names a file
            error = nn::InputError(e.what());
        }
        int first = error ? rank : world;
        MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (first == world) return;
        error_agreed = true;
        if (rank == first) throw *error;
        throw StoppedByOtherRank{};
    }

    // Stops every rank (status 2, one line from rank 0 naming each setting that
    // differs and its values) unless every rank was given the same `settings`.
    // mpirun's MPMD form (`-np 1 A : -np 1 B`) gives each rank its own command
    // line: a rank with another model shape would all-reduce a gradient buffer
    // of another size (memory corruption, a crash), one with another seed or
    // learning rate would quietly train other weights. So before any training
    // rank 0 gathers every rank's settings (a few hundred bytes each) and
    // compares them, then tells every rank the verdict. Every rank must call it
    // with a list of the same length, in the same order.
    void check_same(const std::vector<SharedSetting>& settings) {
        std::string mine;  // the values, each ended by a '\0'
        for (const SharedSetting& s : settings) mine += s.second + '\0';
        const int length = static_cast<int>(mine.size());
        std::vector<int> lengths(static_cast<std::size_t>(world)), offsets(lengths.size());
        MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
        std::string all;  // rank 0's: every rank's values, end to end
        if (root())
            for (std::size_t r = 0; r < lengths.size(); ++r) {
                offsets[r] = static_cast<int>(all.size());
                all.resize(all.size() + static_cast<std::size_t>(lengths[r]));
            }
        MPI_Gatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0, MPI_COMM_WORLD);
        std::string diff;  // rank 0's: "--n-layer (rank 0: 2, rank 1: 1), ..."
        if (root()) {
            std::vector<std::string> others(settings.size());
            for (std::size_t r = 1; r < lengths.size(); ++r) {
                std::size_t at = static_cast<std::size_t>(offsets[r]);
                for (std::size_t i = 0; i < settings.size(); ++i) {
                    const std::size_t end = std::min(all.find('\0', at), all.size());
                    const std::string value = all.substr(at, end - at);
                    at = end + 1;
                    if (value != settings[i].second) others[i] += fmt::format(", rank {}: {}", r, value);
                }
            }
            for (std::size_t i = 0; i < settings.size(); ++i)
                if (!others[i].empty())
                    diff += fmt::format("{}{} (rank 0: {}{})", diff.empty() ? "" : ", ", settings[i].first,
                                        settings[i].second, others[i]);
        }
        int differ = diff.empty() ? 0 : 1;
        MPI_Bcast(&differ, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (differ == 0) return;
        error_agreed = true;
        if (root())
            nn::fail("the ranks were given different settings: {}; mpirun must start every rank with the same ones", diff);
        throw StoppedByOtherRank{};
    }

    // An error only this rank knows of (say, a checkpoint it cannot write in the
    // middle of training): the others are inside a collective call waiting for
    // it, so the whole job is aborted. mpirun then stops every rank.
    [[noreturn]] void abort(int status) const {
        std::fflush(stdout);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
        std::_Exit(status);
    }

    // The test hook above.
    void maybe_die(int step) const {
        if (rank == kill_rank_ && step == kill_step_) ::raise(SIGKILL);
    }

private:
    std::vector<float> flat_;  // the flat gradient buffer
    int kill_rank_ = -1, kill_step_ = -1;
};

// nn::parse on every rank, then one MPI_Allgather of how it went, so that the
// ranks agree on what to do: mpirun's MPMD form gives each rank its own command
// line, and a rank that stopped alone would leave the others waiting for it
// forever. A command-line error on any rank stops every rank with status 2, the
// lowest such rank printing it (naming itself unless it is rank 0). --help on
// every rank: rank 0 prints it, status 0; on some ranks only, an error too.
inline std::optional<int> parse_on_every_rank(CLI::App& app, int argc, char** argv, const Distributed& dist) {
    enum Outcome : std::uint64_t { go_on, help, error };
    Outcome outcome = go_on;
    std::exception_ptr asked_for_help;  // CLI11's --help exception, whose type says which help
    std::string message;
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success&) {
        outcome = help, asked_for_help = std::current_exception();
    } catch (const CLI::ParseError& e) {
        outcome = error, message = e.what();
    }
    const std::vector<std::uint64_t> all = dist.gather(outcome);
    auto first = [&](Outcome o) { return static_cast<int>(std::find(all.begin(), all.end(), o) - all.begin()); };
    if (const int r = first(error); r < dist.world) {
        if (r == dist.rank)
            fmt::print(stderr, "{}: error: {}{} (see --help)\n", app.get_name(),
                       r == 0 ? "" : fmt::format("rank {}: ", r), message);
        return 2;
    }
    if (first(help) == dist.world) return std::nullopt;
    if (first(go_on) == dist.world) {  // nn::parse's --help; the other ranks' stdout is /dev/null
        try {
            std::rethrow_exception(asked_for_help);
        } catch (const CLI::Success& e) {
            return app.exit(e);
        }
    }
    if (dist.root())
        fmt::print(stderr, "{}: error: --help on rank {} but not on rank {}: mpirun must start every rank with the same "
                   "command line\n", app.get_name(), first(help), first(go_on));
    return 2;
}

// 64-bit FNV-1a of `n` bytes, continuing from `h`.
inline std::uint64_t fnv1a(const void* data, std::size_t n, std::uint64_t h = 14695981039346656037ull) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}

// A checksum of every parameter's bytes: equal on two ranks exactly when their
// weights are equal, bit for bit (but for a 2^-64 chance).
inline std::uint64_t weights_checksum(const std::vector<nn::Parameter*>& params) {
    std::uint64_t h = fnv1a(nullptr, 0);
    for (const nn::Parameter* p : params)
        h = fnv1a(p->value.data(), static_cast<std::size_t>(p->value.size()) * sizeof(float), h);
    return h;
}

// What Distributed::check_same compares of the text each rank read (each reads
// its own --data) and of where each starts (the step, the weights and the
// batches' generator, from the seed or each rank's own --resume): sizes and a
// checksum, since the ranks must draw the same batches from the same weights.
inline std::string text_fingerprint(const nn::TextData& data) {
    const std::string vocabulary = data.vocab.utf8();
    std::uint64_t h = fnv1a(vocabulary.data(), vocabulary.size());
    h = fnv1a(data.train.data(), data.train.size() * sizeof(int), h);
    h = fnv1a(data.val.data(), data.val.size() * sizeof(int), h);
    return fmt::format("{} characters, checksum {:016x}", data.train.size() + data.val.size(), h);
}
inline std::string start_fingerprint(int step, const std::vector<nn::Parameter*>& params, const nn::Rng& rng) {
    const std::string rng_state = rng.state();
    const std::uint64_t h = fnv1a(rng_state.data(), rng_state.size(), weights_checksum(params));
    return fmt::format("step {}, checksum {:016x}", step, h);
}

// What every rank must be given alike to train together (Distributed::check_same):
// every setting of the model and of training, as the resume check compares
// them, and --stop-at (a rank that stopped sooner would leave the others waiting).
inline std::vector<SharedSetting> shared_settings(const Config& config, const DataParallelTrainConfig& train, int stop_at) {
    std::vector<SharedSetting> out;
    for_each_setting(config, train, [&](const char* flag, const auto& value, const char*, Bound) {
        out.emplace_back(flag, nn::setting_text(value));
    });
    out.emplace_back("--stop-at", stop_at < 0 ? "(none)" : std::to_string(stop_at));
    return out;
}

// nn::guarded for a run over MPI. An error every rank agreed on
// (Distributed::on_every_rank) ends every rank with status 2, printed once;
// an error on this rank alone aborts the job, since the other ranks are
// waiting for this one in a collective call and would wait forever.
template <typename Body>
int guarded_on_every_rank(const CLI::App& app, Distributed& dist, Body&& body) {
    int status = 2;
    try {
        status = nn::guarded(app, body);
    } catch (const StoppedByOtherRank&) {  // another rank printed the error
        return 2;
    }
    if (status != 0 && !dist.error_agreed && dist.world > 1) dist.abort(status);
    return status;
}
