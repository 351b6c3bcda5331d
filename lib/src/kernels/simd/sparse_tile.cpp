// The tiled sparse kernel, written once against vec.hpp and compiled per ISA like
// kernels_simd.cpp. Scores: one SIMD lane per query row. A tile of kLanes consecutive rows of
// one head is scored column by column (a column is a candidate the rows share, see
// rvt/attention/tile_pattern.hpp), so every score and the softmax are vertical vector
// operations: no horizontal reductions, no per-row bookkeeping.
//
// Relative columns read kLanes contiguous keys of K in key tiles (one vector per dim element:
// one aligned load when the keys start a tile, else two and a shift in registers); global and
// block columns broadcast one row. A window run (kLanes relative columns with consecutive
// offsets, the lowest key starting a tile) reads two aligned vectors per dim element and
// shifts them once per column: two loads where kLanes columns read the same keys. A tile's
// dims are contiguous, so a column reads one or two 2 KiB runs (dim 32, AVX-512) where
// dim-major rows made it touch one page per dim. Masked lanes score -inf and weigh exactly 0.
// Queries come in through in-register transposes. The value sums run row by row over the dims
// (value_rows below). Scratch: [columns][kLanes] scores, then softmax numerators.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <utility>

#include "rvt/kernels/fast.hpp"
#include "vec.hpp"

namespace rvt::kernels::RVT_KERNEL_NS {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLog2e = 1.44269504088896341f;

// Asks for `rows` rows of `dim` floats from `first` on (row r at first + r * stride) to be
// brought into L1 (kLocality 3) or L2 (2): the queries of the next tile and the one after, the
// V rows of the one after into L2, and the K rows of the next two key tiles. With the heads side
// by side in a row, one head's rows are short runs a few hundred bytes apart, a stream the
// hardware prefetchers did not run ahead of once the inputs no longer fitted the caches (bench
// preset, one thread, alternating: N = 8192 3.11 ms against 3.62 for the queries, 2.32 against
// 2.42 for the transposes; 1024 and 4096 level). On the family 25 host an L1 prefetch a tile
// ahead did nothing for rows in memory (the transposes of 4 heads at N = 8192: 1.0 ms, against
// 0.27 with the rows in L3); into L2 they took 0.45. So the rows a tile ahead go to L1 and those
// two ahead to L2: a call 9 - 22% faster at N = 4096 - 8192 on one thread, level to 10% on two;
// L2 prefetches alone lost 6 - 10% on two threads at 4096 (docs/performance.md). A tile's window
// reads its newest V rows first: one thread at N = 8192, each alternating with the same base,
// 4.1 - 4.2 ms without V prefetches, 2.9 - 3.0 with them (against 3.2 - 3.8); the V rows also
// prefetched into L1 a tile ahead were no faster (N = 1024 - 8192, seven alternating rounds).
// Always inlined: GCC 12 (its mod-ref analysis) finds a call to a prefetch-only function free
// of side effects and drops it, prefetches and all. A helper that wrapped the two calls below
// lost every prefetch of the sparse kernel, and the call got 25% slower at N = 8192.
template <int kLocality>
[[gnu::always_inline]] inline void prefetch_rows(const float* first, std::size_t stride, std::size_t rows, std::size_t dim) {
  constexpr std::size_t kLineFloats = 64 / sizeof(float);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t d = 0; d < dim; d += kLineFloats) __builtin_prefetch(first + r * stride + d, 0, kLocality);
  }
}

// Dims handled per score pass with the queries' vectors in registers (16 of 32 registers on
// AVX-512, 8 of 16 on AVX2). A chunk is square (kLanes rows x kLanes dims), so the queries
// come in through one in-register transpose.
constexpr std::size_t kChunk = kLanes;

// Calls fn(integral_constant<K>) for K in Ks..., unrolled.
template <typename Fn, std::size_t... K>
inline void unroll(std::index_sequence<K...>, Fn&& fn) {
  (fn(std::integral_constant<std::size_t, K>{}), ...);
}

