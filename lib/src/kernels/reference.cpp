#include "rvt/kernels/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rvt/core/half.hpp"

namespace rvt::kernels {
namespace {

inline float widen(float x) { return x; }
inline float widen(std::uint16_t x) { return f16_to_f32(x); }

template <typename T>
float dot_mixed(const float* q, const T* k, std::size_t n) {
  float acc = 0.0f;
  for (std::size_t d = 0; d < n; ++d) acc += q[d] * widen(k[d]);
  return acc;
}

template <typename T>
void axpy(float w, const T* x, float* out, std::size_t n) {
  for (std::size_t d = 0; d < n; ++d) out[d] += w * widen(x[d]);
}

}  // namespace

float dot_ref(const float* a, const float* b, std::size_t n) { return dot_mixed(a, b, n); }

void block_mean_ref(const float* x, std::size_t stride, std::size_t count, std::size_t len, float* out) {
  constexpr std::size_t kPiece = 64;  // elements per pass over the rows: rows are read in order
  for (std::size_t e0 = 0; e0 < len; e0 += kPiece) {
    const std::size_t n = std::min(kPiece, len - e0);
    float acc[kPiece] = {};
    for (std::size_t t = 0; t < count; ++t) {
      for (std::size_t e = 0; e < n; ++e) acc[e] += x[t * stride + e0 + e];
    }
    for (std::size_t e = 0; e < n; ++e) out[e0 + e] = acc[e] / static_cast<float>(count);
  }
}

void block_means_ref(const float* x, std::size_t stride, std::size_t block, std::size_t rows, std::size_t len,
                     float* out, std::size_t out_stride) {
  for (std::size_t b = 0; b * block < rows; ++b) {
    block_mean_ref(x + b * block * stride, stride, std::min(block, rows - b * block), len, out + b * out_stride);
  }
}

template <typename T>
float sparse_row_ref(const float* q, std::size_t dim, float scale, RowSourceT<T> src,
                     std::span<const std::uint32_t> tokens, const LandmarkSource& lm,
                     std::span<const std::uint32_t> blocks, float* scratch, float* out) {
  std::fill(out, out + dim, 0.0f);
  const std::size_t n_tok = tokens.size();
  const std::size_t total = n_tok + blocks.size();
  if (total == 0) return 0.0f;

  float max_score = -std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < n_tok; ++c) {
    scratch[c] = dot_mixed(q, src.k + tokens[c] * src.stride, dim) * scale;
    max_score = std::max(max_score, scratch[c]);
  }
  for (std::size_t c = 0; c < blocks.size(); ++c) {
    float s = dot_ref(q, lm.rows.k + blocks[c] * lm.rows.stride, dim) * scale;
    if (lm.mass_bias) s += std::log(static_cast<float>(lm.counts[blocks[c]]));
    scratch[n_tok + c] = s;
    max_score = std::max(max_score, s);
  }

  // A -inf score weighs 0 (exp(-inf)); where every candidate scores -inf the row is a zero
  // row, as an empty one, not exp(-inf - -inf) = NaN: the SIMD kernels' masked lanes' rule.
  // (std::max passes over NaN scores: a NaN among them still makes the row NaN below.)
  if (max_score == -std::numeric_limits<float>::infinity() &&
      std::none_of(scratch, scratch + total, [](float x) { return std::isnan(x); })) {
    std::fill(out, out + dim, 0.0f);
    return 0.0f;
  }
  float sum = 0.0f;
  for (std::size_t c = 0; c < total; ++c) {
    scratch[c] = std::exp(scratch[c] - max_score);
    sum += scratch[c];
  }
  for (std::size_t c = 0; c < n_tok; ++c) axpy(scratch[c], src.v + tokens[c] * src.stride, out, dim);
  for (std::size_t c = 0; c < blocks.size(); ++c) {
    axpy(scratch[n_tok + c], lm.rows.v + blocks[c] * lm.rows.stride, out, dim);
  }
  const float inv = 1.0f / sum;
  for (std::size_t d = 0; d < dim; ++d) out[d] *= inv;
  return sum;
}

template <typename T>
void dense_row_ref(const float* q, std::size_t dim, float scale, RowSourceT<T> src, std::size_t count,
                   float* out) {
  std::fill(out, out + dim, 0.0f);
  if (count == 0) return;
  float running_max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
  for (std::size_t j = 0; j < count; ++j) {
    const float s = dot_mixed(q, src.k + j * src.stride, dim) * scale;
    if (s == -std::numeric_limits<float>::infinity()) continue;  // weighs 0 (see sparse_row_ref)
    if (s > running_max) {  // rescale what has been accumulated to the new maximum
      const float correction = std::exp(running_max - s);
      sum *= correction;
      for (std::size_t d = 0; d < dim; ++d) out[d] *= correction;
      running_max = s;
    }
    const float w = std::exp(s - running_max);
    sum += w;
    axpy(w, src.v + j * src.stride, out, dim);
  }
  if (sum == 0.0f) return;  // every key scored -inf: a zero row
  const float inv = 1.0f / sum;
  for (std::size_t d = 0; d < dim; ++d) out[d] *= inv;
}

template float sparse_row_ref<float>(const float*, std::size_t, float, RowSourceT<float>,
                                     std::span<const std::uint32_t>, const LandmarkSource&,
                                     std::span<const std::uint32_t>, float*, float*);
template float sparse_row_ref<std::uint16_t>(const float*, std::size_t, float, RowSourceT<std::uint16_t>,
                                             std::span<const std::uint32_t>, const LandmarkSource&,
                                             std::span<const std::uint32_t>, float*, float*);
template void dense_row_ref<float>(const float*, std::size_t, float, RowSourceT<float>, std::size_t, float*);
template void dense_row_ref<std::uint16_t>(const float*, std::size_t, float, RowSourceT<std::uint16_t>,
                                           std::size_t, float*);

void to_half_ref(const float* x, std::size_t n, std::uint16_t* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = f32_to_f16(x[i]);
}

}  // namespace rvt::kernels
