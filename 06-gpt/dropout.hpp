// 06-gpt: dropout, one of the pieces this lesson adds: a random share p of
// the values zeroed while training, the rest scaled by 1 / (1 - p), and the
// gradient sent back through the same mask. Its own file because attention
// (attention.hpp, on the attention weights) and the layers (layers.hpp, on
// their outputs) both use it, and 07 and 08 take it from here unchanged.
#pragma once
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/random.hpp"
#include "common/tensor.hpp"
#include "common/threads.hpp"

// A dropout mask, one bit per entry of a (rows, cols) matrix (for attention,
// the (B*nh*T, T) weights): 1 keeps the value (scaled by keep = 1 / (1 - p)),
// 0 drops it. The bits go column by column, the order in which Dropout draws
// them, so drawing fills whole words one after the other.
struct DropMask {
    std::vector<std::uint64_t> bits;  // entry (i, j) is bit j * rows + i
    Eigen::Index rows = 0, cols = 0;
    float keep = 1.0f;
    void resize(Eigen::Index rows_, Eigen::Index cols_) {
        rows = rows_, cols = cols_;
        bits.assign(static_cast<std::size_t>((rows * cols + 63) / 64), 0);
    }
    bool kept(Eigen::Index i, Eigen::Index j) const {
        const auto k = static_cast<std::size_t>(j * rows + i);
        return (bits[k >> 6] >> (k & 63)) & 1;
    }
    // The bits of entries (i .. i + 63, j): up to 64 rows of column j.
    std::uint64_t column_bits(Eigen::Index i, Eigen::Index j) const {
        const auto k = static_cast<std::size_t>(j * rows + i);
        const std::size_t word = k >> 6, shift = k & 63;
        std::uint64_t v = bits[word] >> shift;
        if (shift != 0 && word + 1 < bits.size()) v |= bits[word + 1] << (64 - shift);
        return v;
    }
    // w (R, cols) *= rows [row0, row0 + R) of the mask, in tiles of 64 x 64:
    // the tile's 64 column words are turned into 64 row words (a transpose
    // of bits), so that each row is then read and written in order.
    // With `causal`, only entries (i, j <= i), the rest being zero weights.
    void apply(Eigen::Ref<nn::Matrix> w, Eigen::Index row0, bool causal = false) const {
        const Eigen::Index tiles = (w.rows() + 63) / 64;
#pragma omp parallel for schedule(static) if (w.size() >= nn::kParallelGrain)
        for (Eigen::Index t = 0; t < tiles; ++t) {
            const Eigen::Index i0 = 64 * t, m = std::min<Eigen::Index>(64, w.rows() - i0);
            const Eigen::Index n = causal ? std::min(i0 + m, w.cols()) : w.cols();
            for (Eigen::Index j0 = 0; j0 < n; j0 += 64) {
                const Eigen::Index width = std::min<Eigen::Index>(64, n - j0);
                std::uint64_t tile[64] = {};  // tile[c]: rows i0 .. i0 + 63 of column j0 + c
                for (Eigen::Index c = 0; c < width; ++c) tile[c] = column_bits(row0 + i0, j0 + c);
                transpose_bits(tile);  // tile[r]: columns j0 .. j0 + 63 of row i0 + r
                for (Eigen::Index r = 0; r < m; ++r) {
                    float* row = &w(i0 + r, j0);
                    const Eigen::Index end = causal ? std::min(width, i0 + r + 1 - j0) : width;
                    for (Eigen::Index c = 0; c < end; ++c) {  // without a branch: the bits are random
                        const auto kept = static_cast<std::uint32_t>((tile[r] >> c) & 1);
                        row[c] = std::bit_cast<float>(std::bit_cast<std::uint32_t>(row[c] * keep) & (0u - kept));
                    }
                }
            }
        }
    }

