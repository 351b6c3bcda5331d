#include "rvt/stream/kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rvt/core/error.hpp"
#include "rvt/core/half.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt::stream {

KvDType parse_kv_dtype(const std::string& name) {
  if (name == "f32") return KvDType::kF32;
  if (name == "f16") return KvDType::kF16;
  throw_usage("--kv-dtype: '" + name + "' is not one of f32, f16");
}

const char* kv_dtype_name(KvDType dtype) { return dtype == KvDType::kF16 ? "f16" : "f32"; }

KvCache::KvCache(std::size_t capacity, std::size_t kv_heads, std::size_t dim, std::size_t block_size,
                 KvDType dtype)
    : capacity_(capacity), kv_heads_(kv_heads), dim_(dim), block_size_(block_size), dtype_(dtype) {
  if (capacity == 0) throw_usage("kv cache: capacity must be > 0");
  if (kv_heads == 0 || dim == 0) throw_usage("kv cache: kv_heads and dim must be > 0");
  if (block_size == 0) throw_usage("kv cache: block_size must be > 0");
  const std::size_t elems = checked_numel({capacity, kv_heads, dim}, "kv cache");
  const std::size_t n_blocks = (capacity + block_size - 1) / block_size;
  try {
    // Both rows' memory first, so that a cache too large is refused before any of it is
    // zero-filled (which takes seconds at tens of GB).
    if (dtype == KvDType::kF16) {
      k16_.reserve(elems);
      v16_.reserve(elems);
      k16_.assign(elems, 0);
      v16_.assign(elems, 0);
    } else {
      k32_.reserve(elems);
      v32_.reserve(elems);
      k32_.assign(elems, 0.0f);
      v32_.assign(elems, 0.0f);
    }
    mean_k_.assign(n_blocks * kv_heads * dim, 0.0f);
    mean_v_.assign(mean_k_.size(), 0.0f);
    block_count_.assign(n_blocks, 0);
    positions_.assign(capacity, 0);
    scores_.assign(capacity, 0.0f);
    scratch_k_.assign(kv_heads * dim, 0.0f);
    scratch_v_.assign(kv_heads * dim, 0.0f);
    open_sum_k_.assign(kv_heads * dim, 0.0f);
    open_sum_v_.assign(kv_heads * dim, 0.0f);
    const kernels::KernelTable* table = kernels::kernel_table(kernels::best_isa());
    to_half_ = table ? table->to_half : &kernels::to_half_ref;
  } catch (const std::bad_alloc& e) {
    throw_bad_input("kv cache of capacity " + std::to_string(capacity) + " does not fit in memory" + out_of_memory_note(e));
  }
}

void KvCache::prefetch(std::size_t s) const {
  if (s >= capacity_) return;
  auto lines = [](const void* p, std::size_t bytes) {
    for (std::size_t at = 0; at < bytes; at += 64) __builtin_prefetch(static_cast<const char*>(p) + at);
  };
  const std::size_t row = kv_heads_ * dim_;
  if (dtype_ == KvDType::kF32) {
    lines(k32_.data() + s * row, row * sizeof(float));
    lines(v32_.data() + s * row, row * sizeof(float));
  } else {
    lines(k16_.data() + s * row, row * sizeof(std::uint16_t));
    lines(v16_.data() + s * row, row * sizeof(std::uint16_t));
  }
}

std::size_t KvCache::bytes() const {
  return (k32_.size() + v32_.size() + mean_k_.size() + mean_v_.size() + scores_.size()) * sizeof(float) +
         (k16_.size() + v16_.size()) * sizeof(std::uint16_t) + block_count_.size() * sizeof(std::uint32_t) +
         positions_.size() * sizeof(std::uint64_t);
}

void KvCache::store_row(std::size_t slot, const float* k_row, const float* v_row) {
  const std::size_t n = kv_heads_ * dim_, base = slot * n;
  if (dtype_ == KvDType::kF16) {
    to_half_(k_row, n, k16_.data() + base);
    to_half_(v_row, n, v16_.data() + base);
  } else {
    std::memcpy(k32_.data() + base, k_row, n * sizeof(float));
    std::memcpy(v32_.data() + base, v_row, n * sizeof(float));
  }
}

namespace {

// sum += x and mean = sum * scale, n floats; or mean = sum / count. Restrict parameters let
// the compiler vectorise the loops (with restrict locals it kept them scalar: divss and addss
// element by element took 200 ns of a 630 ns decode step).
void add_and_scale(const float* __restrict x, float* __restrict sum, float* __restrict mean, std::size_t n,
                   float scale) {
  for (std::size_t i = 0; i < n; ++i) {
    sum[i] += x[i];
    mean[i] = sum[i] * scale;
  }
}
void divide_row(const float* __restrict sum, float* __restrict mean, std::size_t n, float count) {
  for (std::size_t i = 0; i < n; ++i) mean[i] = sum[i] / count;
}

}  // namespace

