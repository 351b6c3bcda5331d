// KV cache for token-by-token decode.
//
// Storage: K and V as [capacity][kv_heads][dim], f32 or f16 (IEEE half, round to nearest
// even), allocated once. Block means (the landmarks) are kept in f32 from the f32 inputs,
// updated as each token arrives from running sums of the newest block (a complete block's
// mean is sum / count, bit for bit attn::block_means'), so a decode step never rescans a
// block. Slot s holds the token of original stream position positions()[s];
// without eviction slot == position.
//
// H2O eviction (Zhang et al., "Heavy-Hitter Oracle"): when full, protect the newest
// `window` slots and the slots holding global tokens, evict the unprotected slot with the
// lowest accumulated attention weight (the first on ties), shift later slots down and
// rebuild the block means from that block on. The decoder credits each slot with the
// softmax weight it received (summed over query heads) after every step.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rvt/tensor/tensor.hpp"

namespace rvt::stream {

enum class KvDType { kF32, kF16 };
KvDType parse_kv_dtype(const std::string& name);  // "f32" | "f16"; throws kUsage
const char* kv_dtype_name(KvDType dtype);

class KvCache {
 public:
  KvCache(std::size_t capacity, std::size_t kv_heads, std::size_t dim, std::size_t block_size,
          KvDType dtype = KvDType::kF32);

  std::size_t capacity() const { return capacity_; }
  std::size_t kv_heads() const { return kv_heads_; }
  std::size_t dim() const { return dim_; }
  std::size_t block_size() const { return block_size_; }
  KvDType dtype() const { return dtype_; }
  std::size_t len() const { return len_; }
  bool full() const { return len_ == capacity_; }
  std::uint64_t evicted() const { return evicted_; }

  // Appends one token's K and V rows ([kv_heads][dim] each). Throws rvt::Error(kUsage)
  // when full: evict first, or size the cache for the stream.
  void append(const float* k_row, const float* v_row);
  // Prefill: appends every position of k, v ([seq][kv_heads][dim]); checks the shape.
  void append_all(const Tensor& k, const Tensor& v);

  // Evicts slot `slot` (shifting later slots down) and rebuilds the affected block means.
  void evict(std::size_t slot);
  // The H2O choice: the unprotected slot with the lowest score (first on ties), or -1 if
  // every slot is protected.
  long h2o_victim(std::size_t window, std::span<const std::size_t> globals) const;

  // Element access for kernels: row of slot s, kv head h.
  const float* k_f32(std::size_t s, std::size_t h) const { return k32_.data() + (s * kv_heads_ + h) * dim_; }
  const float* v_f32(std::size_t s, std::size_t h) const { return v32_.data() + (s * kv_heads_ + h) * dim_; }
  const std::uint16_t* k_f16(std::size_t s, std::size_t h) const { return k16_.data() + (s * kv_heads_ + h) * dim_; }
  const std::uint16_t* v_f16(std::size_t s, std::size_t h) const { return v16_.data() + (s * kv_heads_ + h) * dim_; }
  std::size_t row_stride() const { return kv_heads_ * dim_; }
  // Starts loading slot s's K and V rows (every kv head) into the CPU caches, a hint only;
  // slots past the capacity are ignored.
  void prefetch(std::size_t s) const;

  // Landmarks: block b's mean K/V for kv head h, and how many tokens it holds now.
  const float* mean_k(std::size_t b, std::size_t h) const { return mean_k_.data() + (b * kv_heads_ + h) * dim_; }
  const float* mean_v(std::size_t b, std::size_t h) const { return mean_v_.data() + (b * kv_heads_ + h) * dim_; }
  const std::uint32_t* block_counts() const { return block_count_.data(); }

  std::span<const std::uint64_t> positions() const { return {positions_.data(), len_}; }
  std::span<const float> scores() const { return {scores_.data(), len_}; }
  void add_score(std::size_t slot, float weight) { scores_[slot] += weight; }

  std::size_t bytes() const;  // K/V storage + means + bookkeeping, as allocated

  // True once a non-finite K/V value was appended: decoders then use the
  // scalar reference kernels, whose NaN/Inf propagation is the same on every ISA.
  bool has_nonfinite() const { return nonfinite_; }

 private:
  void store_row(std::size_t slot, const float* k_row, const float* v_row);
  void fold_into_mean(std::size_t slot, const float* k_row, const float* v_row);
  void rebuild_means_from(std::size_t block);

  std::size_t capacity_, kv_heads_, dim_, block_size_;
  KvDType dtype_;
  // f16 rows are stored by the best ISA's conversion (KernelTable::to_half), whatever ISA the
  // decoder runs: it gives f32_to_f16's numbers bit for bit (element by element without SIMD).
  void (*to_half_)(const float*, std::size_t, std::uint16_t*) = nullptr;
  std::size_t len_ = 0;
  std::uint64_t appended_ = 0, evicted_ = 0;
  bool nonfinite_ = false;
  AlignedFloats k32_, v32_;
  std::vector<std::uint16_t, AlignedAllocator<std::uint16_t, 64>> k16_, v16_;
  AlignedFloats mean_k_, mean_v_;
  std::vector<std::uint32_t> block_count_;
  std::vector<std::uint64_t> positions_;
  std::vector<float> scores_;
  std::vector<float> scratch_k_, scratch_v_;  // one row, for rebuilding means without allocating
  std::vector<float> open_sum_k_, open_sum_v_;  // the newest block's sums (fold_into_mean)
};

}  // namespace rvt::stream
