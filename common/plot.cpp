#include "common/plot.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "common/error.hpp"
#include "common/fileio.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

namespace nn {

namespace {

using Rgb = std::array<unsigned char, 3>;

class Canvas {
public:
    Canvas(int width, int height) : w_(width), h_(height), px_(3 * width * height, 255) {}

    void set(int x, int y, Rgb c) {
        if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
        std::copy(c.begin(), c.end(), px_.begin() + 3 * (y * w_ + x));
    }
    void fill(int x0, int y0, int x1, int y1, Rgb c) {
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) set(x, y, c);
    }
    // A line two pixels thick, by stepping along its longer axis.
    void line(float x0, float y0, float x1, float y1, Rgb c) {
        const int steps = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
        for (int i = 0; i <= steps; ++i) {
            const float t = static_cast<float>(i) / steps;
            const int x = static_cast<int>(std::lround(x0 + t * (x1 - x0)));
            const int y = static_cast<int>(std::lround(y0 + t * (y1 - y0)));
            fill(x, y, x + 2, y + 2, c);
        }
    }
    // Text at (x, y), `scale` pixels per font pixel, using stb_easy_font's quads.
    void text(int x, int y, const std::string& s, Rgb c, int scale = 2) {
        static char buffer[99999];
        const int quads = stb_easy_font_print(0, 0, const_cast<char*>(s.c_str()), nullptr,
                                              buffer, sizeof buffer);
        const float* v = reinterpret_cast<const float*>(buffer);
        for (int q = 0; q < quads; ++q, v += 16) {  // 4 vertices of x, y, z, color
            fill(x + scale * static_cast<int>(v[0]), y + scale * static_cast<int>(v[1]),
                 x + scale * static_cast<int>(v[8]), y + scale * static_cast<int>(v[9]), c);
        }
    }
    static int text_width(const std::string& s, int scale = 2) {
        return scale * stb_easy_font_width(const_cast<char*>(s.c_str()));
    }

    void save(const std::filesystem::path& path) const {
        int length = 0;
        unsigned char* png = stbi_write_png_to_mem(px_.data(), 3 * w_, w_, h_, 3, &length);
        if (png == nullptr) fail("{}: could not encode the PNG", path.string());
        const std::string bytes(reinterpret_cast<char*>(png), static_cast<std::size_t>(length));
        STBIW_FREE(png);
        write_file_atomically(path, bytes);
    }

private:
    int w_, h_;
    std::vector<unsigned char> px_;
};

constexpr Rgb kBlack{0, 0, 0}, kGrey{200, 200, 200};
constexpr std::array<Rgb, 4> kColors{{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}}};

}  // namespace

void write_line_plot(const std::filesystem::path& path, const std::string& title,
                     const std::string& x_label, const std::vector<Series>& series) {
    const int width = 800, height = 500, left = 80, right = 20, top = 50, bottom = 60;
    float xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (const Series& s : series)
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
            ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
        }
    if (!(xmin < xmax)) xmin -= 1, xmax += 1;
    if (!(ymin < ymax)) ymin -= 1, ymax += 1;
    const float pad = 0.05f * (ymax - ymin);
    ymin -= pad, ymax += pad;

    Canvas canvas(width, height);
    const float pw = width - left - right, ph = height - top - bottom;
    auto px = [&](float x) { return left + (x - xmin) / (xmax - xmin) * pw; };
    auto py = [&](float y) { return top + (ymax - y) / (ymax - ymin) * ph; };
    for (int i = 0; i <= 5; ++i) {  // grid lines and tick labels
        const float y = ymin + (ymax - ymin) * i / 5, x = xmin + (xmax - xmin) * i / 5;
        canvas.fill(left, static_cast<int>(py(y)), width - right, static_cast<int>(py(y)) + 1, kGrey);
        canvas.fill(static_cast<int>(px(x)), top, static_cast<int>(px(x)) + 1, height - bottom, kGrey);
        const std::string ylab = fmt::format("{:.2f}", y), xlab = fmt::format("{:g}", std::round(x));
        canvas.text(left - 8 - Canvas::text_width(ylab), static_cast<int>(py(y)) - 6, ylab, kBlack);
        canvas.text(static_cast<int>(px(x)) - Canvas::text_width(xlab) / 2, height - bottom + 8,
                    xlab, kBlack);
    }
    canvas.fill(left, top, left + 1, height - bottom, kBlack);
    canvas.fill(left, height - bottom, width - right, height - bottom + 1, kBlack);
    canvas.text((width - Canvas::text_width(title, 3)) / 2, 12, title, kBlack, 3);
    canvas.text((width - Canvas::text_width(x_label)) / 2, height - 28, x_label, kBlack);
    for (std::size_t k = 0; k < series.size(); ++k) {
        const Series& s = series[k];
        const Rgb c = kColors[k % kColors.size()];
        for (std::size_t i = 1; i < s.x.size(); ++i)
            canvas.line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), c);
        const int ly = top + 10 + 22 * static_cast<int>(k);  // legend, top right
        canvas.fill(width - right - 160, ly + 4, width - right - 130, ly + 8, c);
        canvas.text(width - right - 120, ly, s.name, kBlack);
    }
    canvas.save(path);
}

