// Small PNG plots, drawn into an RGB buffer and written with stb_image_write:
// loss curves (--plot), attention heatmaps (--attention-map) and signed tables
// (07's --plot-positions).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "common/tensor.hpp"

namespace nn {

struct Series {
    std::string name;
    std::vector<float> x, y;
};

// Draws each series as a line against shared axes; writes `path` atomically.
void write_line_plot(const std::filesystem::path& path, const std::string& title,
                     const std::string& x_label, const std::vector<Series>& series);

// Draws `values` (rows x cols, each in [0, 1]) as a grid of shaded cells with
// the given row and column labels (one character each is usual).
void write_heatmap(const std::filesystem::path& path, const std::string& title,
                   const Matrix& values, const std::vector<std::string>& row_labels,
                   const std::vector<std::string>& col_labels);

// Draws `panels` (each rows x cols, values in [0, 1]) as a grid of small
// heatmaps, `grid_cols` panels to a row, panel i titled panel_titles[i]; every
// panel has the row labels down its left and the column labels along its top.
// For many maps at once (layers x heads), so no numbers in the cells.
void write_heatmap_grid(const std::filesystem::path& path, const std::string& title,
                        const std::vector<Matrix>& panels, int grid_cols,
                        const std::vector<std::string>& panel_titles,
                        const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels);

// Draws `values` (rows x cols, each in [-1, 1]) as small cells without
// numbers: red for positive, blue for negative, white at 0; every fifth row
// and a few columns numbered from 0.
void write_signed_heatmap(const std::filesystem::path& path, const std::string& title, const Matrix& values,
                          const std::string& x_label, const std::string& y_label);

}  // namespace nn
