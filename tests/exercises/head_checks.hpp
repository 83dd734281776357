// The checks of the exercises 04-self-attention and 05-multihead share (their
// averaging_matrix, Head, softmax_backward and sinusoidal_table are the same
// code): included by check_04-self-attention.cpp and check_05-multihead.cpp
// after the lesson's model.hpp, so that each checks its own lesson's copy.
#pragma once
#include <cmath>
#include <limits>
#include <utility>

#include "tests/exercises/check.hpp"

namespace head_checks {

inline nn::Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, nn::Rng& rng) {
    nn::Matrix m(rows, cols);
    rng.fill_normal(nn::as_span(m));
    return m;
}

// sum(y .* G) in double: a loss whose gradient with respect to y is the random G.
inline double project(const nn::Matrix& y, const nn::Matrix& g) {
    return (y.cast<double>().array() * g.cast<double>().array()).sum();
}


// z with -inf wherever the lesson's `mask` hides key j from query i (--mask).
inline nn::Matrix masked_by(nn::Matrix z, Mask mask) {
    for (Eigen::Index i = 0; i < z.rows(); ++i)
        for (Eigen::Index j = 0; j < z.cols(); ++j)
            if (masked(mask, static_cast<int>(i), static_cast<int>(j))) z(i, j) = -std::numeric_limits<float>::infinity();
    return z;
}

// z with the entries above the diagonal (the future, under the causal mask) set to -inf.
inline nn::Matrix causal(nn::Matrix z) { return masked_by(std::move(z), Mask::causal); }

// The forward of a Head with the causal mask and the dot score, written out
// here from the layers of common/ so that head_backward is checked on its
// own: fills what Head::backward reads (the projections' outputs, wei, B, T).
inline const nn::Matrix& reference_forward(Head& head, const nn::Matrix& x, int B, int T) {
    head.B = B, head.T = T;
    const nn::Matrix& k = head.key.forward(x);
    const nn::Matrix& q = head.query.forward(x);
    const nn::Matrix& v = head.value.forward(x);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head.head_size));
    head.s.resize(B * T, T);
    head.wei.resize(B * T, T);
    head.out.resize(B * T, head.head_size);
    for (int b = 0; b < B; ++b) {
        head.s.middleRows(b * T, T) = scale * q.middleRows(b * T, T) * k.middleRows(b * T, T).transpose();
        auto wei_b = head.wei.middleRows(b * T, T);
        wei_b = causal(head.s.middleRows(b * T, T));
        nn::softmax_rows(wei_b);
        head.out.middleRows(b * T, T) = wei_b * v.middleRows(b * T, T);
    }
    return head.out;
}

}  // namespace head_checks

TEST_CASE("averaging_matrix for T = 5, and wei x against the average computed by a loop", "[averaging_matrix]") {
    const nn::Matrix wei = averaging_matrix(5);
    check::shape("wei = averaging_matrix(5)", wei, 5, 5);
    check::golden("wei = tril(ones(5, 5)), each row divided by its sum", wei);
    nn::Rng rng(40);
    const nn::Matrix x = head_checks::random_matrix(5, 2, rng);
    nn::Matrix xbow = nn::Matrix::Zero(5, 2);  // the loop: xbow[t] = mean(x[0..t])
    for (Eigen::Index t = 0; t < 5; ++t) {
        for (Eigen::Index i = 0; i <= t; ++i) xbow.row(t) += x.row(i);
        xbow.row(t) /= static_cast<float>(t + 1);
    }
    check::close("wei x, whose row t must be the mean of x[0..t]", wei * x, xbow);
    // The other masks of --mask: the lesson passes its own, so a mask written in
    // as j > i would pass the causal checks above and break --mask.
    nn::Matrix anticausal = nn::Matrix::Zero(4, 4);
    for (Eigen::Index i = 0; i < 4; ++i) anticausal.row(i).tail(4 - i).setConstant(1.0f / static_cast<float>(4 - i));
    check::close("averaging_matrix(4, Mask::anticausal): row t the mean of x[t..T-1], 1/(T-t) where j >= t, else 0",
                 averaging_matrix(4, Mask::anticausal), anticausal);
    check::close("averaging_matrix(4, Mask::none): every entry 1/4, nothing masked", averaging_matrix(4, Mask::none),
                 nn::Matrix::Constant(4, 4, 0.25f));
}

