#include "rvt/stream/decoder.hpp"

#include <algorithm>
#include <set>
#include <cmath>
#include <limits>
#include <numeric>

#include "rvt/core/error.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt::stream {
namespace {

// The kernels for one step: `table`, or nullptr (the scalar reference) when q or the cache
// holds a NaN/Inf, whose propagation the reference gives the same on every ISA; a step on the
// reference adds one to scalar_steps. The q test is the vectorizing any_nonfinite: a
// per-element isfinite loop with an early exit made a decode step 8 - 12% slower (bench
// preset, T = 1024 and 4096).
const kernels::KernelTable* step_kernels(const kernels::KernelTable* table, const float* q, std::size_t n,
                                         const KvCache& cache, std::uint64_t& scalar_steps) {
  const kernels::KernelTable* chosen = any_nonfinite({q, n}) || cache.has_nonfinite() ? nullptr : table;
  if (!chosen) ++scalar_steps;
  return chosen;
}

// One head's sparse row over the cache, in its storage type, on the chosen kernels.
float cache_sparse_row(const kernels::KernelTable* table, const KvCache& c, std::size_t kvh, const float* q,
                       float scale, const attn::PatternBuilder& p, bool mass, float* scratch, float* out) {
  kernels::LandmarkSource lm;
  lm.rows = {c.mean_k(0, kvh), c.mean_v(0, kvh), c.row_stride()};
  lm.counts = c.block_counts();
  lm.mass_bias = mass;
  if (c.dtype() == KvDType::kF16) {
    const kernels::HalfRowSource src{c.k_f16(0, kvh), c.v_f16(0, kvh), c.row_stride()};
    return table ? table->sparse_row_f16(q, c.dim(), scale, src, p.tokens(), lm, p.blocks(), scratch, out)
                 : kernels::sparse_row_ref(q, c.dim(), scale, src, p.tokens(), lm, p.blocks(), scratch, out);
  }
  const kernels::RowSource src{c.k_f32(0, kvh), c.v_f32(0, kvh), c.row_stride()};
  return table ? table->sparse_row_f32(q, c.dim(), scale, src, p.tokens(), lm, p.blocks(), scratch, out)
               : kernels::sparse_row_ref(q, c.dim(), scale, src, p.tokens(), lm, p.blocks(), scratch, out);
}

}  // namespace

Evict parse_evict(const std::string& name) {
  if (name == "none") return Evict::kNone;
  if (name == "h2o") return Evict::kH2O;
  throw_usage("--evict: '" + name + "' is not one of none, h2o");
}

const char* evict_name(Evict evict) { return evict == Evict::kH2O ? "h2o" : "none"; }

void check_step_shapes(const Tensor& q, const Tensor& k, const Tensor& v, std::size_t q_heads,
                       const KvCache& cache) {
  if (q.seq() != 1 || k.seq() != 1 || v.seq() != 1) {
    throw_bad_input("a decode step takes exactly one token (got Q " + q.shape().str() + ", K " + k.shape().str() +
                    ", V " + v.shape().str() + ")");
  }
  if (k.shape() != v.shape() || k.heads() != cache.kv_heads() || k.dim() != cache.dim()) {
    throw_bad_input("decode step: K " + k.shape().str() + " / V " + v.shape().str() + " do not match the cache's kv_heads " +
                    std::to_string(cache.kv_heads()) + ", dim " + std::to_string(cache.dim()));
  }
  if (q.heads() != q_heads || q.dim() != cache.dim()) {
    throw_bad_input("decode step: Q " + q.shape().str() + " does not match q_heads " + std::to_string(q_heads) +
                    ", dim " + std::to_string(cache.dim()));
  }
}

SparseDecoder::SparseDecoder(std::size_t q_heads, KvCache cache, const attn::SparseConfig& config, Evict evict,
                             kernels::Isa isa)
    : q_heads_(q_heads),
      cache_(std::move(cache)),
      config_(config),
      evict_(evict),
      pattern_(cache_.capacity(), config),
      scale_(attn::softmax_scale(cache_.dim())),
      table_(kernels::kernel_table(kernels::resolve_isa(isa))) {
  if (cache_.block_size() != config.block_size) {
    throw_usage("kv cache block size " + std::to_string(cache_.block_size()) +
                " differs from the attention block size " + std::to_string(config.block_size));
  }
  if (q_heads == 0 || q_heads % cache_.kv_heads() != 0) {
    throw_usage("q_heads " + std::to_string(q_heads) + " is not a positive multiple of kv_heads " +
                std::to_string(cache_.kv_heads()) + " (GQA)");
  }
  // A global repeated in the list is one token to keep.
  const std::size_t globals = std::set<std::size_t>(config.globals.begin(), config.globals.end()).size();
  if (evict == Evict::kH2O && cache_.capacity() <= config.window + globals) {
    throw_usage("h2o eviction needs a capacity above window + globals (" + std::to_string(config.window + globals) +
                "), got " + std::to_string(cache_.capacity()));
  }
  scratch_.resize(pattern_.max_row_candidates());
  slot_globals_ = config.globals;
}

