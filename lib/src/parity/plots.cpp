#include "rvt/core/text.hpp"
#include "rvt/parity/plots.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "rvt/attention/pattern.hpp"
#include "rvt/report/svg.hpp"

namespace rvt::parity {
namespace {

using report::CellLayer;
using report::Rgb;
using report::Svg;

const std::string kWindow = "#2b6cb0", kGlobal = "#dd6b20", kStride = "#2f855a", kLandmark = "#d6bcfa";
const std::string kAxis = "#333333", kGrid = "#bbbbbb";

std::string tick_label(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e9) return format_double("%.0f", v);
  return format_double("%g", v);
}

// A square-ish panel: frame, integer position ticks on both axes (0..n), axis labels.
void position_axes(Svg& svg, double x0, double y0, double w, double h, std::size_t n_x, std::size_t n_y,
                   const std::string& x_label, const std::string& y_label) {
  svg.rect(x0, y0, w, h, "none", "stroke=\"" + kAxis + "\" stroke-width=\"1\"");
  for (double t : report::nice_ticks(0, static_cast<double>(n_x), 6)) {
    const double x = x0 + w * t / static_cast<double>(std::max<std::size_t>(n_x, 1));
    svg.line(x, y0 + h, x, y0 + h + 5, kAxis);
    svg.text(x, y0 + h + 18, tick_label(t), 11, "middle");
  }
  for (double t : report::nice_ticks(0, static_cast<double>(n_y), 6)) {
    const double y = y0 + h * t / static_cast<double>(std::max<std::size_t>(n_y, 1));
    svg.line(x0 - 5, y, x0, y, kAxis);
    svg.text(x0 - 8, y + 4, tick_label(t), 11, "end");
  }
  svg.text(x0 + w / 2, y0 + h + 36, x_label, 13, "middle");
  svg.vtext(x0 - 46, y0 + h / 2, y_label, 13);
}

// Vertical colour bar for log10 values in [lo, hi] (whole decades).
void log_colour_bar(Svg& svg, double x, double y, double h, int lo, int hi, const std::string& label) {
  const int steps = 64;
  for (int s = 0; s < steps; ++s) {
    const double t = 1.0 - (s + 0.5) / steps;
    svg.rect(x, y + h * s / steps, 16, h / steps + 0.5, report::viridis(t).hex());
  }
  svg.rect(x, y, 16, h, "none", "stroke=\"" + kAxis + "\" stroke-width=\"1\"");
  for (int e = lo; e <= hi; ++e) {
    const double yy = y + h * (1.0 - static_cast<double>(e - lo) / std::max(1, hi - lo));
    svg.line(x + 16, yy, x + 21, yy, kAxis);
    svg.text(x + 24, yy + 4, "1e" + std::to_string(e), 11);
  }
  svg.text(x + 8, y - 10, label, 12, "middle");
}

std::string level_colour(double log_value, int lo, int hi, int levels = 48) {
  double t = (log_value - lo) / std::max(1, hi - lo);
  t = std::clamp(t, 0.0, 1.0);
  t = std::round(t * (levels - 1)) / (levels - 1);  // quantised: one <path> per level
  return report::viridis(t).hex();
}

std::string config_text(const attn::SparseConfig& c) {
  std::string g;
  for (std::size_t x : c.globals) g += (g.empty() ? "" : ",") + std::to_string(x);
  return "W=" + std::to_string(c.window) + ", B=" + std::to_string(c.block_size) + ", globals [" + g + "], log-stride " +
         (c.log_stride ? "on" : "off") + ", landmarks " +
         (c.landmarks ? attn::landmark_mode_name(c.landmark_mode) : "off") + (c.causal ? ", causal" : ", non-causal");
}

void legend_item(Svg& svg, double x, double y, const std::string& colour, const std::string& label) {
  svg.rect(x, y - 10, 14, 14, colour, "stroke=\"#555555\" stroke-width=\"0.5\"");
  svg.text(x + 20, y + 2, label, 12);
}

}  // namespace

