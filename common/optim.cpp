#include "common/optim.hpp"

#include <cmath>

namespace nn {

AdamW::AdamW(std::vector<Parameter*> params, Options opts)
    : options(opts), params_(std::move(params)) {
    for (const Parameter* p : params_) {
        m_.push_back(Matrix::Zero(p->value.rows(), p->value.cols()));
        v_.push_back(Matrix::Zero(p->value.rows(), p->value.cols()));
    }
}

void AdamW::zero_grad() {
    for (Parameter* p : params_) p->grad.setZero();
}

void AdamW::step() {
    ++t_;
    const float c1 = 1.0f - std::pow(options.beta1, static_cast<float>(t_));  // bias corrections
    const float c2 = 1.0f - std::pow(options.beta2, static_cast<float>(t_));
    for (std::size_t i = 0; i < params_.size(); ++i) {
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
    double sum = 0;
    for (const Parameter* p : params) sum += static_cast<double>(p->grad.squaredNorm());
    const auto norm = static_cast<float>(std::sqrt(sum));
    if (norm > max_norm) {
        const float scale = max_norm / (norm + 1e-6f);  // as torch.nn.utils.clip_grad_norm_
        for (Parameter* p : params) p->grad *= scale;
    }
    return norm;
}

}  // namespace nn
