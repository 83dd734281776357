// 04-self-attention: the attention scores, how well key j matches query i.
//
// The lecture's score is the dot product q.k. --score tries the others a
// learner asks about; each is a function of q and k with its own backward,
// checked against finite differences (tests/test_attention.cpp). 05 and 06
// take them from here, unchanged.
#pragma once
#include <array>
#include <cmath>
#include <string>

#include "common/tensor.hpp"

// How well key j matches query i: q.k; (q.k)^2, which loses its sign; the dot of the squared
// elements; -q.k; minus the squared distance |q - k|^2; 1/(q.k); 1/(1 + |q - k|^2) (see score_forward).
enum class Score { dot, squared_dot, squared_elements, negative_dot, distance, reciprocal, inverse_distance };
inline constexpr std::array<const char*, 7> kScoreNames{"dot", "squared-dot", "squared-elements", "negative-dot",
                                                        "distance", "reciprocal", "inverse-distance"};

// The score of every query against every key of one sequence, before the
// mask: q, k (T, hs) -> s (T, T), with scale = 1 / sqrt(hs) (1 with --no-scale):
//   dot               s_ij =  scale q_i . k_j                       the lecture's
//   squared_dot       s_ij =  scale (q_i . k_j)^2 / sqrt(2 hs + 4)  the sign is lost
//   squared_elements  s_ij =  scale sum_c q_ic^2 k_jc^2 / sqrt(6)   square the numbers, then the dot
//   negative_dot      s_ij = -scale q_i . k_j
//   distance          s_ij = -scale |q_i - k_j|^2 / sqrt(6)         near is high, not a dot product
//   reciprocal        s_ij =  scale 0.455 hs / (q_i . k_j)          |q.k| kept >= 1e-3 sqrt(hs)
//   inverse_distance  s_ij =  scale (1 + 2 hs)^2 / sqrt(6) / (1 + |q_i - k_j|^2)
// Each constant after `scale` gives its score the spread of the dot product's at initialisation:
// for q and k of independent N(0, 1) entries, the standard deviation of s_ij over the keys j of a
// row (what softmax sees) is scale sqrt(hs), 1 with the scale (score_spread; README). reciprocal
// has no standard deviation (1/x of a normal x has infinite variance), so its typical size, the
// median of |s|, is matched instead.
inline float score_factor(Score score, int hs) {
    const float d = static_cast<float>(hs);
    switch (score) {
        case Score::dot: case Score::negative_dot: return 1.0f;
        case Score::squared_dot: return 1.0f / std::sqrt(2.0f * d + 4.0f);
        case Score::squared_elements: case Score::distance: return 1.0f / std::sqrt(6.0f);
        case Score::reciprocal: return 0.6745f * 0.6745f * d;  // median |x| of N(0, 1), squared
        case Score::inverse_distance: return (1.0f + 2.0f * d) * (1.0f + 2.0f * d) / std::sqrt(6.0f);
    }
    return 1.0f;
}
inline constexpr float kReciprocalGuard = 1e-3f;  // reciprocal: |q.k| / sqrt(hs) is at least this

// q_i . k_j of every pair, kept away from 0 for reciprocal: |q.k| >= kReciprocalGuard sqrt(hs),
// with its sign (0 counts as positive). (T, hs), (T, hs) -> (T, T)
inline nn::Matrix guarded_dot(Eigen::Ref<const nn::Matrix> q, Eigen::Ref<const nn::Matrix> k) {
    const float floor = kReciprocalGuard * std::sqrt(static_cast<float>(q.cols()));
    nn::Matrix d = q * k.transpose();
    d = d.unaryExpr([floor](float x) { return std::abs(x) >= floor ? x : std::copysign(floor, x); });
    return d;
}

inline void score_forward(Score score, Eigen::Ref<const nn::Matrix> q, Eigen::Ref<const nn::Matrix> k,
                          float scale, Eigen::Ref<nn::Matrix> s) {
    const float a = scale * score_factor(score, static_cast<int>(q.cols()));
    switch (score) {
        case Score::dot: s.noalias() = scale * q * k.transpose(); break;
        case Score::negative_dot: s.noalias() = -scale * q * k.transpose(); break;
        case Score::squared_dot:
            s.noalias() = q * k.transpose();
            s = (a * s.array().square()).matrix();
            break;
        case Score::squared_elements:
            s.noalias() = a * q.array().square().matrix() * k.array().square().matrix().transpose();
            break;
        case Score::distance:  // -|q_i - k_j|^2 = 2 q_i.k_j - |q_i|^2 - |k_j|^2
            s.noalias() = 2.0f * a * q * k.transpose();
            s.colwise() -= a * q.rowwise().squaredNorm();
            s.rowwise() -= a * k.rowwise().squaredNorm().transpose();
            break;
        case Score::reciprocal: s = (a * guarded_dot(q, k).array().inverse()).matrix(); break;
        case Score::inverse_distance:  // |q_i - k_j|^2 = |q_i|^2 + |k_j|^2 - 2 q_i.k_j
            s.noalias() = -2.0f * q * k.transpose();
            s.colwise() += q.rowwise().squaredNorm();
            s.rowwise() += k.rowwise().squaredNorm().transpose();
            s = (a / (1.0f + s.array().max(0.0f))).matrix();  // max: rounding can make a 0 slightly negative
            break;
    }
}

