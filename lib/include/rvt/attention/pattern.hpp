// The sparse candidate set of each query row: which tokens and which landmark blocks
// query i attends to. Exactly the reference's edge set (attention-spec.md section 3).
//
// Tokens, in order, each at most once: the local window, the global tokens, then the
// log-stride positions i -+ 1, 2, 4, ... Blocks: causal -> the complete blocks pivot-1,
// pivot and pivot - 2^k (pivot = (i+1)/B - 1); non-causal -> cur-1, cur+1 and cur -+ 2^k,
// never cur (cur = i/B). Tokens and blocks are deduplicated separately.
//
// Deduplication uses per-position stamps, so building a row costs O(candidates), with
// no O(N) clearing between rows.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "rvt/attention/config.hpp"

namespace rvt::attn {

inline std::size_t block_count(std::size_t seq, std::size_t block_size) {
  return (seq + block_size - 1) / block_size;
}

// Calls fn(b) for each landmark block of row i in a sequence of n positions, in the
// builder's order, duplicates included (callers deduplicate). The one statement of the
// block rule, shared by PatternBuilder and TilePattern.
template <typename Fn>
void for_each_landmark_block(std::size_t i, std::size_t n, const SparseConfig& config, Fn&& fn) {
  if (!config.landmarks) return;
  const std::size_t bs = config.block_size, n_blocks = block_count(n, bs);
  if (config.causal) {
    const std::size_t avail = (i + 1) / bs;  // complete blocks ending at or before i
    if (avail == 0) return;
    const std::size_t pivot = avail - 1;
    if (pivot >= 1) fn(pivot - 1);
    fn(pivot);
    if (config.log_stride) {
      for (std::size_t s = 1; s < n_blocks && pivot >= s; s <<= 1) fn(pivot - s);
    }
  } else {
    const std::size_t cur = i / bs;
    if (cur >= 1) fn(cur - 1);
    if (cur + 1 < n_blocks) fn(cur + 1);
    if (config.log_stride) {
      for (std::size_t s = 1; s < n_blocks; s <<= 1) {
        if (cur >= s) fn(cur - s);
        if (cur + s < n_blocks) fn(cur + s);
      }
    }
  }
}

class PatternBuilder {
 public:
  // seq is the longest sequence this builder serves (stamps are sized for it once).
  PatternBuilder(std::size_t seq, const SparseConfig& config);

  // Builds row i's candidates for a sequence of length seq (the constructor's), or of
  // length n <= seq (a decode step over a cache holding n positions). The spans stay
  // valid until the next build().
  void build(std::size_t i) { build(i, seq_); }
  void build(std::size_t i, std::size_t n);
  std::span<const std::uint32_t> tokens() const { return {tokens_.data(), tokens_.size()}; }
  std::span<const std::uint32_t> blocks() const { return {blocks_.data(), blocks_.size()}; }
  std::size_t edges() const { return tokens_.size() + blocks_.size(); }

  // Replaces the global tokens (same count or fewer, so nothing is allocated). A decoder
  // whose cache has evicted positions uses it to point the globals at their current slots.
  void set_globals(std::span<const std::size_t> globals);

  // The most candidates any row can have: bounds scratch buffers.
  std::size_t max_row_candidates() const;

 private:
  void add_token(std::size_t j);
  void add_block(std::size_t b);
  bool block_fully_covered(std::size_t b, std::size_t n) const;

  std::size_t seq_;
  SparseConfig config_;
  std::size_t current_n_ = 0;  // sequence length of the row being built
  std::uint32_t stamp_ = 0;
  std::vector<std::uint32_t> token_stamp_, block_stamp_;
  std::vector<std::uint32_t> tokens_, blocks_;
};

// Per-head edge counts (tokens + blocks, summed over rows) and per-row counts.
std::uint64_t sparse_edges_per_head(std::size_t seq, const SparseConfig& config);
std::vector<std::uint32_t> row_edge_counts(std::size_t seq, const SparseConfig& config);
// The edges dense attention evaluates per head: N(N+1)/2 causal, N^2 otherwise.
std::uint64_t dense_edges_per_head(std::size_t seq, bool causal);

}  // namespace rvt::attn