// Slots are folded in order (append, rebuild_means_from), so `slot` is in the newest block:
// its sums start over at the block's first token. A complete block's mean is sum / count,
// the same additions in the same order and the same division as attn::block_means, so it is
// the forward pass's bit for bit, and an inf stays an inf where the forward keeps it (a running
// mean += (x - mean) / count made it NaN at the block's next token). Until then the open
// block's mean is sum * (1 / count), within an ulp of that, for one division per token instead
// of one per element; the decoder reads only complete blocks (attn::for_each_landmark_block).
void KvCache::fold_into_mean(std::size_t slot, const float* k_row, const float* v_row) {
  const std::size_t b = slot / block_size_, n = kv_heads_ * dim_;
  const std::uint32_t count = ++block_count_[b];
  if (count == 1) {
    std::fill(open_sum_k_.begin(), open_sum_k_.end(), 0.0f);
    std::fill(open_sum_v_.begin(), open_sum_v_.end(), 0.0f);
  }
  const float c = static_cast<float>(count);
  add_and_scale(k_row, open_sum_k_.data(), mean_k_.data() + b * n, n, 1.0f / c);
  add_and_scale(v_row, open_sum_v_.data(), mean_v_.data() + b * n, n, 1.0f / c);
  if (count == block_size_) {
    divide_row(open_sum_k_.data(), mean_k_.data() + b * n, n, c);
    divide_row(open_sum_v_.data(), mean_v_.data() + b * n, n, c);
  }
}

void KvCache::append(const float* k_row, const float* v_row) {
  if (len_ == capacity_) {
    throw_usage("kv cache is full (capacity " + std::to_string(capacity_) +
                "): raise the capacity or enable eviction");
  }
  if (!nonfinite_) {
    nonfinite_ = any_nonfinite({k_row, kv_heads_ * dim_}) || any_nonfinite({v_row, kv_heads_ * dim_});
  }
  store_row(len_, k_row, v_row);
  fold_into_mean(len_, k_row, v_row);  // from the f32 inputs, also for an f16 cache
  positions_[len_] = appended_;
  scores_[len_] = 0.0f;
  ++len_;
  ++appended_;
}

void KvCache::append_all(const Tensor& k, const Tensor& v) {
  if (k.shape() != v.shape()) throw_bad_input("prefill: K " + k.shape().str() + " and V " + v.shape().str() + " differ");
  if (k.heads() != kv_heads_ || k.dim() != dim_) {
    throw_bad_input("prefill: K/V " + k.shape().str() + " do not match the cache's kv_heads " +
                    std::to_string(kv_heads_) + ", dim " + std::to_string(dim_));
  }
  if (len_ + k.seq() > capacity_) {
    throw_usage("prefill of " + std::to_string(k.seq()) + " tokens overflows the cache (" + std::to_string(len_) +
                " of " + std::to_string(capacity_) + " used)");
  }
  for (std::size_t t = 0; t < k.seq(); ++t) append(k.row(t, 0), v.row(t, 0));
}

long KvCache::h2o_victim(std::size_t window, std::span<const std::size_t> globals) const {
  const std::size_t protected_from = len_ > window ? len_ - window : 0;
  long victim = -1;
  for (std::size_t s = 0; s < protected_from; ++s) {
    if (std::find(globals.begin(), globals.end(), positions_[s]) != globals.end()) continue;
    if (victim < 0 || scores_[s] < scores_[static_cast<std::size_t>(victim)]) victim = static_cast<long>(s);
  }
  return victim;
}

void KvCache::evict(std::size_t slot) {
  if (slot >= len_) throw std::out_of_range("KvCache::evict: slot beyond the cache");
  const std::size_t n = kv_heads_ * dim_;
  const std::size_t tail = len_ - slot - 1;
  if (dtype_ == KvDType::kF16) {
    std::memmove(k16_.data() + slot * n, k16_.data() + (slot + 1) * n, tail * n * sizeof(std::uint16_t));
    std::memmove(v16_.data() + slot * n, v16_.data() + (slot + 1) * n, tail * n * sizeof(std::uint16_t));
  } else {
    std::memmove(k32_.data() + slot * n, k32_.data() + (slot + 1) * n, tail * n * sizeof(float));
    std::memmove(v32_.data() + slot * n, v32_.data() + (slot + 1) * n, tail * n * sizeof(float));
  }
  std::memmove(positions_.data() + slot, positions_.data() + slot + 1, tail * sizeof(std::uint64_t));
  std::memmove(scores_.data() + slot, scores_.data() + slot + 1, tail * sizeof(float));
  --len_;
  ++evicted_;
  rebuild_means_from(slot / block_size_);
}

// Blocks before `block` are unchanged by a shift at or after its start. The f32 inputs of
// older tokens are gone, so an f16 cache rebuilds from its stored (widened) values.
void KvCache::rebuild_means_from(std::size_t block) {
  const std::size_t n = kv_heads_ * dim_;
  std::fill(mean_k_.begin() + static_cast<long>(block * n), mean_k_.end(), 0.0f);
  std::fill(mean_v_.begin() + static_cast<long>(block * n), mean_v_.end(), 0.0f);
  std::fill(block_count_.begin() + static_cast<long>(block), block_count_.end(), 0);
  for (std::size_t s = block * block_size_; s < len_; ++s) {
    for (std::size_t i = 0; i < n; ++i) {
      scratch_k_[i] = dtype_ == KvDType::kF16 ? f16_to_f32(k16_[s * n + i]) : k32_[s * n + i];
      scratch_v_[i] = dtype_ == KvDType::kF16 ? f16_to_f32(v16_[s * n + i]) : v32_[s * n + i];
    }
    fold_into_mean(s, scratch_k_.data(), scratch_v_.data());
  }
}

}  // namespace rvt::stream