// score_forward's backward: ds (T, T) = d(loss)/d(s) -> dq, dk (T, hs), given the q, k it read.
inline void score_backward(Score score, Eigen::Ref<const nn::Matrix> q, Eigen::Ref<const nn::Matrix> k,
                           float scale, Eigen::Ref<const nn::Matrix> ds, Eigen::Ref<nn::Matrix> dq,
                           Eigen::Ref<nn::Matrix> dk) {
    const float a = scale * score_factor(score, static_cast<int>(q.cols()));
    switch (score) {
        case Score::dot:  // dq = scale ds k, dk = scale ds^T q
            dq.noalias() = scale * ds * k;
            dk.noalias() = scale * ds.transpose() * q;
            break;
        case Score::negative_dot:  // the same with -scale
            dq.noalias() = -scale * ds * k;
            dk.noalias() = -scale * ds.transpose() * q;
            break;
        case Score::squared_dot: {  // s = a d^2 with d = q.k: dd = ds 2 a d, then as dot
            nn::Matrix dd = q * k.transpose();
            dd = (2.0f * a * dd.array() * ds.array()).matrix();
            dq.noalias() = dd * k;
            dk.noalias() = dd.transpose() * q;
            break;
        }
        case Score::squared_elements:  // ds/dq_ic = a sum_j ds_ij k_jc^2 2 q_ic, and for k alike
            dq.noalias() = a * ds * k.array().square().matrix();
            dq = (2.0f * q.array() * dq.array()).matrix();
            dk.noalias() = a * ds.transpose() * q.array().square().matrix();
            dk = (2.0f * k.array() * dk.array()).matrix();
            break;
        case Score::distance:  // dq_i = 2 a (sum_j ds_ij k_j - (sum_j ds_ij) q_i), dk_j alike
            dq.noalias() = 2.0f * a * ds * k;
            dq -= ((2.0f * a * ds.rowwise().sum()).asDiagonal() * q).eval();
            dk.noalias() = 2.0f * a * ds.transpose() * q;
            dk -= ((2.0f * a * ds.colwise().sum().transpose()).asDiagonal() * k).eval();
            break;
        case Score::reciprocal: {  // s = a / d with d = q.k: dd = -ds a / d^2 (0 where the guard holds d)
            const nn::Matrix d = guarded_dot(q, k), exact = q * k.transpose();
            const nn::Matrix dd = (d.array() == exact.array()).select(-a * ds.array() / d.array().square(), 0.0f).matrix();
            dq.noalias() = dd * k;
            dk.noalias() = dd.transpose() * q;
            break;
        }
        case Score::inverse_distance: {  // s = a / (1 + D), D = |q_i - k_j|^2: dD = -ds s^2 / a, then
            nn::Matrix g(ds.rows(), ds.cols());  // dq_i = 2 (sum_j dD_ij q_i - dD_ij k_j), dk_j alike
            score_forward(score, q, k, scale, g);
            g = (-ds.array() * g.array().square() / a).matrix();
            dq.noalias() = -2.0f * g * k;
            dq += ((2.0f * g.rowwise().sum()).asDiagonal() * q).eval();
            dk.noalias() = -2.0f * g.transpose() * q;
            dk += ((2.0f * g.colwise().sum().transpose()).asDiagonal() * k).eval();
            break;
        }
    }
}

// The score in use, as a formula of q and k (T, hs): what print_shapes shows for s.
inline std::string score_formula(Score score, bool scaled) {
    const std::string by = scaled ? " / sqrt(hs)" : "";  // the scale; the other constants: score_factor
    switch (score) {
        case Score::dot: return "q k^T" + by;
        case Score::squared_dot: return "(q k^T)^2 / sqrt(2 hs + 4)" + by;
        case Score::squared_elements: return "q^2 (k^2)^T / sqrt(6)" + by;
        case Score::negative_dot: return "-q k^T" + by;
        case Score::distance: return "-|q_i - k_j|^2 / sqrt(6)" + by;
        case Score::reciprocal: return "0.455 hs / (q k^T)" + by;
        case Score::inverse_distance: return "(1 + 2 hs)^2 / sqrt(6) / (1 + |q_i - k_j|^2)" + by;
    }
    return "";
}