// Whether relative columns [c, c + kLanes) are a window run: consecutive offsets, the key
// position of the last one's lane 0 (p0 - at - kLanes + 1, p0 the key position of lane 0's
// row) a multiple of kLanes.
inline bool window_run(std::span<const TileColumn> rel, std::size_t c, std::ptrdiff_t p0) {
  const auto lowest = static_cast<std::int64_t>(p0) - rel[c].at - static_cast<std::int64_t>(kLanes - 1);
  if (c + kLanes > rel.size() || (lowest & static_cast<std::int64_t>(kLanes - 1)) != 0) return false;
  for (std::size_t k = 1; k < kLanes; ++k) {
    if (rel[c + k].at != rel[c].at + static_cast<std::int64_t>(k)) return false;
  }
  return true;
}

// Where the kLanes keys from position p (>= -kLanes) start in key tiles t, dims from d0:
// dim d0 + e of the tile holding p is at `tile + e * kLanes`, the next tile's at
// `tile + e * kLanes + next`; p is lane `shift` of its tile.
struct KeySpan {
  const float* tile;
  std::size_t next, shift;
};
inline KeySpan key_span(const float* t, std::ptrdiff_t p, std::size_t dim, std::size_t d0) {
  const auto lanes = static_cast<std::ptrdiff_t>(kLanes);
  const std::ptrdiff_t tile = (p + lanes) / lanes - 1;  // floor(p / lanes): p + lanes >= 0
  return {t + tile * static_cast<std::ptrdiff_t>(dim * kLanes) + static_cast<std::ptrdiff_t>(d0 * kLanes), dim * kLanes,
          static_cast<std::size_t>(p - tile * lanes)};
}
// A run starting at column offset `at`: column k (offset at + k) reads keys from position
// p0 - at - k = lowest + kLanes - 1 - k, lowest starting a tile.
inline KeySpan run_span(const float* t, std::ptrdiff_t p0, std::int64_t at, std::size_t dim, std::size_t d0) {
  return key_span(t, p0 - at - static_cast<std::ptrdiff_t>(kLanes - 1), dim, d0);
}

// The tile's rows, dims [d0, d0 + ND), as ND vectors over the rows (rows past the tile's
// end read as 0), times scale and log2(e): the scores come out in log2 units, so the softmax
// takes 2^x (vexp2), cheaper than e^x. A call at N = 1024, one thread: 0.252 - 0.253 ms against
// 0.256 - 0.259 in four alternating pairs.
template <std::size_t ND>
void load_queries(const SparseTileArgs& a, std::size_t row0, std::size_t rows, std::size_t d0, vf* qv) {
  vf r[kLanes];
  for (std::size_t i = 0; i < kLanes; ++i) {
    const float* q = a.q + (row0 + std::min(i, rows - 1)) * a.q_stride + d0;  // a valid row, zeroed below
    r[i] = i < rows ? (ND == kLanes ? vload(q) : vload_part(q, ND)) : vzero();
  }
  vtranspose(r);
  const vf scale = vset1(a.scale * kLog2e);  // scores in log2 units for vexp2
  for (std::size_t e = 0; e < ND; ++e) qv[e] = vmul(r[e], scale);
}

