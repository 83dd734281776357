// 06-gpt: the layers a Transformer block is made of besides attention:
// LayerNorm, the GELU and the feed-forward layer around it (dropout is in
// dropout.hpp). model.hpp puts them together into Blocks; 07 and 08 take
// them from here unchanged.
#pragma once
#include <unsupported/Eigen/SpecialFunctions>  // Eigen's vectorised erf, for GELU

#include <array>
#include <cmath>

#include "06-gpt/dropout.hpp"
#include "common/layers.hpp"
#include "common/threads.hpp"

// LayerNorm's arithmetic, on plain matrices (the LayerNorm below keeps what
// its backward needs). Each row (one position's C channels) is normalised
// to mean 0 and variance 1, then scaled and shifted by the learned gain and bias:
//   xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps),  y = xhat * gain + bias
// x (N, C), gain and bias (1, C) -> y (N, C), and each row's mean and rstd (N)
// Exercise: layernorm_forward
inline void layernorm_forward(const nn::Matrix& x, const nn::Matrix& gain, const nn::Matrix& bias, float eps,
                              nn::Matrix& y, nn::Vector& mean, nn::Vector& rstd) {
    const Eigen::Index N = x.rows();
    y.resize(N, x.cols());
    mean.resize(N);
    rstd.resize(N);
#pragma omp parallel for schedule(static) if (x.size() >= nn::kParallelGrain)
    for (Eigen::Index n = 0; n < N; ++n) {
        mean(n) = x.row(n).mean();
        const float var = (x.row(n).array() - mean(n)).square().mean();
        rstd(n) = 1.0f / std::sqrt(var + eps);
        y.row(n) = ((x.row(n).array() - mean(n)) * rstd(n)).matrix().cwiseProduct(gain) + bias;
    }
}

// x (N, C), the forward's mean and rstd (N), gain (1, C), dy (N, C) -> dx (N, C);
// adds d gain = sum_n dy * xhat and d bias = sum_n dy (1, C) to dgain and dbias.
// With g = dy * gain (the gradient reaching xhat):
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
// the two means are what the mean and the variance of the row pass back. It
// computes xhat again from x, mean and rstd, rather than keeping a second
// (N, C) matrix.
// Exercise: layernorm_backward
inline void layernorm_backward(const nn::Matrix& x, const nn::Vector& mean, const nn::Vector& rstd,
                               const nn::Matrix& gain, const nn::Matrix& dy, nn::Matrix& dx, nn::Matrix& dgain,
                               nn::Matrix& dbias) {
    const Eigen::Index N = dy.rows();
    dx.resize(N, dy.cols());  // holds xhat first, the forward's, computed again
#pragma omp parallel for schedule(static) if (dy.size() >= nn::kParallelGrain)
    for (Eigen::Index n = 0; n < N; ++n) dx.row(n) = (x.row(n).array() - mean(n)) * rstd(n);
    nn::add_column_sums(dy.cwiseProduct(dx), dgain);  // d gain = sum_n dy * xhat
    nn::add_column_sums(dy, dbias);                   // d bias = sum_n dy
#pragma omp parallel for schedule(static) if (dy.size() >= nn::kParallelGrain)
    for (Eigen::Index n = 0; n < N; ++n) {
        const auto g = (dy.row(n).cwiseProduct(gain)).array();
        const auto xhat = dx.row(n).array();
        const float g_mean = g.mean();
        const float gx_mean = (g * xhat).mean();
        dx.row(n) = rstd(n) * (g - g_mean - xhat * gx_mean);  // each value from its own xhat: in place
    }
}

// LayerNorm as a layer: the gain (starts at 1) and the bias (starts at 0),
// and what backward needs of the forward: its input, and each row's mean and
// 1 / sqrt(var + eps). With `on` false (--no-layernorm) it is the identity.
struct LayerNorm {
    static constexpr float eps = 1e-5f;
    bool on = true;
    nn::Parameter weight, bias;     // (1, C): the gain and the bias
    const nn::Matrix* x = nullptr;  // the last input, as Linear keeps it (unchanged until backward)
    nn::Vector mean, rstd;          // (N): each row's mean and 1 / sqrt(var + eps)
    nn::Matrix y, dx;

    LayerNorm(int C, bool on_) : on(on_) {
        weight.resize(1, C);
        weight.value.setOnes();
        bias.resize(1, C);
        weight.decay = bias.decay = false;
    }

    // x (N, C) -> y (N, C)
    const nn::Matrix& forward(const nn::Matrix& input) {
        if (!on) return input;
        x = &input;
        layernorm_forward(input, weight.value, bias.value, eps, y, mean, rstd);
        return y;
    }

