// What the workbook's checks are made of (tests/exercises/check_LESSON.cpp).
// Each helper checks one tensor and, when it is wrong, fails the exercise
// with a message that names the tensor and the equation, as the learner will
// read it:
//   check::shape   "BP1: delta of the output layer has shape (4, 1), expected (1, 4)"
//   check::golden  "BP2: delta of layer 1 differs at row 0, col 2: expected 0.0123, got -0.0456 ..."
//   check::gradient "dC/dw of layer 1 (BP4) disagrees with finite differences at row 2, col 0: ..."
//
// Golden values are never typed by hand: the reference lesson writes them.
// With NN2GPT_RECORD_GOLDENS=1 in the environment, check::golden records
// every tensor it is given into tests/exercises/golden/LESSON.txt instead of
// comparing (build/bin/check_LESSON is built against the reference lesson),
// and a ctest checks that the reference reproduces the committed file.
#pragma once
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/gradcheck.hpp"
#include "common/tensor.hpp"

namespace check {

// The golden tensors of this lesson, by name, in the order they were first seen.
class Goldens {
public:
    static Goldens& get() {
        static Goldens goldens;
        return goldens;
    }
    bool recording() const { return recording_; }
    const nn::Matrix* find(const std::string& name) const {
        const auto at = values_.find(name);
        return at == values_.end() ? nullptr : &at->second;
    }
    void record(const std::string& name, const nn::Matrix& value) {
        if (!values_.count(name)) order_.push_back(name);
        values_[name] = value;
    }
    ~Goldens() {
        if (!recording_ || order_.empty()) return;
        const std::string tmp = path_ + ".tmp";
        {
            std::ofstream out(tmp);
            out << "# Golden tensors of " << NN2GPT_LESSON
                << "'s exercises, written by the reference lesson (NN2GPT_RECORD_GOLDENS=1 "
                   "build/bin/check_"
                << NN2GPT_LESSON << ").\n# name<TAB>rows<TAB>cols<TAB>values, row by row\n";
            char buffer[32];
            for (const std::string& name : order_) {
                const nn::Matrix& m = values_.at(name);
                out << name << '\t' << m.rows() << '\t' << m.cols() << '\t';
                for (Eigen::Index i = 0; i < m.size(); ++i) {
                    std::snprintf(buffer, sizeof buffer, "%.9g", double(m.data()[i]));
                    out << (i ? " " : "") << buffer;
                }
                out << '\n';
            }
        }
        std::filesystem::rename(tmp, path_);
        std::fprintf(stderr, "recorded %zu golden tensors in %s\n", order_.size(), path_.c_str());
    }

private:
    Goldens() : path_(std::string(NN2GPT_SOURCE_DIR) + "/tests/exercises/golden/" + NN2GPT_LESSON + ".txt") {
        const char* env = std::getenv("NN2GPT_RECORD_GOLDENS");
        recording_ = env != nullptr && std::string(env) == "1";
        if (recording_) return;
        std::ifstream in(path_);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream fields(line);
            std::string name, rows, cols, values;
            std::getline(fields, name, '\t');
            std::getline(fields, rows, '\t');
            std::getline(fields, cols, '\t');
            std::getline(fields, values);
            nn::Matrix m(std::stol(rows), std::stol(cols));
            std::istringstream numbers(values);
            for (Eigen::Index i = 0; i < m.size(); ++i) numbers >> m.data()[i];
            record(name, m);
        }
    }
    std::string path_;
    bool recording_ = false;
    std::map<std::string, nn::Matrix> values_;
    std::vector<std::string> order_;
};

inline std::string number(double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", v);
    return buffer;
}

inline std::string shape_text(Eigen::Index rows, Eigen::Index cols) { return fmt::format("({}, {})", rows, cols); }

// `what` has shape (rows, cols), or the exercise stops here.
template <typename Derived>
void shape(const std::string& what, const Eigen::DenseBase<Derived>& got, Eigen::Index rows, Eigen::Index cols) {
    if (got.rows() != rows || got.cols() != cols)
        FAIL(what << " has shape " << shape_text(got.rows(), got.cols()) << ", expected " << shape_text(rows, cols));
    SUCCEED(what << " has its shape");
}