    // a (64 x 64 bits, a[c] bit r = entry (r, c)) -> its transpose, a[r] bit c
    // = entry (r, c): swaps the off-diagonal 32 x 32 blocks, then the 16 x 16
    // blocks inside each, and so on down to single bits.
    static void transpose_bits(std::uint64_t a[64]) {
        std::uint64_t mask = 0x00000000ffffffffULL;  // the low half of each word at this size
        for (int size = 32; size != 0; size >>= 1, mask ^= mask << size)
            for (int k = 0; k < 64; k = ((k | size) + 1) & ~size) {  // k without bit `size`
                const std::uint64_t swap = ((a[k] >> size) ^ a[k | size]) & mask;
                a[k] ^= swap << size;
                a[k | size] ^= swap;
            }
    }
};

// A new (rows, cols) dropout mask, drawn from rng column by column: one
// uniform draw u per value, kept when u is not below p (so with probability
// 1 - p), and the kept values scaled by keep = 1 / (1 - p) when the mask is
// applied (inverted dropout: the mean of each value is unchanged). The draws
// come 64 at a time, one word of bits: rng.fill_uniform gives the same
// numbers as 64 calls of rng.uniform(), several times faster.
// Exercise: dropout_mask
inline void draw_dropout_mask(DropMask& mask, Eigen::Index rows, Eigen::Index cols, float p, nn::Rng& rng) {
    mask.resize(rows, cols);
    mask.keep = 1.0f / (1.0f - p);
    const auto n = static_cast<std::size_t>(rows * cols);
    std::array<float, 64> u;
    for (std::size_t k0 = 0; k0 < n; k0 += 64) {  // bit k = entry (k % rows, k / rows)
        const std::size_t m = std::min<std::size_t>(64, n - k0);
        rng.fill_uniform(std::span(u).first(m));
        std::uint64_t word = 0;
        for (std::size_t c = 0; c < m; ++c) word |= std::uint64_t{!(u[c] < p)} << c;  // no branch: the draws are random
        mask.bits[k0 >> 6] = word;
    }
}

// dy (N, D), the forward's mask -> dx (N, D) = dy * mask: through the same
// mask as the forward, dy * keep where the value was kept, 0 where dropped.
// Exercise: dropout_backward
inline void dropout_backward(const nn::Matrix& dy, const DropMask& mask, nn::Matrix& dx) {
    nn::by_rows(dx) = dy;  // a copy, the threads sharing its rows
    mask.apply(dx, 0);
}

// A random probability that each value is zeroed while training.
// Inverted dropout: the kept values are scaled by 1 / (1 - p), so nothing
// needs rescaling at evaluation time, when dropout does nothing. The mask is
// kept as bits (DropMask, above), 32 times smaller than floats.
struct Dropout {
    float p = 0.0f;
    bool training = true;
    nn::Rng* rng = nullptr;  // the model's: one stream for all masks, saved in checkpoints
    std::function<void(DropMask&, float p)> draw;  // if set, draws the masks' bits instead (08: per sequence)
    DropMask mask;           // (N, D): which values are kept
    nn::Matrix dx;

    bool active() const { return training && p > 0.0f; }
    // Draws a new (rows, cols) mask: draw_dropout_mask, or `draw`'s bits at the same scale.
    void draw_mask(Eigen::Index rows, Eigen::Index cols) {
        if (!draw) return draw_dropout_mask(mask, rows, cols, p, *rng);
        mask.resize(rows, cols);
        mask.keep = 1.0f / (1.0f - p);
        draw(mask, p);
    }
    // x (N, D) *= mask, in place, with a new mask (x is a layer's output that
    // nothing else reads).
    void forward(nn::Matrix& x) {
        if (!active()) return;
        draw_mask(x.rows(), x.cols());
        mask.apply(x, 0);
    }
    // dy (N, D) -> dx (N, D) = dy * mask
    const nn::Matrix& backward(const nn::Matrix& dy) {
        if (!active()) return dy;
        dropout_backward(dy, mask, dx);
        return dx;
    }
};