std::string pattern_svg(std::size_t seq, const attn::SparseConfig& config, std::size_t head, const std::string& caption) {
  const std::size_t n = std::min(seq, kMaxPatternRows);
  const double side = 512.0, x0 = 80.0, y0 = 70.0;
  Svg svg(x0 + side + 250.0, y0 + side + 60.0);
  svg.title("sparse attention pattern");
  svg.text(x0, 24, "Sparse pattern of head " + std::to_string(head) + ": which keys each query sees (N=" +
                       std::to_string(seq) + (n < seq ? ", first " + std::to_string(n) + " shown" : "") + ")",
           15, "start", "font-weight=\"bold\"");
  svg.text(x0, 44, config_text(config), 12);
  if (!caption.empty()) svg.text(x0, 60, caption, 12);

  CellLayer blocks, window, tokens;
  if (n > 0) {
    attn::PatternBuilder p(seq, config);
    for (std::size_t i = 0; i < n; ++i) {
      p.build(i);
      for (std::uint32_t b : p.blocks()) {
        const std::size_t begin = b * config.block_size;
        const std::size_t end = std::min({begin + config.block_size, seq, n});
        if (begin < end) blocks.run(begin, i, end - begin, kLandmark);
      }
      const std::size_t lo = i >= config.window ? i - config.window : 0;
      const std::size_t hi = config.causal ? i : std::min(i + config.window, seq - 1);
      if (lo < n) window.run(lo, i, std::min(hi, n - 1) - lo + 1, kWindow);
      for (std::uint32_t j : p.tokens()) {
        if ((j >= lo && j <= hi) || j >= n) continue;
        const bool global = std::find(config.globals.begin(), config.globals.end(), j) != config.globals.end();
        tokens.cell(j, i, global ? kGlobal : kStride);
      }
    }
  }
  const double cell = side / static_cast<double>(std::max<std::size_t>(n, 1));
  position_axes(svg, x0, y0, side, side, n, n, "key position j", "query position i");
  blocks.draw(svg, x0, y0, cell, cell);
  window.draw(svg, x0, y0, cell, cell);
  tokens.draw(svg, x0, y0, cell, cell, "", cell < 2.0 ? 1.0 : 0.0);  // keep 1-cell columns visible

  const double lx = x0 + side + 24;
  svg.text(lx, y0 + 6, "candidate kind", 13, "start", "font-weight=\"bold\"");
  legend_item(svg, lx, y0 + 30, kWindow, "local window");
  legend_item(svg, lx, y0 + 52, kGlobal, "global token");
  legend_item(svg, lx, y0 + 74, kStride, "log-stride token");
  legend_item(svg, lx, y0 + 96, kLandmark, "landmark block");
  svg.text(lx, y0 + 118, "(its token span; the block", 11);
  svg.text(lx, y0 + 132, "mean is one softmax entry)", 11);
  svg.text(lx, y0 + 154, "white: not attended", 11);
  return svg.str();
}

std::string attention_maps_svg(const WeightMap& dense, const WeightMap& sparse, std::size_t head,
                               const std::string& caption) {
  const std::size_t n = std::min(dense.rows, sparse.rows);
  const std::size_t bin = std::max<std::size_t>(1, (n + 127) / 128);
  const std::size_t cells = (n + bin - 1) / bin;
  const double side = 400.0, x0 = 80.0, y0 = 100.0, gap = 90.0;
  constexpr int lo = -4, hi = 0;
  Svg svg(x0 + 2 * side + gap + 120.0, y0 + side + 60.0);
  svg.title("dense vs sparse attention weights");
  svg.text(x0, 24, "Attention weights of head " + std::to_string(head) + ", dense vs sparse (first " +
                       std::to_string(n) + " positions)",
           15, "start", "font-weight=\"bold\"");
  svg.text(x0, 44,
           "sparse: effective weight per key (a landmark's weight spread over its block's tokens); " +
               std::string(bin > 1 ? "mean of " + std::to_string(bin) + "x" + std::to_string(bin) + " cells" : "one cell per key"),
           12);
  if (!caption.empty()) svg.text(x0, 60, caption, 12);
  const double cell = side / static_cast<double>(std::max<std::size_t>(cells, 1));
  for (int panel = 0; panel < 2; ++panel) {
    const WeightMap& m = panel == 0 ? dense : sparse;
    const double px = x0 + panel * (side + gap);
    CellLayer layer;
    for (std::size_t bi = 0; bi < cells; ++bi) {
      for (std::size_t bj = 0; bj < cells; ++bj) {
        double sum = 0.0;
        std::size_t count = 0;
        for (std::size_t i = bi * bin; i < std::min(n, (bi + 1) * bin); ++i) {
          for (std::size_t j = bj * bin; j < std::min(n, (bj + 1) * bin); ++j) {
            sum += m.at(i, j);
            ++count;
          }
        }
        const double w = count ? sum / static_cast<double>(count) : 0.0;
        if (w >= 1e-4) layer.cell(bj, bi, level_colour(std::log10(w), lo, hi));
      }
    }
    layer.draw(svg, px, y0, cell, cell);
    position_axes(svg, px, y0, side, side, n, n, "key position j", "query position i");
    svg.text(px + side / 2, y0 - 10, panel == 0 ? "dense (exact softmax)" : "sparse (effective weights)", 13, "middle",
             "font-weight=\"bold\"");
  }
  log_colour_bar(svg, x0 + 2 * side + gap + 20, y0 + 20, side - 40, lo, hi, "weight");
  svg.text(x0 + 2 * side + gap + 10, y0 + side + 10, "< 1e-4: white", 11);
  return svg.str();
}

