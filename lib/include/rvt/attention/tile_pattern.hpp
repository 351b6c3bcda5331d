// The sparse candidates of a tile of consecutive query rows, as columns shared by the rows
// (kernels::TileColumn), for the tiled sparse kernel: one SIMD lane per row.
//
// Row i's tokens are the keys i - o for the relative offsets o of the window and the
// log-stride (the same offsets for every row, so a column reads `lanes` consecutive keys
// of the K/V key tiles), plus the global tokens that neither of those already holds. Its
// blocks are those of for_each_landmark_block, less (LandmarkMode::kMass) those its tokens
// cover. A column's lane mask says which rows hold it; expanding the columns lane by lane
// gives exactly PatternBuilder's sets (tested).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt::attn {

// Which rows each tile of the tiled kernel holds: row j at key position j + shift, tile t
// at positions [t * lanes, (t + 1) * lanes), so the first tile holds lanes - shift rows.
// Causal rows share their landmark blocks from a row that ends a block (i + 1 a multiple
// of B) to the row before the next one ends; with landmarks and lanes dividing B, shift 1
// starts every later tile at such a row, so no tile holds rows of two block sets (their
// union made ~1.6 of 6.4 block columns per tile at N = 1024, bench preset, columns used by
// one lane that cost what a full one does). K/V key tiles take the same shift, so relative
// columns keep the alignment of unshifted tiles (kernels::SparseTileArgs::key_shift).
struct TileGrid {
  std::size_t seq = 0, lanes = 1, shift = 0;

  static TileGrid for_config(std::size_t seq, const SparseConfig& config, std::size_t lanes);
  std::size_t tiles() const { return (seq + shift + lanes - 1) / lanes; }
  std::size_t row0(std::size_t t) const { return t == 0 ? 0 : t * lanes - shift; }
  std::size_t rows(std::size_t t) const { return std::min(seq, (t + 1) * lanes - shift) - row0(t); }
};

// One lane's candidates among a tile's columns (the tile's rows from row0): its tokens
// (relative columns, then globals) and its landmark blocks; as sets, exactly the row's
// PatternBuilder candidates (tested). For a tile of one row, which the row kernel takes.
struct LaneCandidates {
  std::vector<std::uint32_t> tokens, blocks;
};
LaneCandidates lane_candidates(const kernels::TileColumns& columns, std::size_t row0, std::size_t lane);

class TilePattern {
 public:
  // lanes: rows per tile (<= 32). The offsets are fixed by the config and seq.
  TilePattern(std::size_t seq, const SparseConfig& config, std::size_t lanes);

  // Builds the columns of rows [row0, row0 + rows), rows <= lanes (default: up to lanes,
  // to the end of the sequence).
  void build(std::size_t row0);
  void build(std::size_t row0, std::size_t rows);
  kernels::TileColumns columns() const { return {relative_, globals_, blocks_}; }
  // Columns of any tile, at most: bounds the kernel's scratch.
  std::size_t max_columns() const;

 private:
  bool offset_is_relative(std::int64_t o) const;
  bool row_covers_block(std::int64_t i, std::size_t b) const;

  std::size_t seq_, lanes_;
  SparseConfig config_;
  std::vector<std::int64_t> offsets_;     // all relative offsets (window, then strides)
  std::vector<std::size_t> globals_unique_;
  std::vector<kernels::TileColumn> relative_, globals_, blocks_;
};

}  // namespace rvt::attn
