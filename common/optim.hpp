// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), as
// torch.optim.AdamW computes it, and gradient clipping by global norm.
#pragma once
#include <vector>

#include "common/layers.hpp"

namespace nn {

class AdamW {
public:
    struct Options {
        float lr = 1e-3f;
        float beta1 = 0.9f, beta2 = 0.999f;
        float eps = 1e-8f;
        float weight_decay = 0.01f;  // applied only to parameters with decay == true
    };

    AdamW(std::vector<Parameter*> params, Options options);

    // Sets every parameter's gradient to zero.
    void zero_grad();
    // One update of every parameter from its .grad. For step t = 1, 2, ...:
    //   p <- p - lr * weight_decay * p                      (decoupled decay)
    //   m <- beta1 m + (1 - beta1) g,   v <- beta2 v + (1 - beta2) g^2
    //   p <- p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    void step();

    Options options;  // lr may be changed between steps (a schedule)
    long steps_taken() const { return t_; }

    // The state a checkpoint saves to resume exactly: the step count t and the
    // two moments of every parameter, in the order of the parameter list.
    std::vector<Matrix>& first_moments() { return m_; }
    std::vector<Matrix>& second_moments() { return v_; }
    void set_steps_taken(long t) { t_ = t; }

private:
    std::vector<Parameter*> params_;
    std::vector<Matrix> m_, v_;  // first and second moment of each parameter's gradient
    long t_ = 0;
};

// Scales all gradients together so that their joint L2 norm is at most
// `max_norm`; returns the norm before clipping.
float clip_grad_norm(const std::vector<Parameter*>& params, float max_norm);

}  // namespace nn