std::string error_heatmap_svg(const std::vector<double>& map, std::size_t seq, std::size_t heads,
                              const std::string& caption) {
  const std::size_t bin = std::max<std::size_t>(1, (seq + 255) / 256);
  const std::size_t cols = (seq + bin - 1) / bin;
  const double width = 768.0, x0 = 80.0, y0 = 80.0;
  const double row_h = std::clamp(320.0 / static_cast<double>(std::max<std::size_t>(heads, 1)), 6.0, 40.0);
  const double height = row_h * static_cast<double>(heads);
  double max_err = 0.0, min_pos = std::numeric_limits<double>::infinity();
  for (double e : map) {
    if (!std::isfinite(e)) continue;
    max_err = std::max(max_err, e);
    if (e > 0.0) min_pos = std::min(min_pos, e);
  }
  int hi = max_err > 0.0 ? static_cast<int>(std::ceil(std::log10(max_err))) : 0;
  int lo = std::isfinite(min_pos) ? static_cast<int>(std::floor(std::log10(min_pos))) : hi - 1;
  lo = std::max(lo, hi - 8);
  if (lo >= hi) lo = hi - 1;

  Svg svg(x0 + width + 130.0, y0 + height + 70.0);
  svg.title("error heatmap");
  svg.text(x0, 24, "Max |sparse - dense| per (position, head)", 15, "start", "font-weight=\"bold\"");
  svg.text(x0, 44,
           std::string(bin > 1 ? "max over bins of " + std::to_string(bin) + " positions; " : "") +
               "white: exactly 0, red: non-finite",
           12);
  if (!caption.empty()) svg.text(x0, 60, caption, 12);
  CellLayer layer;
  for (std::size_t h = 0; h < heads; ++h) {
    for (std::size_t c = 0; c < cols; ++c) {
      double e = 0.0;
      for (std::size_t t = c * bin; t < std::min(seq, (c + 1) * bin); ++t) {
        const double x = map[t * heads + h];
        e = std::isfinite(x) ? std::max(e, x) : std::numeric_limits<double>::infinity();
      }
      if (!std::isfinite(e)) {
        layer.cell(c, h, "#e53e3e");
      } else if (e > 0.0) {
        layer.cell(c, h, level_colour(std::log10(e), lo, hi));
      }
    }
  }
  layer.draw(svg, x0, y0, width / static_cast<double>(std::max<std::size_t>(cols, 1)), row_h);
  svg.rect(x0, y0, width, height, "none", "stroke=\"" + kAxis + "\" stroke-width=\"1\"");
  for (double t : report::nice_ticks(0, static_cast<double>(seq), 8)) {
    const double x = x0 + width * t / static_cast<double>(std::max<std::size_t>(seq, 1));
    svg.line(x, y0 + height, x, y0 + height + 5, kAxis);
    svg.text(x, y0 + height + 18, tick_label(t), 11, "middle");
  }
  const std::size_t label_every = std::max<std::size_t>(1, heads / 16);
  for (std::size_t h = 0; h < heads; h += label_every) {
    svg.text(x0 - 8, y0 + row_h * (static_cast<double>(h) + 0.5) + 4, std::to_string(h), 11, "end");
  }
  svg.text(x0 + width / 2, y0 + height + 38, "query position", 13, "middle");
  svg.vtext(x0 - 40, y0 + height / 2, "head", 13);
  log_colour_bar(svg, x0 + width + 30, y0 + 16, std::max(height - 16, 120.0), lo, hi, "|err|");
  return svg.str();
}

