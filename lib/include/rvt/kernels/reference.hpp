// Scalar reference kernels: plain loops, the definition every fast path is tested against.
//
// A row kernel computes one query row of one head: scores = dot(q, key) * scale over the
// candidates, an exact softmax (max-subtracted, f32), and the weighted sum of values.
// Keys and values are addressed as base + position * stride (in elements), so the same
// kernel runs over a [seq][heads][dim] tensor, a KV cache (f32 or f16 storage), or a table
// of block means. f16 elements (IEEE half bits) are widened exactly to f32 on load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace rvt::kernels {

// Rows of one kv head: row j is at base + j * stride. T is float or std::uint16_t (f16).
template <typename T>
struct RowSourceT {
  const T* k = nullptr;
  const T* v = nullptr;
  std::size_t stride = 0;
};
using RowSource = RowSourceT<float>;
using HalfRowSource = RowSourceT<std::uint16_t>;

// Landmark rows of one kv head (always f32) plus each block's token count.
struct LandmarkSource {
  RowSource rows;
  const std::uint32_t* counts = nullptr;
  bool mass_bias = false;  // add ln(count) to each landmark score
};

float dot_ref(const float* a, const float* b, std::size_t n);

// Sparse row: softmax over tokens (from `tokens`) and landmark blocks (from `landmarks`).
// scratch holds at least tokens.size() + blocks.size() floats; on return scratch[c] is
// candidate c's unnormalised weight and the function returns their sum (so weight c is
// scratch[c] / sum: the H2O eviction scores use it). Empty candidate set -> zeros, 0.
template <typename T>
float sparse_row_ref(const float* q, std::size_t dim, float scale, RowSourceT<T> tokens_src,
                     std::span<const std::uint32_t> tokens, const LandmarkSource& landmarks,
                     std::span<const std::uint32_t> blocks, float* scratch, float* out);

// Dense row over positions [0, count): one-pass online softmax, O(dim) extra memory.
template <typename T>
void dense_row_ref(const float* q, std::size_t dim, float scale, RowSourceT<T> src, std::size_t count,
                   float* out);

// Block mean: out[e] = the mean of x[t * stride + e] over t < count, for e < len: a float
// sum in token order, divided by count. (Double sums gave the same errors against the Rust
// fixtures, c1 / c3 / c7: 3.3e-7 / 2.4e-7 / 4.8e-7, and their conversions cost the SIMD
// pass about 5% of a sparse call at N = 1024.)
void block_mean_ref(const float* x, std::size_t stride, std::size_t count, std::size_t len, float* out);
// block_mean_ref over each block of `block` rows in rows [0, rows), the last one shorter:
// block b's means to out + b * out_stride (KernelTable::block_means computes exactly these).
void block_means_ref(const float* x, std::size_t stride, std::size_t block, std::size_t rows, std::size_t len,
                     float* out, std::size_t out_stride);

// out[i] = f32_to_f16(x[i]) for i < n (rvt/core/half.hpp): KernelTable::to_half's numbers.
void to_half_ref(const float* x, std::size_t n, std::uint16_t* out);

}  // namespace rvt::kernels