TEST_CASE("Head forward: B = 2 sequences of T = 3, C = 4 channels, hs = 3, causal mask", "[head_forward]") {
    nn::Rng rng(41);
    Head head(4, 3, Mask::causal, Score::dot, rng);
    const nn::Matrix x = head_checks::random_matrix(6, 4, rng);
    const nn::Matrix out = head.forward(x, 2, 3);
    check::shape("out, the head's output (B*T, hs)", out, 6, 3);
    check::shape("wei, the attention weights (B*T, T)", head.wei, 6, 3);
    check::golden("k = key(x), in key.y", head.key.y);
    check::golden("q = query(x), in query.y", head.query.y);
    check::golden("v = value(x), in value.y", head.value.y);
    check::golden("s = q k^T / sqrt(hs) of each sequence, before the mask", head.s);
    check::golden("wei = softmax of each row of s, with -inf where j > i (the future)", head.wei);
    check::golden("out = wei v of each sequence", out);
    // The same head with the lesson's other masks: the mask is the Head's own,
    // not always the causal one.
    for (const Mask mask : {Mask::anticausal, Mask::none}) {
        head.mask = mask;
        head.forward(x, 2, 3);
        const char* which = mask == Mask::anticausal ? "Mask::anticausal, -inf where j < i (the past)"
                                                     : "Mask::none, nothing masked";
        for (int b = 0; b < 2; ++b) {
            nn::Matrix expected = head_checks::masked_by(head.s.middleRows(b * 3, 3), mask);
            nn::softmax_rows(expected);
            check::close(fmt::format("wei of sequence {} with {}: softmax of each row of s", b, which),
                         head.wei.middleRows(b * 3, 3), expected);
        }
    }
}

TEST_CASE("softmax backward of a (4, 4) causal softmax, random upstream gradient", "[softmax_backward]") {
    nn::Rng rng(42);
    nn::Matrix z = head_checks::random_matrix(4, 4, rng);
    auto softmax = [](const nn::Matrix& scores) {  // (4, 4) -> (4, 4), the future masked
        nn::Matrix p = head_checks::causal(scores);
        nn::softmax_rows(p);
        return p;
    };
    const nn::Matrix p = softmax(z);
    const nn::Matrix dp = check::upstream(4, 4);
    nn::Matrix dz = dp;
    softmax_backward(p, dz);
    check::shape("dz, softmax_backward's result", dz, 4, 4);
    check::golden("dz = p * (dp - sum_j dp_j p_j), row by row", dz);
    check::gradient("dz of sum(softmax(z) .* G), G random", [&] { return head_checks::project(softmax(z), dp); },
                    z, dz);
}

TEST_CASE("Head backward: B = 2, T = 3, C = 4, hs = 3, causal mask, random upstream gradient", "[head_backward]") {
    nn::Rng rng(43);
    Head head(4, 3, Mask::causal, Score::dot, rng);
    nn::Matrix x = head_checks::random_matrix(6, 4, rng);
    const nn::Matrix G = check::upstream(6, 3);
    head_checks::reference_forward(head, x, 2, 3);
    const nn::Matrix dx = head.backward(G);
    check::shape("dx, the head's backward (B*T, C)", dx, 6, 4);
    if (head.dv.rows() == 6 && head.dv.cols() == 3) {  // if it is kept in the Head's dv, as the reference does
        nn::Matrix dv(6, 3);
        for (int b = 0; b < 2; ++b) dv.middleRows(b * 3, 3) = head.wei.middleRows(b * 3, 3).transpose() * G.middleRows(b * 3, 3);
        check::close("dv = wei^T dout of each sequence (T, hs), in the Head's dv", head.dv, dv);
    }
    check::golden("dWv: value.backward(dv) with dv = wei^T dout", head.value.weight.grad);
    check::golden("dWq: query.backward(dq) with dq = ds k / sqrt(hs), ds = softmax_backward(wei, dout v^T)",
                  head.query.weight.grad);
    check::golden("dWk: key.backward(dk) with dk = ds^T q / sqrt(hs)", head.key.weight.grad);
    check::golden("dx = the sum of the key, query and value layers' dx", dx);

    auto loss = [&] { return head_checks::project(head_checks::reference_forward(head, x, 2, 3), G); };
    check::gradient("dx of sum(head(x) .* G), G random", loss, x, dx);
    const nn::Matrix dwq = head.query.weight.grad, dwk = head.key.weight.grad, dwv = head.value.weight.grad;
    check::gradient("dWq of sum(head(x) .* G)", loss, head.query.weight.value, dwq);
    check::gradient("dWk of sum(head(x) .* G)", loss, head.key.weight.value, dwk);
    check::gradient("dWv of sum(head(x) .* G)", loss, head.value.weight.value, dwv);
}

TEST_CASE("sinusoidal_table for T = 5 positions of C = 6 channels", "[sinusoidal_table]") {
    const nn::Matrix pe = sinusoidal_table(5, 6);
    check::shape("sinusoidal_table(5, 6)", pe, 5, 6);
    check::golden("PE[pos, 2i] = sin(pos / 10000^(2i/C)), PE[pos, 2i+1] = cos(pos / 10000^(2i/C))", pe);
}
