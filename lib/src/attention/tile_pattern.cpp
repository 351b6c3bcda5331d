#include "rvt/attention/tile_pattern.hpp"

#include <algorithm>
#include <stdexcept>

#include "rvt/attention/pattern.hpp"

namespace rvt::attn {
namespace {

std::uint32_t lane_bits(std::int64_t lo, std::int64_t hi) {  // bits lo..hi (inclusive), lo <= hi in [0, 32)
  const std::uint64_t upto_hi = (std::uint64_t{2} << hi) - 1;
  return static_cast<std::uint32_t>(upto_hi & ~((std::uint64_t{1} << lo) - 1));
}

}  // namespace

LaneCandidates lane_candidates(const kernels::TileColumns& columns, std::size_t row0, std::size_t lane) {
  const std::uint32_t bit = std::uint32_t{1} << lane;
  const auto row = static_cast<std::int64_t>(row0 + lane);
  LaneCandidates c;
  for (const kernels::TileColumn& col : columns.relative) {
    if (col.lanes & bit) c.tokens.push_back(static_cast<std::uint32_t>(row - col.at));
  }
  for (const kernels::TileColumn& col : columns.globals) {
    if (col.lanes & bit) c.tokens.push_back(static_cast<std::uint32_t>(col.at));
  }
  for (const kernels::TileColumn& col : columns.blocks) {
    if (col.lanes & bit) c.blocks.push_back(static_cast<std::uint32_t>(col.at));
  }
  return c;
}

TilePattern::TilePattern(std::size_t seq, const SparseConfig& config, std::size_t lanes)
    : seq_(seq), lanes_(lanes), config_(config) {
  config_.validate();
  if (lanes == 0 || lanes > 32) throw std::invalid_argument("TilePattern: lanes must be in 1..32");
  const auto n = static_cast<std::int64_t>(seq);
  const std::int64_t w = std::min<std::int64_t>(static_cast<std::int64_t>(config_.window), std::max<std::int64_t>(n - 1, 0));
  for (std::int64_t o = config_.causal ? 0 : -w; o <= w; ++o) offsets_.push_back(o);
  if (config_.log_stride) {
    for (std::int64_t s = 1; s < n; s <<= 1) {
      if (s <= w) continue;  // inside the window already
      offsets_.push_back(s);
      if (!config_.causal) offsets_.push_back(-s);
    }
  }
  for (std::size_t g : config_.globals) {
    if (g < seq && std::find(globals_unique_.begin(), globals_unique_.end(), g) == globals_unique_.end()) {
      globals_unique_.push_back(g);
    }
  }
  relative_.reserve(offsets_.size());
  globals_.reserve(globals_unique_.size());
  blocks_.reserve(max_columns());
}

std::size_t TilePattern::max_columns() const {
  std::size_t log_blocks = 0;
  for (std::size_t s = 1; s < block_count(std::max<std::size_t>(seq_, 1), config_.block_size); s <<= 1) ++log_blocks;
  const std::size_t blocks_per_row = 2 + 2 * (log_blocks + 1);
  return offsets_.size() + globals_unique_.size() + lanes_ * blocks_per_row;
}

// Whether every key of landmark block b is a token of row i (PatternBuilder::block_fully_covered):
// the keys in the row's window are, the others must each be a log-stride or global token. Outside
// the window the first key that is neither ends the loop, at once for all but the blocks next to
// it, so this costs a few checks per (row, block).
bool TilePattern::row_covers_block(std::int64_t i, std::size_t b) const {
  const auto w = static_cast<std::int64_t>(config_.window), n = static_cast<std::int64_t>(seq_);
  const auto begin = static_cast<std::int64_t>(b * config_.block_size);
  const std::int64_t end = std::min(begin + static_cast<std::int64_t>(config_.block_size), n);
  const std::int64_t window_lo = i - w, window_hi = config_.causal ? i : i + w;
  for (std::int64_t j = begin; j < end; ++j) {
    if (j >= window_lo && j <= window_hi) {
      j = window_hi;  // the rest of the window's part of the block
      continue;
    }
    const bool global = std::find(globals_unique_.begin(), globals_unique_.end(), static_cast<std::size_t>(j)) !=
                        globals_unique_.end();
    if (!offset_is_relative(i - j) && !(global && (!config_.causal || j <= i))) return false;
  }
  return true;
}

// Whether key i - d of row i is one of row i's window or log-stride tokens.
bool TilePattern::offset_is_relative(std::int64_t d) const {
  const std::uint64_t a = static_cast<std::uint64_t>(d < 0 ? -d : d);
  if (config_.causal && d < 0) return false;
  if (a <= config_.window) return true;
  return config_.log_stride && (a & (a - 1)) == 0;  // a power of two (a > 0 here)
}

TileGrid TileGrid::for_config(std::size_t seq, const SparseConfig& config, std::size_t lanes) {
  const bool aligned_blocks = config.causal && config.landmarks && config.block_size % lanes == 0;
  return {seq, lanes, aligned_blocks && lanes > 1 ? std::size_t{1} : std::size_t{0}};
}

void TilePattern::build(std::size_t row0) {
  if (row0 >= seq_) throw std::out_of_range("TilePattern::build: tile outside the sequence");
  build(row0, std::min(lanes_, seq_ - row0));
}

void TilePattern::build(std::size_t row0, std::size_t row_count) {
  if (row0 >= seq_ || row_count == 0 || row_count > lanes_ || row_count > seq_ - row0) {
    throw std::out_of_range("TilePattern::build: tile outside the sequence");
  }
  relative_.clear();
  globals_.clear();
  blocks_.clear();
  const auto n = static_cast<std::int64_t>(seq_), r0 = static_cast<std::int64_t>(row0);
  const auto rows = static_cast<std::int64_t>(row_count);

  // Key r0 + r - o must lie in [0, n): r in [o - r0, n - 1 - r0 + o].
  for (std::int64_t o : offsets_) {
    const std::int64_t lo = std::max<std::int64_t>(0, o - r0), hi = std::min<std::int64_t>(rows - 1, n - 1 - r0 + o);
    if (lo <= hi) relative_.push_back({o, lane_bits(lo, hi)});
  }
  for (std::size_t g : globals_unique_) {
    std::uint32_t mask = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t i = r0 + r, d = i - static_cast<std::int64_t>(g);
      if (config_.causal && d < 0) continue;
      if (!offset_is_relative(d)) mask |= std::uint32_t{1} << r;
    }
    if (mask) globals_.push_back({static_cast<std::int64_t>(g), mask});
  }
  // A row's blocks depend only on its block position ((i + 1) / B causal, i / B otherwise),
  // which runs of consecutive rows share: one enumeration per run.
  const auto bs = static_cast<std::int64_t>(config_.block_size);
  for (std::int64_t r = 0; r < rows;) {
    const std::int64_t i = r0 + r, key = config_.causal ? (i + 1) / bs : i / bs;
    std::int64_t end = r + 1;
    while (end < rows && (config_.causal ? (r0 + end + 1) / bs : (r0 + end) / bs) == key) ++end;
    const std::uint32_t run = lane_bits(r, end - 1);
    for_each_landmark_block(static_cast<std::size_t>(i), seq_, config_, [&](std::size_t b) {
      std::uint32_t lanes = run;
      if (config_.landmark_mode == LandmarkMode::kMass) {  // less the rows whose tokens cover the block
        for (std::int64_t row = r; row < end; ++row) {
          if (row_covers_block(r0 + row, b)) lanes &= ~(std::uint32_t{1} << row);
        }
        if (lanes == 0) return;
      }
      const auto at = static_cast<std::int64_t>(b);
      auto it = std::find_if(blocks_.begin(), blocks_.end(), [at](const kernels::TileColumn& c) { return c.at == at; });
      if (it == blocks_.end()) blocks_.push_back({at, lanes});
      else it->lanes |= lanes;
    });
    r = end;
  }
}

}  // namespace rvt::attn