void write_heatmap(const std::filesystem::path& path, const std::string& title,
                   const Matrix& values, const std::vector<std::string>& row_labels,
                   const std::vector<std::string>& col_labels) {
    // Cells and margins widen to fit labels longer than a character (words).
    int widest_row = 0, widest_col = 0;
    for (const std::string& l : row_labels) widest_row = std::max(widest_row, Canvas::text_width(l));
    for (const std::string& l : col_labels) widest_col = std::max(widest_col, Canvas::text_width(l));
    const int cell = 40, cell_w = std::max(cell, widest_col + 8), left = std::max(60, widest_row + 20), top = 80;
    const int rows = static_cast<int>(values.rows()), cols = static_cast<int>(values.cols());
    const int width = std::max(left + cols * cell_w + 20, Canvas::text_width(title, 2) + 20);
    const int height = top + rows * cell + 20;
    Canvas canvas(width, height);
    canvas.text(10, 10, title, kBlack, 2);
    for (int i = 0; i < rows; ++i) {
        if (i < static_cast<int>(row_labels.size()))
            canvas.text(left - 10 - Canvas::text_width(row_labels[i]), top + i * cell + cell / 2 - 6,
                        row_labels[i], kBlack);
        for (int j = 0; j < cols; ++j) {
            const float v = std::clamp(values(i, j), 0.0f, 1.0f);
            const auto shade = static_cast<unsigned char>(255 - std::lround(v * 255));
            canvas.fill(left + j * cell_w, top + i * cell, left + (j + 1) * cell_w - 1,
                        top + (i + 1) * cell - 1, Rgb{shade, shade, 255});
            const std::string number = fmt::format("{:.2f}", v);
            canvas.text(left + j * cell_w + 4, top + i * cell + cell / 2 - 3, number,
                        v > 0.5f ? Rgb{255, 255, 255} : kBlack, 1);
        }
    }
    for (int j = 0; j < cols && j < static_cast<int>(col_labels.size()); ++j)
        canvas.text(left + j * cell_w + (cell_w - Canvas::text_width(col_labels[j])) / 2, top - 24, col_labels[j], kBlack);
    canvas.save(path);
}

void write_signed_heatmap(const std::filesystem::path& path, const std::string& title, const Matrix& values,
                          const std::string& x_label, const std::string& y_label) {
    const int rows = static_cast<int>(values.rows()), cols = static_cast<int>(values.cols());
    const int cell = std::clamp(640 / std::max(cols, 1), 2, 24), left = 60, top = 64;
    const int width = std::max(left + cols * cell + 20, Canvas::text_width(title) + 20);
    const int height = top + rows * cell + 50;
    Canvas canvas(width, height);
    canvas.text(10, 10, title, kBlack);
    for (int i = 0; i < rows; ++i) {
        if (i % 5 == 0) {
            const std::string label = std::to_string(i);
            canvas.text(left - 8 - Canvas::text_width(label), top + i * cell + cell / 2 - 6, label, kBlack);
        }
        for (int j = 0; j < cols; ++j) {
            const float v = std::clamp(values(i, j), -1.0f, 1.0f);
            const auto fade = static_cast<unsigned char>(255 - std::lround(std::abs(v) * 255));
            const Rgb c = v >= 0 ? Rgb{255, fade, fade} : Rgb{fade, fade, 255};  // red above 0, blue below
            canvas.fill(left + j * cell, top + i * cell, left + (j + 1) * cell, top + (i + 1) * cell, c);
        }
    }
    for (int j = 0; j < cols; j += std::max(1, cols / 8)) {
        const std::string label = std::to_string(j);
        canvas.text(left + j * cell, top + rows * cell + 6, label, kBlack);
    }
    canvas.text(left + (cols * cell - Canvas::text_width(x_label)) / 2, top + rows * cell + 26, x_label, kBlack);
    canvas.text(4, top - 22, y_label, kBlack);
    canvas.save(path);
}

void write_heatmap_grid(const std::filesystem::path& path, const std::string& title,
                        const std::vector<Matrix>& panels, int grid_cols,
                        const std::vector<std::string>& panel_titles,
                        const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels) {
    if (panels.empty() || grid_cols < 1) fail("{}: nothing to draw", path.string());
    const int cell = 12, label = 16, gap = 24, head = 40;
    const int rows = static_cast<int>(panels[0].rows()), cols = static_cast<int>(panels[0].cols());
    const int grid_rows = (static_cast<int>(panels.size()) + grid_cols - 1) / grid_cols;
    const int panel_w = label + cols * cell, panel_h = 16 + label + rows * cell;  // title, column labels, cells
    const int width = std::max(gap + grid_cols * (panel_w + gap), Canvas::text_width(title, 2) + 20);
    const int height = head + grid_rows * (panel_h + gap);
    Canvas canvas(width, height);
    canvas.text(10, 10, title, kBlack, 2);
    for (std::size_t p = 0; p < panels.size(); ++p) {
        const int x0 = gap + static_cast<int>(p % grid_cols) * (panel_w + gap);
        const int y0 = head + static_cast<int>(p / grid_cols) * (panel_h + gap);
        if (p < panel_titles.size()) canvas.text(x0 + label, y0, panel_titles[p], kBlack, 1);
        const int cx = x0 + label, cy = y0 + 16 + label;  // the cells' top left
        for (int j = 0; j < cols && j < static_cast<int>(col_labels.size()); ++j)
            canvas.text(cx + j * cell + 3, cy - label + 2, col_labels[j], kBlack, 1);
        for (int i = 0; i < rows; ++i) {
            if (i < static_cast<int>(row_labels.size())) canvas.text(x0 + 2, cy + i * cell + 2, row_labels[i], kBlack, 1);
            for (int j = 0; j < cols; ++j) {
                const float v = std::clamp(panels[p](i, j), 0.0f, 1.0f);
                const auto shade = static_cast<unsigned char>(255 - std::lround(v * 255));
                canvas.fill(cx + j * cell, cy + i * cell, cx + (j + 1) * cell - 1, cy + (i + 1) * cell - 1,
                            Rgb{shade, shade, 255});
            }
        }
    }
    canvas.save(path);
}

}  // namespace nn
