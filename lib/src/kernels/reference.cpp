#include "rvt/kernels/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace rvt::kernels {

float dot_ref(const float* a, const float* b, std::size_t n) {
  float acc = 0.0f;
  for (std::size_t d = 0; d < n; ++d) acc += a[d] * b[d];
  return acc;
}

void sparse_row_ref(const float* q, std::size_t dim, float scale, RowSource src,
                    std::span<const std::uint32_t> tokens, const LandmarkSource& lm,
                    std::span<const std::uint32_t> blocks, float* scratch, float* out) {
  std::fill(out, out + dim, 0.0f);
  const std::size_t n_tok = tokens.size();
  const std::size_t total = n_tok + blocks.size();
  if (total == 0) return;

  float max_score = -std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < n_tok; ++c) {
    scratch[c] = dot_ref(q, src.k + tokens[c] * src.stride, dim) * scale;
    max_score = std::max(max_score, scratch[c]);
  }
  for (std::size_t c = 0; c < blocks.size(); ++c) {
    float s = dot_ref(q, lm.rows.k + blocks[c] * lm.rows.stride, dim) * scale;
    if (lm.mass_bias) s += std::log(static_cast<float>(lm.counts[blocks[c]]));
    scratch[n_tok + c] = s;
    max_score = std::max(max_score, s);
  }

  float sum = 0.0f;
  for (std::size_t c = 0; c < total; ++c) {
    scratch[c] = std::exp(scratch[c] - max_score);
    sum += scratch[c];
  }
  for (std::size_t c = 0; c < total; ++c) {
    const float* value = c < n_tok ? src.v + tokens[c] * src.stride
                                   : lm.rows.v + blocks[c - n_tok] * lm.rows.stride;
    const float w = scratch[c];
    for (std::size_t d = 0; d < dim; ++d) out[d] += w * value[d];
  }
  const float inv = 1.0f / sum;
  for (std::size_t d = 0; d < dim; ++d) out[d] *= inv;
}

void dense_row_ref(const float* q, std::size_t dim, float scale, RowSource src, std::size_t count,
                   float* out) {
  std::fill(out, out + dim, 0.0f);
  if (count == 0) return;
  float running_max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
  for (std::size_t j = 0; j < count; ++j) {
    const float s = dot_ref(q, src.k + j * src.stride, dim) * scale;
    const float* value = src.v + j * src.stride;
    if (s > running_max) {  // rescale what has been accumulated to the new maximum
      const float correction = std::exp(running_max - s);
      sum *= correction;
      for (std::size_t d = 0; d < dim; ++d) out[d] *= correction;
      running_max = s;
    }
    const float w = std::exp(s - running_max);
    sum += w;
    for (std::size_t d = 0; d < dim; ++d) out[d] += w * value[d];
  }
  const float inv = 1.0f / sum;
  for (std::size_t d = 0; d < dim; ++d) out[d] *= inv;
}

}  // namespace rvt::kernels
