// The SIMD kernels, one copy per ISA (namespaces avx2 and avx512, compiled from the same
// source with different flags), reached through a small table picked once per call by
// the attention front ends. Each kernel computes exactly what its scalar reference in
// reference.hpp computes, up to float rounding; tests compare them on every ISA the
// machine has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "rvt/kernels/isa.hpp"
#include "rvt/kernels/reference.hpp"

namespace rvt::kernels {

// One head's dense rows [row_begin, row_end), flash style: key tiles of `lanes` keys stored
// transposed ([dim][lanes] per tile, zero-padded), online softmax per row, register-blocked
// over 4 query rows. Query row i of the head at q + i * q_stride; value row j at
// v + j * v_stride; output row i at out + i * out_stride.
struct DenseHeadArgs {
  const float* q = nullptr;
  std::size_t q_stride = 0;
  const float* k_tiles = nullptr;  // from transpose_key_tiles
  const float* v = nullptr;
  std::size_t v_stride = 0;
  float* out = nullptr;
  std::size_t out_stride = 0;
  std::size_t n_keys = 0, dim = 0;
  bool causal = true;
  float scale = 1.0f;
};

struct KernelTable {
  Isa isa;
  std::size_t lanes;  // key tile width
  float (*sparse_row_f32)(const float*, std::size_t, float, RowSource, std::span<const std::uint32_t>,
                          const LandmarkSource&, std::span<const std::uint32_t>, float*, float*);
  float (*sparse_row_f16)(const float*, std::size_t, float, HalfRowSource, std::span<const std::uint32_t>,
                          const LandmarkSource&, std::span<const std::uint32_t>, float*, float*);
  void (*dense_rows)(const DenseHeadArgs&, std::size_t row_begin, std::size_t row_end);
  // Runs `iterations` rounds of 12 independent vector FMAs (enough to cover FMA latency x
  // ports) and returns the float operations done (2 per lane per FMA). Time it to get this
  // core's FMA peak; bench reports kernels as a fraction of it.
  double (*fma_peak_work)(std::size_t iterations);
};

// The table for a resolved ISA (kAvx2 or kAvx512); nullptr for kScalar.
const KernelTable* kernel_table(Isa isa);

// K rows of one kv head (k + j * k_stride, j < n) into tiles of `lanes` keys, transposed:
// tile t holds dim rows of `lanes` floats, zero-padded past n. Returns the float count
// written (tiles * dim * lanes); out must hold tile_floats(n, dim, lanes).
std::size_t tile_floats(std::size_t n, std::size_t dim, std::size_t lanes);
void transpose_key_tiles(const float* k, std::size_t k_stride, std::size_t n, std::size_t dim, std::size_t lanes,
                         float* out);

namespace avx2 {
extern const KernelTable kTable;
}
namespace avx512 {
extern const KernelTable kTable;
}

}  // namespace rvt::kernels