void SparseDecoder::make_room() {
  if (!cache_.full() || evict_ == Evict::kNone) return;  // append reports a full cache
  const long victim = cache_.h2o_victim(config_.window, config_.globals);
  if (victim < 0) throw_usage("h2o eviction: every cached position is protected");
  cache_.evict(static_cast<std::size_t>(victim));
  // Globals are stream positions; the pattern works in cache slots. After an eviction a
  // global sits in a lower slot: point the pattern at it (positions stay sorted). A global
  // not appended yet maps past the end, so the pattern ignores it.
  const auto positions = cache_.positions();
  for (std::size_t g = 0; g < config_.globals.size(); ++g) {
    const auto it = std::lower_bound(positions.begin(), positions.end(), config_.globals[g]);
    slot_globals_[g] = (it != positions.end() && *it == config_.globals[g])
                           ? static_cast<std::size_t>(it - positions.begin())
                           : std::numeric_limits<std::size_t>::max();
  }
  pattern_.set_globals(slot_globals_);
}

void SparseDecoder::step(const float* q, const float* k, const float* v, float* out) {
  make_room();
  cache_.append(k, v);
  const std::size_t n = cache_.len(), i = n - 1, dim = cache_.dim();
  pattern_.build(i, n);
  last_edges_ = pattern_.edges();
  const std::size_t group = q_heads_ / cache_.kv_heads();
  const bool mass = config_.landmark_mode == attn::LandmarkMode::kMass;
  const bool credit = evict_ == Evict::kH2O;
  const kernels::KernelTable* kernels = step_kernels(table_, q, q_heads_ * dim, cache_, scalar_steps_);
  for (std::size_t h = 0; h < q_heads_; ++h) {
    const float sum = cache_sparse_row(kernels, cache_, h / group, q + h * dim, scale_, pattern_, mass, scratch_.data(),
                                       out + h * dim);
    if (credit && sum > 0.0f) {  // a NaN sum (non-finite input, overflow) credits nothing
      const auto tokens = pattern_.tokens();
      for (std::size_t c = 0; c < tokens.size(); ++c) cache_.add_score(tokens[c], scratch_[c] / sum);
    }
  }
  // The next step reads each log-stride token one slot later. Those lie far back in the
  // history, out of the CPU caches once the cache outgrows them: start loading them now, a
  // step ahead (the window's rows were just read; they stay in cache). Below kPrefetchAbove
  // bytes of K/V the rows are still in L3 and the prefetches cost more than they save
  // (bench preset: +80 ns per step at T = 1024 and 4096; at 65536 -600 ns in one pair of runs
  // on 2026-11-28 and no difference in others, and level again on 2026-11-29, family 25 host:
  // docs/performance.md).
  constexpr std::size_t kPrefetchAbove = std::size_t{16} << 20;
  if (n * cache_.row_stride() * 2 * sizeof(float) > kPrefetchAbove) {
    for (const std::uint32_t t : pattern_.tokens()) {
      if (t + config_.window < i) cache_.prefetch(t + 1);
    }
  }
}

Tensor SparseDecoder::step(const Tensor& q, const Tensor& k, const Tensor& v) {
  check_step_shapes(q, k, v, q_heads_, cache_);
  Tensor out(1, q_heads_, cache_.dim());
  step(q.data(), k.data(), v.data(), out.data());
  return out;
}

DenseDecoder::DenseDecoder(std::size_t q_heads, KvCache cache, kernels::Isa isa)
    : q_heads_(q_heads),
      cache_(std::move(cache)),
      scale_(attn::softmax_scale(cache_.dim())),
      table_(kernels::kernel_table(kernels::resolve_isa(isa))) {
  if (q_heads == 0 || q_heads % cache_.kv_heads() != 0) {
    throw_usage("q_heads " + std::to_string(q_heads) + " is not a positive multiple of kv_heads " +
                std::to_string(cache_.kv_heads()) + " (GQA)");
  }
  positions_.resize(cache_.capacity());
  std::iota(positions_.begin(), positions_.end(), 0u);
  scratch_.resize(cache_.capacity());
}

void DenseDecoder::step(const float* q, const float* k, const float* v, float* out) {
  cache_.append(k, v);
  const std::size_t n = cache_.len(), dim = cache_.dim(), group = q_heads_ / cache_.kv_heads();
  const kernels::KernelTable* table = step_kernels(table_, q, q_heads_ * dim, cache_, scalar_steps_);
  const std::span<const std::uint32_t> all(positions_.data(), n);
  const kernels::LandmarkSource no_landmarks;
  for (std::size_t h = 0; h < q_heads_; ++h) {
    const std::size_t kvh = h / group;
    const float* qh = q + h * dim;
    float* oh = out + h * dim;
    if (cache_.dtype() == KvDType::kF16) {
      const kernels::HalfRowSource src{cache_.k_f16(0, kvh), cache_.v_f16(0, kvh), cache_.row_stride()};
      if (table) table->sparse_row_f16(qh, dim, scale_, src, all, no_landmarks, {}, scratch_.data(), oh);
      else kernels::dense_row_ref(qh, dim, scale_, src, n, oh);
    } else {
      const kernels::RowSource src{cache_.k_f32(0, kvh), cache_.v_f32(0, kvh), cache_.row_stride()};
      if (table) table->sparse_row_f32(qh, dim, scale_, src, all, no_landmarks, {}, scratch_.data(), oh);
      else kernels::dense_row_ref(qh, dim, scale_, src, n, oh);
    }
  }
}

Tensor DenseDecoder::step(const Tensor& q, const Tensor& k, const Tensor& v) {
  check_step_shapes(q, k, v, q_heads_, cache_);
  Tensor out(1, q_heads_, cache_.dim());
  step(q.data(), k.data(), v.data(), out.data());
  return out;
}

}  // namespace rvt::stream
