// The sparse candidates of a tile of consecutive query rows, as columns shared by the rows
// (kernels::TileColumn), for the tiled sparse kernel: one SIMD lane per row.
//
// Row i's tokens are the keys i - o for the relative offsets o of the window and the
// log-stride (the same offsets for every row, so a column reads `lanes` consecutive keys
// of the K/V key tiles), plus the global tokens that neither of those already holds. Its
// blocks are those of for_each_landmark_block. A column's lane mask says which rows hold
// it; expanding the columns lane by lane gives exactly PatternBuilder's sets (tested).
// Only the mean landmark mode: kMass takes the row kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt::attn {

class TilePattern {
 public:
  // lanes: rows per tile (<= 32). The offsets are fixed by the config and seq.
  TilePattern(std::size_t seq, const SparseConfig& config, std::size_t lanes);

  // Whether the tiled kernel serves this config (mean landmarks, a window of at most
  // kMaxWindow: wider windows make columns mostly empty).
  static bool supports(const SparseConfig& config);
  static constexpr std::size_t kMaxWindow = 256;

  // Builds the columns of rows [row0, min(row0 + lanes, seq)).
  void build(std::size_t row0);
  kernels::TileColumns columns() const { return {relative_, globals_, blocks_}; }
  // Columns of any tile, at most: bounds the kernel's scratch.
  std::size_t max_columns() const;

 private:
  bool offset_is_relative(std::int64_t o) const;

  std::size_t seq_, lanes_;
  SparseConfig config_;
  std::vector<std::int64_t> offsets_;     // all relative offsets (window, then strides)
  std::vector<std::size_t> globals_unique_;
  std::vector<kernels::TileColumn> relative_, globals_, blocks_;
};

}  // namespace rvt::attn