    // dy (N, C) -> dx (N, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        if (!on) return dy;
        layernorm_backward(*x, mean, rstd, weight.value, dy, dx, weight.grad, bias.grad);
        return dx;
    }
};

// GELU, the Gaussian Error Linear Unit, a smooth ReLU, elementwise:
//   y = x Phi(x),  Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF
// x (N, D) -> y (N, D)
// Exercise: gelu_forward
inline void gelu_forward(const nn::Matrix& x, nn::Matrix& y) {
    y.resize(x.rows(), x.cols());
#pragma omp parallel for schedule(static) if (x.size() >= nn::kParallelGrain)
    for (Eigen::Index n = 0; n < x.rows(); ++n) {
        const auto a = x.row(n).array();
        y.row(n) = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf());
    }
}

// x (N, D), the forward's input; dy (N, D) -> dx (N, D) = dy * (Phi(x) + x phi(x)),
// with phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the standard normal density
// Exercise: gelu_backward
inline void gelu_backward(const nn::Matrix& x, const nn::Matrix& dy, nn::Matrix& dx) {
    dx.resize(x.rows(), x.cols());
    const float inv_sqrt_2pi = 0.5f * float(M_2_SQRTPI) * float(M_SQRT1_2);
#pragma omp parallel for schedule(static) if (x.size() >= nn::kParallelGrain)
    for (Eigen::Index n = 0; n < x.rows(); ++n) {
        const auto a = x.row(n).array();
        const auto Phi = 0.5f * (1.0f + (a * float(M_SQRT1_2)).erf());
        const auto phi = inv_sqrt_2pi * (-0.5f * a.square()).exp();
        dx.row(n) = dy.row(n).array() * (Phi + a * phi);
    }
}

enum class Activation { gelu, relu };  // the feed-forward layer's nonlinearity: GELU, or 05's ReLU
inline constexpr std::array<const char*, 2> kActivationNames{"gelu", "relu"};

// The feed-forward layer's nonlinearity, elementwise: GELU (above), or 05's
// ReLU, y = max(x, 0).
struct Nonlinearity {
    Activation kind = Activation::gelu;
    nn::Matrix y, dx;  // (N, D)

    // x (N, D) -> y (N, D)
    const nn::Matrix& forward(const nn::Matrix& x) {
        if (kind == Activation::relu) y = x.cwiseMax(0.0f);
        else gelu_forward(x, y);
        return y;
    }

    // x (N, D), the forward's input; dy (N, D) -> dx (N, D)
    //   relu: dy/dx = 1 where x > 0, else 0
    const nn::Matrix& backward(const nn::Matrix& x, const nn::Matrix& dy) {
        if (kind == Activation::relu) dx = (x.array() > 0.0f).select(dy.array(), 0.0f).matrix();
        else gelu_backward(x, dy, dx);
        return dx;
    }
};

// The feed-forward layer, `hidden` wide inside (model.hpp: ffwd_mult = 4 times C):
//   y = dropout(proj(gelu(fc(x))))     (without proj and with fc C -> C under --no-proj)
// The hidden values gelu(fc(x)), (N, hidden), are not kept: backward computes
// them again from fc's output, which it keeps anyway (the GELU's derivative
// needs it), so the blocks do not each hold a second (N, hidden) matrix.
struct FeedForward {
    bool projection;
    nn::Linear fc;    // C -> hidden
    Nonlinearity act;
    nn::Linear proj;  // hidden -> C
    Dropout dropout;

    // C -> hidden -> C, with this nonlinearity and dropout probability p;
    // without `projection_` (--no-proj) hidden must be C.
    FeedForward(int C, int hidden, Activation activation, bool projection_, float p, nn::Rng& rng)
        : projection(projection_), fc(C, hidden, true, rng), proj(hidden, C, true, rng) {
        act.kind = activation;
        dropout.p = p;
    }
    // x (N, C) -> y (N, C), which the caller adds to the residual stream (and may then free)
    nn::Matrix& forward(const nn::Matrix& x) {
        act.forward(fc.forward(x));  // (N, hidden)
        if (!projection) {
            dropout.forward(act.y);
            return act.y;
        }
        proj.forward(act.y);  // 06's Block frees act.y after this: backward computes it again
        dropout.forward(proj.y);
        return proj.y;
    }
    // dy (N, C) -> dx (N, C)
    const nn::Matrix& backward(const nn::Matrix& dy) {
        const nn::Matrix& dproj = dropout.backward(dy);
        const nn::Matrix* dh = &dproj;
        if (projection) {
            act.forward(fc.y);  // proj's input again, for its weights' gradient
            dh = &proj.backward(dproj);
            act.y = nn::Matrix();  // read: the GELU's own gradient needs only fc.y
        }
        return fc.backward(act.backward(fc.y, *dh));  // the activation's input was fc's output
    }
};