std::string sweep_svg(const std::vector<SweepPoint>& points, const std::string& caption) {
  const double w = 600.0, h = 400.0, x0 = 90.0, y0 = 80.0;
  const std::size_t listed = std::min<std::size_t>(points.size(), 40);
  const double table_h = 110.0 + 15.0 * static_cast<double>(listed);
  Svg svg(x0 + w + 380.0, std::max(y0 + h + 70.0, y0 + table_h));
  svg.title("sweep: accuracy vs sparsity");
  svg.text(x0, 24, "Sweep: accuracy vs sparsity (one point per setting)", 15, "start", "font-weight=\"bold\"");
  if (!caption.empty()) svg.text(x0, 44, caption, 12);
  double lo_s = 1.0, hi_s = 0.0, lo_e = std::numeric_limits<double>::infinity(), hi_e = 0.0;
  for (const SweepPoint& p : points) {
    lo_s = std::min(lo_s, p.sparsity);
    hi_s = std::max(hi_s, p.sparsity);
    if (std::isfinite(p.rel_l1) && p.rel_l1 > 0.0) {
      lo_e = std::min(lo_e, p.rel_l1);
      hi_e = std::max(hi_e, p.rel_l1);
    }
  }
  if (!(hi_s > lo_s)) {
    lo_s = std::max(0.0, lo_s - 0.05);
    hi_s = std::min(1.0, hi_s + 0.05);
  }
  const double pad = (hi_s - lo_s) * 0.08;
  lo_s = std::max(0.0, lo_s - pad);
  hi_s = std::min(1.0, hi_s + pad);
  int e_lo = std::isfinite(lo_e) ? static_cast<int>(std::floor(std::log10(lo_e))) : -3;
  int e_hi = hi_e > 0.0 ? static_cast<int>(std::ceil(std::log10(hi_e))) : 0;
  if (e_hi <= e_lo) e_hi = e_lo + 1;
  auto px = [&](double s) { return x0 + w * (s - lo_s) / (hi_s - lo_s); };
  auto py = [&](double e) {
    const double l = e > 0.0 && std::isfinite(e) ? std::log10(e) : e_lo;
    return y0 + h * (1.0 - (std::clamp(l, double(e_lo), double(e_hi)) - e_lo) / (e_hi - e_lo));
  };
  svg.rect(x0, y0, w, h, "none", "stroke=\"" + kAxis + "\" stroke-width=\"1\"");
  for (double t : report::nice_ticks(lo_s, hi_s, 6)) {
    svg.line(px(t), y0, px(t), y0 + h, kGrid, 0.5);
    svg.text(px(t), y0 + h + 18, format_double("%.2f", t), 11, "middle");
  }
  for (int e = e_lo; e <= e_hi; ++e) {
    const double y = y0 + h * (1.0 - static_cast<double>(e - e_lo) / (e_hi - e_lo));
    svg.line(x0, y, x0 + w, y, kGrid, 0.5);
    svg.text(x0 - 8, y + 4, "1e" + std::to_string(e), 11, "end");
  }
  svg.text(x0 + w / 2, y0 + h + 40, "sparsity (1 - edges / dense edges): further right = cheaper", 13, "middle");
  svg.vtext(x0 - 56, y0 + h / 2, "rel_l1 vs dense (log): lower = closer", 13);
  auto dot = [&](double x, double y, double r, const std::string& fill, const std::string& stroke) {
    svg.raw("<circle cx=\"" + report::num(x) + "\" cy=\"" + report::num(y) + "\" r=\"" + report::num(r) + "\" fill=\"" +
            fill + "\"" + (stroke.empty() ? "" : " stroke=\"" + stroke + "\" stroke-width=\"2\"") + "/>\n");
  };
  for (std::size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    const double x = px(p.sparsity), y = py(p.rel_l1);
    if (p.best) dot(x, y, 10, "none", "#e53e3e");
    dot(x, y, 5, p.pass ? kStride : "#a0aec0", "");
    // Numbers, not names, next to the points: neighbours differ by one axis and would
    // overprint; alternate above/below to keep them apart. The table says which is which.
    if (i < listed) svg.text(x + 7, y + (i % 2 ? 14 : -6), std::to_string(i + 1), 10);
  }
  const double lx = x0 + w + 30;
  svg.text(lx, y0 + 6, "setting", 13, "start", "font-weight=\"bold\"");
  dot(lx + 7, y0 + 24, 5, kStride, "");
  svg.text(lx + 20, y0 + 28, "passes the gates", 12);
  dot(lx + 7, y0 + 44, 5, "#a0aec0", "");
  svg.text(lx + 20, y0 + 48, "fails a gate", 12);
  dot(lx + 7, y0 + 66, 9, "none", "#e53e3e");
  svg.text(lx + 20, y0 + 70, "best: passing, highest sparsity", 12);
  svg.text(lx, y0 + 98, "#   setting", 11, "start", "font-weight=\"bold\"");
  svg.text(lx + 250, y0 + 98, "sparsity  rel_l1", 11, "start", "font-weight=\"bold\"");
  for (std::size_t i = 0; i < listed; ++i) {
    const SweepPoint& p = points[i];
    const double y = y0 + 114 + 15.0 * static_cast<double>(i);
    const std::string weight = p.best ? " font-weight=\"bold\"" : "";
    svg.text(lx, y, std::to_string(i + 1), 11, "start", weight.empty() ? "" : weight.substr(1));
    svg.text(lx + 24, y, p.label, 11, "start", weight.empty() ? "" : weight.substr(1));
    svg.text(lx + 250, y, format_double("%.3f", p.sparsity) + "  " + format_double("%.3g", p.rel_l1), 11, "start",
             weight.empty() ? "" : weight.substr(1));
  }
  if (listed < points.size()) {
    svg.text(lx, y0 + 114 + 15.0 * static_cast<double>(listed), "... " + std::to_string(points.size() - listed) + " more",
             11);
  }
  return svg.str();
}

}  // namespace rvt::parity