// Adds dims [d0, d0 + ND) to every column's score (w: [columns][kLanes]); the first pass
// stores instead of adding. The chunk's query vectors stay in registers across columns.
// p0: the key position of row row0 (row0 + key_shift).
template <std::size_t ND>
void score_chunk(const SparseTileArgs& a, std::ptrdiff_t row0, std::ptrdiff_t p0, std::size_t rows,
                 const TileColumns& cols, std::size_t d0, bool first, float* w) {
  vf qv[ND];
  load_queries<ND>(a, static_cast<std::size_t>(row0), rows, d0, qv);
  auto finish_one = [&](vf sum) {
    vstore(w, first ? sum : vadd(vload(w), sum));
    w += kLanes;
  };
  auto finish = [&](vf s0, vf s1) { finish_one(vadd(s0, s1)); };
  const std::span<const TileColumn> rel = cols.relative;
  for (std::size_t c = 0; c < rel.size();) {
    if (window_run(rel, c, p0)) {
      // Half a run at a time: kLanes / 2 score accumulators next to the chunk's queries.
      const KeySpan ks = run_span(a.kt, p0, rel[c].at, a.dim, d0);
      constexpr std::size_t kHalf = kLanes / 2;
      unroll(std::make_index_sequence<2>{}, [&](auto half) {
        constexpr std::size_t k0 = decltype(half)::value * kHalf;
        vf s[kHalf];
        for (std::size_t k = 0; k < kHalf; ++k) s[k] = vzero();
        for (std::size_t e = 0; e < ND; ++e) {
          const vf lo = vload_aligned(ks.tile + e * kLanes), hi = vload_aligned(ks.tile + ks.next + e * kLanes);
          unroll(std::make_index_sequence<kHalf>{}, [&](auto k) {
            constexpr std::size_t kk = decltype(k)::value;
            s[kk] = vfma(qv[e], vshift_pair<static_cast<int>(kLanes - 1 - k0 - kk)>(lo, hi), s[kk]);
          });
        }
        for (std::size_t k = 0; k < kHalf; ++k) finish_one(s[k]);
      });
      c += kLanes;
      continue;
    }
    const KeySpan ks = key_span(a.kt, p0 - rel[c].at, a.dim, d0);
    vf s0 = vzero(), s1 = vzero();  // two chains: half the FMA latency per column
    if (ks.shift == 0) {
      for (std::size_t e = 0; e < ND; e += 2) {
        s0 = vfma(qv[e], vload_aligned(ks.tile + e * kLanes), s0);
        if (e + 1 < ND) s1 = vfma(qv[e + 1], vload_aligned(ks.tile + (e + 1) * kLanes), s1);
      }
    } else {
      const vidx shift = vshift_index(ks.shift);
      auto keys = [&](std::size_t e) {
        return vshift_var(vload_aligned(ks.tile + e * kLanes), vload_aligned(ks.tile + ks.next + e * kLanes), shift);
      };
      for (std::size_t e = 0; e < ND; e += 2) {
        s0 = vfma(qv[e], keys(e), s0);
        if (e + 1 < ND) s1 = vfma(qv[e + 1], keys(e + 1), s1);
      }
    }
    finish(s0, s1);
    ++c;
  }
  auto broadcast_columns = [&](std::span<const TileColumn> group, const float* base, std::size_t stride) {
    for (const TileColumn& c : group) {
      const float* row = base + static_cast<std::size_t>(c.at) * stride + d0;
      vf s0 = vzero(), s1 = vzero();
      for (std::size_t e = 0; e < ND; e += 2) {
        s0 = vfma(qv[e], vset1(row[e]), s0);
        if (e + 1 < ND) s1 = vfma(qv[e + 1], vset1(row[e + 1]), s1);
      }
      finish(s0, s1);
    }
  };
  broadcast_columns(cols.globals, a.k, a.kv_stride);
  broadcast_columns(cols.blocks, a.mean_k, a.mean_stride);
}

// Calls fn(integral_constant<ND>, d0) over [0, dim) in kChunk pieces, the last one
// shorter: each piece's size is a compile-time constant, so its vectors stay in registers.
template <typename Fn>
void for_dim_chunks(std::size_t dim, Fn&& fn) {
  std::size_t d0 = 0;
  for (; d0 + kChunk <= dim; d0 += kChunk) fn(std::integral_constant<std::size_t, kChunk>{}, d0);
  const std::size_t rest = dim - d0;
  [&]<std::size_t... N>(std::index_sequence<N...>) {
    ((rest == N + 1 ? (fn(std::integral_constant<std::size_t, N + 1>{}, d0), 0) : 0), ...);
  }(std::make_index_sequence<kChunk - 1>{});
}

// The value pass runs row by row, one SIMD lane per dim: a row's output is its columns' V rows
// (read where they are, row-major) weighted by its lane of the softmax numerators. So V needs no
// key tiles and the output no transpose. Rows go in groups whose accumulators (kValueVectors
// per row) take half the registers. In a window run the group's rows share most keys: each key's
// V row is loaded once and added to every row of the group whose run covers it (the run's
// diagonals), which on the family 25 host (512-bit shuffles through 256-bit units) replaced a
// shift per dim and column. One thread, alternating: N = 1024 0.260 ms against 0.283 - 0.288,
// 8192 2.94 - 3.00 against 3.18 - 3.35. Reading the input's rows, where the other heads' rows
// interleave, N >= 65536 was 3% slower (two threads: 10 - 15%); past 2 MiB of V a head, the
// values now come from a contiguous copy (SparseTileArgs::values). See
// docs/performance-history.md, "The value pass row by row ...".
constexpr std::size_t kValueVectors = 2;  // dims per value pass: 2 * kLanes
constexpr std::size_t kGroupRows = kLanes >= 16 ? 8 : 4;

