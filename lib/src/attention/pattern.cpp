#include "rvt/attention/pattern.hpp"

#include <algorithm>
#include <stdexcept>

namespace rvt::attn {

PatternBuilder::PatternBuilder(std::size_t seq, const SparseConfig& config)
    : seq_(seq), config_(config) {
  config_.validate();
  token_stamp_.assign(seq, 0);
  block_stamp_.assign(block_count(seq, config_.block_size), 0);
  tokens_.reserve(max_row_candidates());
  blocks_.reserve(max_row_candidates());
}

std::size_t PatternBuilder::max_row_candidates() const {
  std::size_t log_n = 0;
  for (std::size_t s = 1; s < std::max<std::size_t>(seq_, 1); s <<= 1) ++log_n;
  const std::size_t window = std::min(seq_, 2 * config_.window + 1);
  return window + config_.globals.size() + 2 * log_n + 2 * log_n + 4;
}

void PatternBuilder::set_globals(std::span<const std::size_t> globals) {
  config_.globals.assign(globals.begin(), globals.end());
}

void PatternBuilder::add_token(std::size_t j) {
  if (token_stamp_[j] == stamp_) return;
  token_stamp_[j] = stamp_;
  tokens_.push_back(static_cast<std::uint32_t>(j));
}

void PatternBuilder::add_block(std::size_t b) {
  if (block_stamp_[b] == stamp_) return;
  if (config_.landmark_mode == LandmarkMode::kMass && block_fully_covered(b, current_n_)) return;
  block_stamp_[b] = stamp_;
  blocks_.push_back(static_cast<std::uint32_t>(b));
}

bool PatternBuilder::block_fully_covered(std::size_t b, std::size_t n) const {
  const std::size_t begin = b * config_.block_size;
  const std::size_t end = std::min(begin + config_.block_size, n);
  for (std::size_t j = begin; j < end; ++j) {
    if (token_stamp_[j] != stamp_) return false;
  }
  return true;
}

void PatternBuilder::build(std::size_t i, std::size_t n) {
  if (n > seq_ || i >= n) throw std::out_of_range("PatternBuilder::build: row outside the sequence");
  tokens_.clear();
  blocks_.clear();
  if (++stamp_ == 0) {  // wrapped after 2^32 rows: reset the stamps once
    std::fill(token_stamp_.begin(), token_stamp_.end(), 0);
    std::fill(block_stamp_.begin(), block_stamp_.end(), 0);
    stamp_ = 1;
  }
  current_n_ = n;
  const bool causal = config_.causal;

  // 1. Local window.
  const SparseConfig::KeyRange window = config_.window_keys(i, n);
  for (std::size_t j = window.first; j <= window.last; ++j) add_token(j);

  // 2. Global tokens in configured order; out-of-range ones are ignored.
  for (std::size_t g : config_.globals) {
    if (g < n && (!causal || g <= i)) add_token(g);
  }

  // 3. Log-stride.
  if (config_.log_stride) {
    for (std::size_t s = 1; s < n; s <<= 1) {
      if (i >= s) add_token(i - s);
      if (!causal && i + s < n) add_token(i + s);
    }
  }

  // Landmark blocks (tokens are complete, so kMass can see which blocks they cover).
  for_each_landmark_block(i, n, config_, [this](std::size_t b) { add_block(b); });
}

std::uint64_t sparse_edges_per_head(std::size_t seq, const SparseConfig& config) {
  PatternBuilder builder(seq, config);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < seq; ++i) {
    builder.build(i);
    total += builder.edges();
  }
  return total;
}

std::vector<std::uint32_t> row_edge_counts(std::size_t seq, const SparseConfig& config) {
  PatternBuilder builder(seq, config);
  std::vector<std::uint32_t> counts(seq);
  for (std::size_t i = 0; i < seq; ++i) {
    builder.build(i);
    counts[i] = static_cast<std::uint32_t>(builder.edges());
  }
  return counts;
}

std::uint64_t dense_edges_per_head(std::size_t seq, bool causal) {
  const std::uint64_t n = seq;
  return causal ? n * (n + 1) / 2 : n * n;
}

}  // namespace rvt::attn