// `got` equals `expected` element by element, within
// atol + rtol (|expected| + |expected|max / 10); or the exercise stops at the
// first element that differs, with the largest difference over the whole
// tensor. The rounding of a sum is relative to its terms, not to its result:
// an element that cancels to near zero keeps the rounding of the tensor's
// large values, and that rounding moves with the compiler's choices (fused
// multiply-adds or not, -O0 or -O3), hence the tensor's largest value
// (|expected|max) in every element's tolerance. A wrong formula is off by far
// more; with rtol 0 the values must be equal.
inline void close(const std::string& what, const nn::Matrix& got, const nn::Matrix& expected, double rtol = 1e-4,
                  double atol = 1e-6) {
    shape(what, got, expected.rows(), expected.cols());
    Eigen::Index first = -1, worst = 0;
    double largest = -1;
    const double scale = expected.size() > 0 ? expected.cwiseAbs().maxCoeff() / 10.0 : 0.0;
    for (Eigen::Index i = 0; i < got.size(); ++i) {
        const double e = expected.data()[i], g = got.data()[i];
        const double diff = std::isfinite(g) ? std::abs(g - e) : INFINITY;
        if (first < 0 && !(diff <= atol + rtol * (std::abs(e) + scale))) first = i;
        if (diff > largest) largest = diff, worst = i;
    }
    if (first < 0) {
        SUCCEED(what << " is right");
        return;
    }
    const auto at = [&](Eigen::Index i) {
        if (got.cols() == 1 && got.rows() > 1) return fmt::format("row {}", i);
        if (got.rows() == 1 && got.cols() > 1) return fmt::format("col {}", i);
        return fmt::format("row {}, col {}", i / got.cols(), i % got.cols());
    };
    if (got.size() == 1)
        FAIL(what << " is wrong: expected " << number(expected.data()[0]) << ", got " << number(got.data()[0]));
    FAIL(what << " differs at " << at(first) << ": expected " << number(expected.data()[first]) << ", got "
              << number(got.data()[first]) << " (largest difference " << number(largest) << ", at " << at(worst)
              << ")");
}

// `got` equals the golden tensor named `what` (see close), which the
// reference lesson recorded.
template <typename Derived>
void golden(const std::string& what, const Eigen::DenseBase<Derived>& got_expr, double rtol = 1e-4,
            double atol = 1e-6) {
    const nn::Matrix got = got_expr;
    Goldens& goldens = Goldens::get();
    if (goldens.recording()) {
        goldens.record(what, got);
        return;
    }
    const nn::Matrix* expected = goldens.find(what);
    if (expected == nullptr)
        FAIL("no golden value named '" << what << "': record them with NN2GPT_RECORD_GOLDENS=1 build/bin/check_"
                                       << NN2GPT_LESSON);
    close(what, got, *expected, rtol, atol);
}

// The same for a whole number (a count, an index).
inline void golden(const std::string& what, long value) {
    nn::Matrix m(1, 1);
    m(0, 0) = static_cast<float>(value);
    golden(what, m, 0.0, 0.0);
}

// The analytic gradient `grad` of `loss()` with respect to `param` agrees with
// central finite differences (at most `samples` entries, drawn at random), or
// the exercise stops with the entry that disagrees most. `loss` recomputes
// the loss from param's current contents.
template <typename LossFn, typename Param, typename Grad>
void gradient(const std::string& what, LossFn&& loss, Param& param, const Grad& grad,
              double tolerance = 1e-2, double eps = 1e-2, std::size_t samples = 64) {
    shape(what, grad, param.rows(), param.cols());
    const nn::GradCheck result = nn::check_gradient(loss, nn::as_span(param), nn::as_span(grad), eps, samples);
    if (result.max_rel_error < tolerance) {
        SUCCEED(what << " agrees with finite differences");
        return;
    }
    const auto i = static_cast<Eigen::Index>(result.worst_index);
    FAIL(what << " disagrees with finite differences at row " << i / param.cols() << ", col " << i % param.cols()
              << ": yours " << number(result.analytic) << ", finite differences " << number(result.numeric)
              << " (relative error " << number(result.max_rel_error) << ")");
}

// A fixed random upstream gradient G of the given shape: the checks take the
// loss sum(out .* G), never sum(out), since an all-ones upstream gradient
// lets some wrong backward passes through.
inline nn::Matrix upstream(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed = 99) {
    nn::Rng rng(seed);
    nn::Matrix g(rows, cols);
    rng.fill_normal(nn::as_span(g));
    return g;
}

}  // namespace check