// out[d0 .. d0 + (NV - 1) * kLanes + last) of the tile's rows = inv * the sum over columns of
// weight * value (w: [columns][kLanes] numerators, inv: [kLanes]); last: the floats of the last
// vector (kLanes unless kPartial). Flattened: GCC 12 left the unrolled lambdas out of line and
// the accumulators in memory (a tile about 40% slower).
template <std::size_t NV, bool kPartial>
[[gnu::flatten]] void value_rows(const SparseTileArgs& a, std::size_t row0, std::ptrdiff_t p0, std::size_t rows,
                                 const TileColumns& cols, const float* w, const float* inv, std::size_t d0,
                                 std::size_t last) {
  constexpr std::size_t G = kGroupRows;
  const std::size_t stride = a.values_stride;
  auto load = [&](const float* row, std::size_t n) {
    return kPartial && n == NV - 1 ? vload_part(row + d0 + n * kLanes, last) : vload(row + d0 + n * kLanes);
  };
  // The V row of lane i's key at column offset `at`: row0 + i - at, a row that exists where the
  // lane's bit is set.
  auto v_row = [&](std::size_t i, std::int64_t at) {
    return a.values + (static_cast<std::int64_t>(row0 + i) - at) * static_cast<std::int64_t>(stride);
  };
  const bool stream = kStreamsLines && !kPartial && a.stream_out && reinterpret_cast<std::uintptr_t>(a.out) % 64 == 0 &&
                      a.out_stride % kLanes == 0;
  const std::span<const TileColumn> rel = cols.relative;
  for (std::size_t i0 = 0; i0 < rows; i0 += G) {
    const std::size_t group_rows = std::min(G, rows - i0);
    const std::uint32_t group = ((1u << group_rows) - 1u) << i0;
    vf acc[G][NV];
    for (std::size_t g = 0; g < G; ++g) {
      for (std::size_t n = 0; n < NV; ++n) acc[g][n] = vzero();
    }
    const float* wc = w;  // the current column's numerators
    for (std::size_t c = 0; c < rel.size();) {
      if (group_rows == G && window_run(rel, c, p0)) {
        std::uint32_t every = group;
        for (std::size_t k = 0; k < kLanes; ++k) every &= rel[c + k].lanes;
        if (every == group) {
          // Key k (0 .. G + kLanes - 2) is row row0 + i0 - at - (kLanes - 1) + k; row g reads
          // it in the run's column kLanes - 1 + g - k where that is in [0, kLanes).
          const float* keys = v_row(i0, rel[c].at + static_cast<std::int64_t>(kLanes - 1));
          unroll(std::make_index_sequence<G + kLanes - 1>{}, [&](auto key) {
            constexpr std::size_t k = decltype(key)::value;
            vf values[NV];
            for (std::size_t n = 0; n < NV; ++n) values[n] = load(keys + k * stride, n);
            unroll(std::make_index_sequence<G>{}, [&](auto row) {
              constexpr std::size_t g = decltype(row)::value;
              if constexpr (g <= k && k < g + kLanes) {
                const vf wv = vset1(wc[(kLanes - 1 + g - k) * kLanes + i0 + g]);
                for (std::size_t n = 0; n < NV; ++n) acc[g][n] = vfma(wv, values[n], acc[g][n]);
              }
            });
          });
          wc += kLanes * kLanes;
          c += kLanes;
          continue;
        }
      }
      // One column: each row its own key; a masked lane reads nothing (its key may not exist).
      const std::uint32_t lanes = rel[c].lanes;
      const std::int64_t at = rel[c].at;
      unroll(std::make_index_sequence<G>{}, [&](auto row) {
        constexpr std::size_t g = decltype(row)::value;
        if (g >= group_rows || !((lanes >> (i0 + g)) & 1u)) return;
        const float* vr = v_row(i0 + g, at);
        const vf wv = vset1(wc[i0 + g]);
        for (std::size_t n = 0; n < NV; ++n) acc[g][n] = vfma(wv, load(vr, n), acc[g][n]);
      });
      wc += kLanes;
      ++c;
    }
    // Global and block columns: one row for every lane, masked lanes weighing exactly 0.
    auto shared_rows = [&](std::span<const TileColumn> group_columns, const float* base, std::size_t base_stride) {
      for (const TileColumn& col : group_columns) {
        const float* vr = base + static_cast<std::size_t>(col.at) * base_stride;
        vf values[NV];
        for (std::size_t n = 0; n < NV; ++n) values[n] = load(vr, n);
        unroll(std::make_index_sequence<G>{}, [&](auto row) {
          constexpr std::size_t g = decltype(row)::value;
          const vf wv = vset1(wc[i0 + g]);
          for (std::size_t n = 0; n < NV; ++n) acc[g][n] = vfma(wv, values[n], acc[g][n]);
        });
        wc += kLanes;
      }
    };
    shared_rows(cols.globals, a.values, stride);
    shared_rows(cols.blocks, a.mean_v, a.mean_stride);
    unroll(std::make_index_sequence<G>{}, [&](auto row) {
      constexpr std::size_t g = decltype(row)::value;
      if (g >= group_rows) return;
      const vf scale = vset1(inv[i0 + g]);
      float* o = a.out + (row0 + i0 + g) * a.out_stride + d0;
      for (std::size_t n = 0; n < NV; ++n) {
        const vf x = vmul(acc[g][n], scale);
        if (kPartial && n == NV - 1) vstore_part(o + n * kLanes, x, last);
        else if (stream) vstream(o + n * kLanes, x);  // each row's 2 * kLanes dims are whole lines
        else vstore(o + n * kLanes, x);
      }
    });
  }
}

