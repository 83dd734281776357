#include "common/optim.hpp"

#include <cmath>
#include <vector>

#include "common/tensor.hpp"

namespace nn {

namespace {
// Whether the parameters hold enough values to share their elementwise work
// between the threads (kParallelGrain). Each parameter is done whole by one
// thread, so the numbers do not depend on the thread count.
bool worth_sharing(const std::vector<Parameter*>& params) {
    long n = 0;
    for (const Parameter* p : params) n += static_cast<long>(p->value.size());
    return n >= kParallelGrain;
}
}  // namespace

AdamW::AdamW(std::vector<Parameter*> params, Options opts)
    : options(opts), params_(std::move(params)) {
    for (const Parameter* p : params_) {
        m_.push_back(Matrix::Zero(p->value.rows(), p->value.cols()));
        v_.push_back(Matrix::Zero(p->value.rows(), p->value.cols()));
    }
}

void AdamW::zero_grad() {
    const long n = static_cast<long>(params_.size());
#pragma omp parallel for schedule(dynamic) if (worth_sharing(params_))
    for (long i = 0; i < n; ++i) params_[static_cast<std::size_t>(i)]->grad.setZero();
}

// Every parameter (any shape) updated in place from its .grad; m, v (same
// shape) updated; t counts the steps (see optim.hpp for the equations)
// Exercise: adamw_step
void AdamW::step() {
    ++t_;
    const float c1 = 1.0f - std::pow(options.beta1, static_cast<float>(t_));  // bias corrections
    const float c2 = 1.0f - std::pow(options.beta2, static_cast<float>(t_));
    const long n = static_cast<long>(params_.size());
#pragma omp parallel for schedule(dynamic) if (worth_sharing(params_))
    for (long k = 0; k < n; ++k) {
        const auto i = static_cast<std::size_t>(k);
        auto p = params_[i]->value.array();
        const auto g = params_[i]->grad.array();
        auto m = m_[i].array();
        auto v = v_[i].array();
        if (params_[i]->decay) p *= 1.0f - options.lr * options.weight_decay;
        m = options.beta1 * m + (1.0f - options.beta1) * g;
        v = options.beta2 * v + (1.0f - options.beta2) * g.square();
        p -= options.lr * (m / c1) / ((v / c2).sqrt() + options.eps);
    }
}

float clip_grad_norm(const std::vector<Parameter*>& params, float max_norm) {
    // Each parameter's squared norm on some thread, then their sum in order.
    const long n = static_cast<long>(params.size());
    const bool shared = worth_sharing(params);
    std::vector<double> squares(params.size());
#pragma omp parallel for schedule(dynamic) if (shared)
    for (long i = 0; i < n; ++i)
        squares[static_cast<std::size_t>(i)] = static_cast<double>(params[static_cast<std::size_t>(i)]->grad.squaredNorm());
    double sum = 0;
    for (double s : squares) sum += s;
    const auto norm = static_cast<float>(std::sqrt(sum));
    if (norm > max_norm) {
        const float scale = max_norm / (norm + 1e-6f);  // as torch.nn.utils.clip_grad_norm_
#pragma omp parallel for schedule(dynamic) if (shared)
        for (long i = 0; i < n; ++i) params[static_cast<std::size_t>(i)]->grad *= scale;
    }
    return norm;
}

}  // namespace nn
