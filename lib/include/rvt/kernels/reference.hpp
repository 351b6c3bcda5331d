// Scalar reference kernels: plain loops, the definition every fast path is tested against.
//
// A row kernel computes one query row of one head: scores = dot(q, key) * scale over the
// candidates, an exact softmax (max-subtracted, f32), and the weighted sum of values.
// Keys and values are addressed as base + position * stride (in floats), so the same kernel
// runs over a [seq][heads][dim] tensor, a KV cache, or a table of block means.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace rvt::kernels {

// Rows of one kv head: row j is at base + j * stride.
struct RowSource {
  const float* k = nullptr;
  const float* v = nullptr;
  std::size_t stride = 0;
};

// Landmark rows of one kv head plus each block's token count (for the mass bias).
struct LandmarkSource {
  RowSource rows;
  const std::uint32_t* counts = nullptr;
  bool mass_bias = false;  // add ln(count) to each landmark score
};

float dot_ref(const float* a, const float* b, std::size_t n);

// Sparse row: softmax over tokens (from `tokens`) and landmark blocks (from `landmarks`).
// scratch holds at least tokens.size() + blocks.size() floats. Empty candidate set -> zeros.
void sparse_row_ref(const float* q, std::size_t dim, float scale, RowSource tokens_src,
                    std::span<const std::uint32_t> tokens, const LandmarkSource& landmarks,
                    std::span<const std::uint32_t> blocks, float* scratch, float* out);

// Dense row over positions [0, count): one-pass online softmax, O(dim) extra memory.
void dense_row_ref(const float* q, std::size_t dim, float scale, RowSource src, std::size_t count,
                   float* out);

}  // namespace rvt::kernels