// The value pass over [0, dim) in pieces of kValueVectors vectors, the last one shorter.
void value_pass(const SparseTileArgs& a, std::size_t row0, std::ptrdiff_t p0, std::size_t rows, const TileColumns& cols,
                const float* w, const float* inv) {
  constexpr std::size_t kPiece = kValueVectors * kLanes;
  static_assert(kValueVectors == 2, "the pieces below are one or two vectors");
  std::size_t d0 = 0;
  for (; d0 + kPiece <= a.dim; d0 += kPiece) value_rows<2, false>(a, row0, p0, rows, cols, w, inv, d0, kLanes);
  const std::size_t rest = a.dim - d0;
  if (rest > kLanes) value_rows<2, true>(a, row0, p0, rows, cols, w, inv, d0, rest - kLanes);
  else if (rest == kLanes) value_rows<1, false>(a, row0, p0, rows, cols, w, inv, d0, kLanes);
  else if (rest > 0) value_rows<1, true>(a, row0, p0, rows, cols, w, inv, d0, rest);
}

}  // namespace

void sparse_tile(const SparseTileArgs& a, std::size_t row0, std::size_t rows, const TileColumns& cols, float* w) {
  const std::size_t dim = a.dim;
  if (a.prefetch_ahead) {
    if (const std::size_t next = row0 + rows; next < a.seq) {
      prefetch_rows<3>(a.q + next * a.q_stride, a.q_stride, std::min(kLanes, a.seq - next), dim);
    }
    if (const std::size_t after = row0 + rows + kLanes; after < a.seq) {
      prefetch_rows<2>(a.q + after * a.q_stride, a.q_stride, std::min(kLanes, a.seq - after), dim);
      prefetch_rows<2>(a.values + after * a.values_stride, a.values_stride, std::min(kLanes, a.seq - after), dim);
    }
  }

  // Scores, dims in chunks; then the blocks' mass bias, masked lanes to -inf and the per-lane max.
  const auto r0 = static_cast<std::ptrdiff_t>(row0), p0 = static_cast<std::ptrdiff_t>(row0 + a.key_shift);
  for_dim_chunks(dim, [&](auto nd, std::size_t d0) { score_chunk<decltype(nd)::value>(a, r0, p0, rows, cols, d0, d0 == 0, w); });
  const vf neg_inf = vset1(kNegInf);
  vf m = neg_inf;
  float* s = w;
  auto mask = [&](std::span<const TileColumn> group, const float* bias) {
    for (const TileColumn& c : group) {
      const vf raw = vload(s);
      const vf sc = vselect_lanes(neg_inf, bias ? vadd(raw, vset1(bias[c.at])) : raw, c.lanes);
      vstore(s, sc);
      m = vmax(m, sc);
      s += kLanes;
    }
  };
  mask(cols.relative, nullptr);
  mask(cols.globals, nullptr);
  mask(cols.blocks, a.block_bias);
  m = vmax(vset1(-std::numeric_limits<float>::max()), m);  // lanes past the last row: no candidate; NaN stays

  // Softmax numerators in place; a masked lane (-inf) weighs exactly 0 (vexp2).
  vf sum = vzero();
  const float* const end = s;
  for (s = w; s != end; s += kLanes) {
    const vf e = vexp2(vsub(vload(s), m));
    vstore(s, e);
    sum = vadd(sum, e);
  }
  alignas(64) float inv[kLanes];
  // A NaN sum (an overflowed score) stays NaN, as in the scalar reference (vexp in vec.hpp).
  vstore(inv, vdiv(vset1(1.0f), vmax(vset1(std::numeric_limits<float>::min()), sum)));
  value_pass(a, row0, p0, rows, cols, w, inv);
}

