// The pictures of `parity --plot-dir`: SVG documents a person can open in a browser.
//
//   pattern_svg         which keys each query of one head sees: window, global and stride
//                       tokens, landmark blocks as their token span in a lighter colour
//   attention_maps_svg  dense and effective sparse softmax weights side by side (log colour)
//   error_heatmap_svg   max |sparse - dense| over (position, head), log colour
//   sweep_svg           the sweep's accuracy/sparsity trade-off, passing settings marked
//
// Large inputs are reduced, never refused: patterns show at most the first 512 queries and
// keys, maps are pooled to at most 128 x 128 cells (mean weight), heatmaps to at most 256
// position bins (max error).
#pragma once

#include <string>
#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/parity/oracle.hpp"

namespace rvt::parity {

inline constexpr std::size_t kMaxPatternRows = 512;

std::string pattern_svg(std::size_t seq, const attn::SparseConfig& config, std::size_t head, const std::string& caption);

std::string attention_maps_svg(const WeightMap& dense, const WeightMap& sparse, std::size_t head,
                               const std::string& caption);

// map: [seq][heads] row-major (metrics::max_abs_err_map).
std::string error_heatmap_svg(const std::vector<double>& map, std::size_t seq, std::size_t heads,
                              const std::string& caption);

struct SweepPoint {
  std::string label;  // "w16 b8"
  double sparsity = 0.0, rel_l1 = 0.0;
  bool pass = false, best = false;
};
std::string sweep_svg(const std::vector<SweepPoint>& points, const std::string& caption);

}  // namespace rvt::parity
