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

// Sparse rows in tiles of `lanes` consecutive query rows of one head, one SIMD lane per
// row (see attention/tile_pattern.hpp for the columns). A column is a candidate shared by
// the rows of the tile: a relative column is key row - at for every lane (read from the
// K/V key tiles: one tile, or two and a shift), a global column is key `at`, a block
// column is landmark block `at` (both broadcast); `lanes` masks the rows it belongs to.
struct TileColumn {
  std::int64_t at = 0;
  std::uint32_t lanes = 0;
};
struct TileColumns {
  std::span<const TileColumn> relative, globals, blocks;
};
struct SparseTileArgs {
  const float* q = nullptr;  // query row i of the head at q + i * q_stride
  std::size_t q_stride = 0;
  std::size_t seq = 0;  // query rows (= keys): a tile prefetches the rows of the next one below it
  // The kv head's K in key tiles (KernelTable::transpose_tiles), key j at position
  // p = j + key_shift: element d at kt[tile(p) * dim * lanes + d * lanes + p - tile(p) * lanes],
  // tile(p) = floor(p / lanes), for p in [-lanes, n + key_shift + 2 * lanes) (zero padding),
  // so lanes past either end read only padding. The dims of a tile are contiguous: a column
  // reads one or two short runs.
  const float* kt = nullptr;
  std::size_t key_shift = 0;  // the query tiles' shift (attention/tile_pattern.hpp, TileGrid)
  // Row-major K/V of the kv head, key j at k + j * kv_stride: K for the global columns, both for
  // the one-row tiles (the row kernel), V as the source of `values`.
  const float* k = nullptr;
  const float* v = nullptr;
  std::size_t kv_stride = 0;
  // The V rows the value sums read (they run row by row): key j at values + j * values_stride,
  // the rows of v or a contiguous copy of them.
  const float* values = nullptr;
  std::size_t values_stride = 0;
  const float* mean_k = nullptr;  // landmark block b at mean_k + b * mean_stride
  const float* mean_v = nullptr;
  std::size_t mean_stride = 0;
  // LandmarkMode::kMass: block b's scores gain block_bias[b], the log2 of its token count (the
  // scores are in log2 units; the reference adds ln(count) to the natural ones). Null: kMean.
  const float* block_bias = nullptr;
  float* out = nullptr;  // output row i at out + i * out_stride
  std::size_t out_stride = 0;
  // Write whole output lines with streaming stores (where the ISA's vector is a line and the
  // rows are line-aligned), not through the caches; KernelTable::stream_fence after the tiles.
  bool stream_out = false;
  // Ask for the rows of the tiles after this one ahead (queries into L1/L2, V rows into L2).
  // Off where the inputs stay in the caches from tile to tile: there the prefetches only cost.
  bool prefetch_ahead = true;
  std::size_t dim = 0;
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
  // Rows [row0, row0 + rows), rows <= lanes; scratch holds lanes * (all columns) floats.
  void (*sparse_tile)(const SparseTileArgs&, std::size_t row0, std::size_t rows, const TileColumns&, float* scratch);
  // Key positions [begin, end) (begin a multiple of lanes) of x's rows into key tiles of
  // `lanes` positions, transposed: position p holds row p - shift, its element d at
  // out[(p / lanes) * dim * lanes + d * lanes + p % lanes] (K for both kernels, V for the
  // sparse one). Positions below shift, and a partial last tile's lanes past end, are 0.
  // The SIMD twin of transpose_key_tiles.
  void (*transpose_tiles)(const float* x, std::size_t x_stride, std::size_t shift, std::size_t begin, std::size_t end,
                          std::size_t dim, float* out);
  // The means of the consecutive blocks of `block` rows (the last one shorter) in rows
  // [0, rows) of x (row t at x + t * stride), elements [0, len) of each: block b's to
  // out + b * out_stride. Exactly block_means_ref's numbers (the same float sums in token
  // order, one lane per element; short element runs take several blocks per pass).
  void (*block_means)(const float* x, std::size_t stride, std::size_t block, std::size_t rows, std::size_t len,
                      float* out, std::size_t out_stride);
  // True if any of x[0, n) is NaN or +-Inf (the guard that sends such inputs to the reference);
  // its scalar reference is rvt::any_nonfinite (rvt/core/stats.hpp).
  bool (*any_nonfinite)(const float* x, std::size_t n);
  // to_half_ref's halves (reference.hpp), by the hardware's conversion (F16C), which rounds
  // the same way bit for bit (tested).
  void (*to_half)(const float* x, std::size_t n, std::uint16_t* out);
  // Runs `iterations` rounds of 12 independent vector FMAs (enough to cover FMA latency x
  // ports) and returns the float operations done (2 per lane per FMA). Time it to get this
  // core's FMA peak; bench reports kernels as a fraction of it.
  double (*fma_peak_work)(std::size_t iterations);
  // The normal generator's fast path (rvt/kernels/box_muller.hpp): pairs [first_pair,
  // first_pair + n) of the normal stream of `seed` into out[0, 2n), box_muller_pair's floats:
  // glibc's, or NaN where the polynomials cannot tell (1 value in 48,000). Returns how many
  // are NaN.
  std::size_t (*normal_pairs)(std::uint64_t seed, std::uint64_t first_pair, std::size_t n, float* out);
  // Orders this thread's streaming stores (SparseTileArgs::stream_out) before its later
  // stores, such as the one that tells another thread the work is done.
  void (*stream_fence)();
};

// The table for a resolved ISA (kAvx2 or kAvx512); nullptr for kScalar.
const KernelTable* kernel_table(Isa isa);

// K rows of one kv head (k + j * k_stride, j < n) into tiles of `lanes` key positions,
// transposed, row j at position j + shift: tile t holds dim rows of `lanes` floats, zero
// below shift and past n + shift; out must hold tile_floats(n + shift, dim, lanes) floats.
// The scalar reference of KernelTable::transpose_tiles.
std::size_t tile_floats(std::size_t n, std::size_t dim, std::size_t lanes);
void transpose_key_tiles(const float* k, std::size_t k_stride, std::size_t n, std::size_t shift, std::size_t dim,
                         std::size_t lanes, float* out);

namespace avx2 {
extern const KernelTable kTable;
}
namespace avx512 {
extern const KernelTable kTable;
}

}  // namespace rvt::kernels