// Lanes [lo, hi) of a tile, lane i from row `first + (i - lo) * x_stride` (first: lane lo's
// row), dims d .. d + kLanes - 1, through registers (vtranspose): dim d + e's kLanes values
// (one per lane, 0 outside [lo, hi)) to out + e * out_step.
template <bool kFull>
inline void transpose_block(const float* first, std::size_t x_stride, std::size_t lo, std::size_t hi, std::size_t d,
                            float* out, std::size_t out_step) {
  vf r[kLanes];
  for (std::size_t i = 0; i < kLanes; ++i) {
    r[i] = kFull || (i >= lo && i < hi) ? vload(first + (i - lo) * x_stride + d) : vzero();
  }
  vtranspose(r);
  for (std::size_t i = 0; i < kLanes; ++i) vstore(out + i * out_step, r[i]);
}

// Key positions [begin, end) into key tiles, position p holding row p - shift: kLanes x
// kLanes blocks through registers (a tile's missing rows as zero vectors), the dims past
// the last whole block element by element; positions below shift and a partial last
// tile's lanes past end are 0. The next two tiles' rows are prefetched.
void transpose_tiles(const float* x, std::size_t x_stride, std::size_t shift, std::size_t begin, std::size_t end,
                     std::size_t dim, float* out) {
  for (std::size_t p = begin; p < end; p += kLanes) {
    float* tile = out + (p / kLanes) * dim * kLanes;
    const std::size_t lo = p < shift ? shift - p : 0, hi = std::min(kLanes, end - p);  // the lanes with rows
    const float* first = x + (p + lo - shift) * x_stride;
    if (p + 2 * kLanes <= end) prefetch_rows<3>(x + (p + kLanes - shift) * x_stride, x_stride, kLanes, dim);
    if (p + 3 * kLanes <= end) prefetch_rows<2>(x + (p + 2 * kLanes - shift) * x_stride, x_stride, kLanes, dim);
    std::size_t d = 0;
    for (; d + kLanes <= dim; d += kLanes) {
      if (lo == 0 && hi == kLanes) transpose_block<true>(first, x_stride, 0, kLanes, d, tile + d * kLanes, kLanes);
      else transpose_block<false>(first, x_stride, lo, hi, d, tile + d * kLanes, kLanes);
    }
    for (; d < dim; ++d) {
      for (std::size_t i = 0; i < kLanes; ++i) {
        tile[d * kLanes + i] = i >= lo && i < hi ? first[(i - lo) * x_stride + d] : 0.0f;
      }
    }
  }
}

}  // namespace rvt::kernels::RVT_KERNEL_NS
