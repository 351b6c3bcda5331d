// Decode steps over a KV cache: one new token at a time.
//
// SparseDecoder::step appends the token's K/V, then computes query position i = len - 1
// over the cache with exactly the candidate set forward() gives row i for N = len. In
// causal mode that is forward()'s row i for any longer N, so streaming a whole sequence
// reproduces forward() row by row. The cost is O(W + log T) per step: the pattern builder
// and scratch are sized once, stamps avoid O(T) clearing, landmarks are running means.
//
// DenseDecoder is the O(T) baseline an LLM runtime runs: every cached position each step,
// on the same SIMD row kernel (all positions as candidates), so speedups are against a fast
// dense decode, not a scalar one.
#pragma once

#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/attention/pattern.hpp"
#include "rvt/kernels/fast.hpp"
#include "rvt/stream/kv_cache.hpp"

namespace rvt::stream {

enum class Evict { kNone, kH2O };
Evict parse_evict(const std::string& name);  // "none" | "h2o"; throws kUsage
const char* evict_name(Evict evict);

class SparseDecoder {
 public:
  // The cache's block size must equal config.block_size (kUsage otherwise). With H2O the
  // capacity must exceed window + globals, or nothing could ever be evicted.
  SparseDecoder(std::size_t q_heads, KvCache cache, const attn::SparseConfig& config, Evict evict = Evict::kNone,
                kernels::Isa isa = kernels::Isa::kAuto);

  // q: [q_heads][dim], k and v: [kv_heads][dim], out: [q_heads][dim] (raw rows, no checks).
  void step(const float* q, const float* k, const float* v, float* out);
  // Checked form: q [1][q_heads][dim], k/v [1][kv_heads][dim]. A multi-token step, a
  // kv_heads or dim mismatch is rvt::Error(kBadInput).
  Tensor step(const Tensor& q, const Tensor& k, const Tensor& v);

  const KvCache& cache() const { return cache_; }
  std::size_t last_edges() const { return last_edges_; }  // per head, of the last step
  // The cache slots the last step attended to (tokens; landmark blocks excluded).
  std::span<const std::uint32_t> last_tokens() const { return pattern_.tokens(); }
  // The ISA of the kernels a step runs on (scalar without SIMD or on --isa scalar), and how
  // many steps took the scalar reference instead because q or the cache held a NaN or an inf.
  kernels::Isa isa() const { return table_ ? table_->isa : kernels::Isa::kScalar; }
  std::uint64_t scalar_steps() const { return scalar_steps_; }

 private:
  void make_room();

  std::size_t q_heads_;
  KvCache cache_;
  attn::SparseConfig config_;
  Evict evict_;
  attn::PatternBuilder pattern_;
  std::vector<float> scratch_;
  float scale_;
  const kernels::KernelTable* table_;  // nullptr: the scalar reference kernels
  std::vector<std::size_t> slot_globals_;  // the globals' current cache slots
  std::size_t last_edges_ = 0;
  std::uint64_t scalar_steps_ = 0;
};

class DenseDecoder {
 public:
  DenseDecoder(std::size_t q_heads, KvCache cache, kernels::Isa isa = kernels::Isa::kAuto);
  void step(const float* q, const float* k, const float* v, float* out);
  Tensor step(const Tensor& q, const Tensor& k, const Tensor& v);
  const KvCache& cache() const { return cache_; }
  kernels::Isa isa() const { return table_ ? table_->isa : kernels::Isa::kScalar; }  // as SparseDecoder's
  std::uint64_t scalar_steps() const { return scalar_steps_; }

 private:
  std::size_t q_heads_;
  KvCache cache_;
  float scale_;
  const kernels::KernelTable* table_;     // nullptr: the scalar reference kernels
  std::vector<std::uint32_t> positions_;  // 0 .. capacity-1: every slot is a candidate
  std::vector<float> scratch_;            // one score per slot
  std::uint64_t scalar_steps_ = 0;
};

// Checks a single-token step's shapes against the decoder's; shared by both decoders.
void check_step_shapes(const Tensor& q, const Tensor& k, const Tensor& v, std::size_t q_heads,
                       const KvCache& cache);

}  // namespace rvt::stream
