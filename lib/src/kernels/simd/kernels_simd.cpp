// SIMD kernels, written once against vec.hpp and compiled per ISA (see lib/CMakeLists.txt).
//
// Sparse row: scores for 4 candidates at a time (SIMD over dim, the q loads shared, one
// horizontal reduction per candidate), a vectorised max/exp/sum over the score list, then
// the weighted value sum with SIMD over dim, accumulators in registers.
// Dense rows: FlashAttention-2 style. Keys in tiles of kLanes, stored transposed, so one
// vector FMA scores kLanes keys against one broadcast query element; a group of query rows
// shares each key-tile and V-row load, and a softmax step covers up to 4 tiles (see
// DenseBlocking); the online softmax rescales the output accumulators (kept in registers)
// at most once per step; causal tiles past the group's last row are never visited and the
// diagonal tiles are masked.
// Sparse rows keep up to 8 vectors of the output in registers (head dims up to 64 on AVX2, 128
// on AVX-512), wider heads run the sums in chunks of 8 vectors. Dense rows run their V sums in
// chunks of kSumVectors output vectors (4 rows x 4 vectors in registers on AVX-512, 4 x 2 on
// AVX2) up to kMaxDenseVectors (512 dims on AVX2, 1024 on AVX-512); wider heads take scalar
// loops.
#include <algorithm>
#include <cmath>
#include <limits>

#include "rvt/kernels/fast.hpp"
#include "vec.hpp"

namespace rvt::kernels::RVT_KERNEL_NS {
namespace {

constexpr std::size_t kMaxVectors = 16;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Calls fn.template operator()<N>() for the runtime n in [1, kMax]: a count of vectors that
// the loops below need as a constant, to keep their accumulators in registers.
template <std::size_t kMax, typename Fn>
inline void with_count(std::size_t n, Fn&& fn) {
  [&]<std::size_t... N>(std::index_sequence<N...>) {
    ((n == N + 1 ? (fn.template operator()<N + 1>(), 0) : 0), ...);
  }(std::make_index_sequence<kMax>{});
}

// Loads vector v of a dim-long row; the last one may be partial.
template <typename T>
inline vf load_vec(const T* row, std::size_t v, std::size_t dim) {
  const std::size_t d = v * kLanes;
  return d + kLanes <= dim ? vload(row + d) : vload_part(row + d, dim - d);
}

inline void store_vec(float* row, std::size_t v, std::size_t dim, vf x) {
  const std::size_t d = v * kLanes;
  if (d + kLanes <= dim) vstore(row + d, x);
  else vstore_part(row + d, x, dim - d);
}

template <typename T>
inline float dot(const float* q, const T* k, std::size_t dim) {
  vf acc = vzero();
  std::size_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) acc = vfma(vload(q + d), vload(k + d), acc);
  if (d < dim) acc = vfma(vload_part(q + d, dim - d), vload_part(k + d, dim - d), acc);
  return vsum(acc);
}

// Scores of 4 keys against q, sharing the q loads.
template <typename T>
inline void dot4(const float* q, const T* k0, const T* k1, const T* k2, const T* k3, std::size_t dim, float* s) {
  vf a0 = vzero(), a1 = vzero(), a2 = vzero(), a3 = vzero();
  std::size_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) {
    const vf qv = vload(q + d);
    a0 = vfma(qv, vload(k0 + d), a0);
    a1 = vfma(qv, vload(k1 + d), a1);
    a2 = vfma(qv, vload(k2 + d), a2);
    a3 = vfma(qv, vload(k3 + d), a3);
  }
  if (d < dim) {
    const std::size_t n = dim - d;
    const vf qv = vload_part(q + d, n);
    a0 = vfma(qv, vload_part(k0 + d, n), a0);
    a1 = vfma(qv, vload_part(k1 + d, n), a1);
    a2 = vfma(qv, vload_part(k2 + d, n), a2);
    a3 = vfma(qv, vload_part(k3 + d, n), a3);
  }
  vsum4(a0, a1, a2, a3, s);
}

// Scores of the rows idx against q (q already multiplied by the softmax scale).
template <typename T>
void score_rows(const float* q, std::size_t dim, const T* base, std::size_t stride,
                std::span<const std::uint32_t> idx, float* out) {
  std::size_t c = 0;
  for (; c + 4 <= idx.size(); c += 4) {
    dot4(q, base + idx[c] * stride, base + idx[c + 1] * stride, base + idx[c + 2] * stride,
         base + idx[c + 3] * stride, dim, out + c);
  }
  for (; c < idx.size(); ++c) out[c] = dot(q, base + idx[c] * stride, dim);
}

// Softmax numerators in place (max-subtracted exp); returns their sum. The tail is one
// masked vector: padding lanes read as -inf, so they count neither in the max nor the sum.
float exp_in_place(float* s, std::size_t n) {
  const std::size_t full = n - n % kLanes, rest = n - full;
  const vf neg_inf = vset1(kNegInf);
  vf m = neg_inf;
  for (std::size_t c = 0; c < full; c += kLanes) m = vmax(m, vload(s + c));
  const vf tail = rest ? vblend_part(neg_inf, vload_part(s + full, rest), rest) : neg_inf;
  const float top = vhmax(vmax(m, tail));
  // Every candidate scored -inf: weights 0, a zero row (as the reference). maxps may pass over
  // a NaN score, which must still make the row NaN.
  if (top == kNegInf && std::none_of(s, s + n, [](float x) { return std::isnan(x); })) {
    std::fill(s, s + n, 0.0f);
    return 0.0f;
  }
  const vf mv = vset1(top);
  vf sum = vzero();
  for (std::size_t c = 0; c < full; c += kLanes) {
    const vf e = vexp(vsub(vload(s + c), mv));
    vstore(s + c, e);
    sum = vadd(sum, e);
  }
  if (rest) {
    const vf e = vexp(vsub(tail, mv));  // exp(-inf) = 0 in the padding lanes
    vstore_part(s + full, e, rest);
    sum = vadd(sum, e);
  }
  return vsum(sum);
}

// acc[0..NV) += sum_c w[c] * row(idx[c]), rows of dim elements at base + idx * stride.
// NV is a compile-time constant so the accumulators stay in registers. Even and odd
// candidates go to two sets of accumulators, added at the end: with one set every FMA
// waited for the one before, one FMA latency per candidate. Decode step, bench preset, one
// thread, alternating: T = 1024 660 - 681 ns against 691 - 721, 4096 721 - 731 against
// 761 - 771, 65536 level (its far rows' loads dominate).
template <std::size_t NV, typename T>
inline void weighted_sum(const float* w, std::span<const std::uint32_t> idx, const T* base, std::size_t stride,
                         std::size_t dim, vf* acc) {
  vf odd[NV];
  for (std::size_t v = 0; v < NV; ++v) odd[v] = vzero();
  std::size_t c = 0;
  for (; c + 2 <= idx.size(); c += 2) {
    const vf w0 = vset1(w[c]), w1 = vset1(w[c + 1]);
    const T* row0 = base + idx[c] * stride;
    const T* row1 = base + idx[c + 1] * stride;
    for (std::size_t v = 0; v < NV; ++v) {
      acc[v] = vfma(w0, load_vec(row0, v, dim), acc[v]);
      odd[v] = vfma(w1, load_vec(row1, v, dim), odd[v]);
    }
  }
  if (c < idx.size()) {
    const vf wv = vset1(w[c]);
    const T* row = base + idx[c] * stride;
    for (std::size_t v = 0; v < NV; ++v) acc[v] = vfma(wv, load_vec(row, v, dim), acc[v]);
  }
  for (std::size_t v = 0; v < NV; ++v) acc[v] = vadd(acc[v], odd[v]);
}

template <std::size_t NV, typename T>
void weighted_output(const float* weights, float sum, RowSourceT<T> src, std::span<const std::uint32_t> tokens,
                     const LandmarkSource& lm, std::span<const std::uint32_t> blocks, std::size_t dim, float* out) {
  vf acc[NV];
  for (std::size_t v = 0; v < NV; ++v) acc[v] = vzero();
  weighted_sum<NV>(weights, tokens, src.v, src.stride, dim, acc);
  weighted_sum<NV>(weights + tokens.size(), blocks, lm.rows.v, lm.rows.stride, dim, acc);
  const vf inv = vset1(sum > 0.0f ? 1.0f / sum : 0.0f);  // 0: all weights 0; a NaN sum stays in acc
  for (std::size_t v = 0; v < NV; ++v) store_vec(out, v, dim, vmul(acc[v], inv));
}

// A row's candidate scores into scratch, the tokens' then the landmark blocks': q's dot
// products times score_scale (1 where q comes scaled: no multiply), plus ln(count) under kMass.
// Shared by sparse_row and sparse_row_wide; always inlined, so sparse_row's constant 1 drops
// the multiplies (decode step, bench preset, T = 4096: level with the code written out in place).
template <typename T>
[[gnu::always_inline]] inline void candidate_scores(const float* q, std::size_t dim, float score_scale,
                                                    RowSourceT<T> src, std::span<const std::uint32_t> tokens,
                                                    const LandmarkSource& lm, std::span<const std::uint32_t> blocks,
                                                    float* scratch) {
  auto scale = [&](float* s, std::size_t n) {
    if (score_scale != 1.0f) {
      for (std::size_t c = 0; c < n; ++c) s[c] *= score_scale;
    }
  };
  const std::size_t n_tok = tokens.size();
  score_rows(q, dim, src.k, src.stride, tokens, scratch);
  scale(scratch, n_tok);
  if (!blocks.empty()) {
    float* s = scratch + n_tok;
    score_rows(q, dim, lm.rows.k, lm.rows.stride, blocks, s);
    scale(s, blocks.size());
    if (lm.mass_bias) {
      for (std::size_t c = 0; c < blocks.size(); ++c) s[c] += std::log(static_cast<float>(lm.counts[blocks[c]]));
    }
  }
}

// The output of a head wider than the switch in sparse_row takes, in chunks of up to 8 vectors,
// each chunk's accumulators in registers: a chunk is weighted_output over the rows' elements
// from its first one on (the V pointers and out moved there, dim shortened to match).
// Not inlined, nor is sparse_row_wide: inlined into sparse_row they slowed the bench preset's
// decode step by 1.5 - 8% (docs/performance.md, index: "The row kernel's output in a loop ...").
template <typename T>
[[gnu::noinline]] void weighted_output_chunks(const float* weights, float sum, RowSourceT<T> src,
                                              std::span<const std::uint32_t> tokens, const LandmarkSource& lm,
                                              std::span<const std::uint32_t> blocks, std::size_t dim, float* out) {
  constexpr std::size_t kChunk = 8;
  const std::size_t nv = (dim + kLanes - 1) / kLanes;
  for (std::size_t v0 = 0; v0 < nv; v0 += kChunk) {
    const std::size_t e0 = v0 * kLanes;
    RowSourceT<T> chunk_src = src;
    chunk_src.v += e0;
    LandmarkSource chunk_lm = lm;
    if (chunk_lm.rows.v) chunk_lm.rows.v += e0;
    with_count<kChunk>(std::min(kChunk, nv - v0), [&]<std::size_t NV>() {
      weighted_output<NV>(weights, sum, chunk_src, tokens, chunk_lm, blocks, dim - e0, out + e0);
    });
  }
}

// Heads past kMaxVectors: q is not scaled into a buffer, the scores are scaled instead.
template <typename T>
[[gnu::noinline]] float sparse_row_wide(const float* q, std::size_t dim, float scale, RowSourceT<T> src,
                                        std::span<const std::uint32_t> tokens, const LandmarkSource& lm,
                                        std::span<const std::uint32_t> blocks, float* scratch, float* out) {
  const std::size_t total = tokens.size() + blocks.size();
  if (total == 0) {
    std::fill(out, out + dim, 0.0f);
    return 0.0f;
  }
  candidate_scores(q, dim, scale, src, tokens, lm, blocks, scratch);
  const float sum = exp_in_place(scratch, total);
  weighted_output_chunks(scratch, sum, src, tokens, lm, blocks, dim, out);
  return sum;
}

template <typename T>
float sparse_row(const float* q, std::size_t dim, float scale, RowSourceT<T> src,
                 std::span<const std::uint32_t> tokens, const LandmarkSource& lm,
                 std::span<const std::uint32_t> blocks, float* scratch, float* out) {
  const std::size_t nv = (dim + kLanes - 1) / kLanes;
  if (nv > kMaxVectors) return sparse_row_wide(q, dim, scale, src, tokens, lm, blocks, scratch, out);
  const std::size_t total = tokens.size() + blocks.size();
  if (total == 0) {
    std::fill(out, out + dim, 0.0f);
    return 0.0f;
  }
  alignas(64) float qs[kMaxVectors * kLanes];  // q * scale, once per row
  for (std::size_t d = 0; d < dim; ++d) qs[d] = q[d] * scale;
  candidate_scores(qs, dim, 1.0f, src, tokens, lm, blocks, scratch);
  const float sum = exp_in_place(scratch, total);
  switch (nv) {
    case 1: weighted_output<1>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 2: weighted_output<2>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 3: weighted_output<3>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 4: weighted_output<4>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 5: weighted_output<5>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 6: weighted_output<6>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 7: weighted_output<7>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    case 8: weighted_output<8>(scratch, sum, src, tokens, lm, blocks, dim, out); break;
    default: weighted_output_chunks(scratch, sum, src, tokens, lm, blocks, dim, out); break;
  }
  return sum;
}

// Output vectors of a dense row the V sums keep in registers at once, for each of a group's 4
// rows: with the V vectors and the weight, 21 of AVX-512's 32 registers, 11 of AVX2's 16.
// Wider rows run the sums in chunks of this many vectors, the accumulators stored between
// chunks. Chunks let 4 rows share each V load at every width: before, all of a row's vectors
// stayed in registers, 2 rows of up to 8 vectors on AVX-512 and 1 row of 5 - 8 on AVX2, and
// wider heads (past dim 128 / 64) took a scalar loop. One thread, N = 1024, medians of three
// alternating runs each, old/new: AVX2 dim 32 1.32, 64 2.25, 96 - 256 17 - 18; AVX-512 dim
// 96 - 128 1.12 - 1.13, 256 24; dims the change leaves alone 1.00 - 1.03 (docs/performance.md).
constexpr std::size_t kSumVectors = kLanes == 16 ? 4 : 2;
constexpr std::size_t kMaxDenseVectors = 64;

// The running state of R query rows (i0 .. i0+R-1) of one head: output accumulators (NV
// vectors cover dim, the last may be partial; past kSumVectors, NV is a capacity and
// vectors() says how many dim takes), softmax denominators and maxima. Keys are
// fed in ranges of tiles (see dense_rows_nv), KT tiles per softmax step: one horizontal
// max and one rescale check per row for KT * kLanes keys, and each broadcast query element
// feeds KT FMAs.
template <std::size_t R, std::size_t NV, std::size_t KT>
struct DenseGroup {
  vf acc[R][NV];
  vf l[R];  // running softmax denominators, kept per lane; summed once at the end
  float m[R];

  static std::size_t vectors(const DenseHeadArgs& a) {
    return NV <= kSumVectors ? NV : (a.dim + kLanes - 1) / kLanes;
  }

  void start() {
    for (std::size_t r = 0; r < R; ++r) {
      m[r] = kNegInf;
      l[r] = vzero();
      for (std::size_t v = 0; v < NV; ++v) acc[r][v] = vzero();
    }
  }

  // Keys the rows see at all (causal rows stop at the group's last row), and their tiles.
  static std::size_t visible(const DenseHeadArgs& a, std::size_t i0) {
    return a.causal ? std::min(i0 + R, a.n_keys) : a.n_keys;
  }
  static std::size_t tiles(const DenseHeadArgs& a, std::size_t i0) { return (visible(a, i0) + kLanes - 1) / kLanes; }

  // Keys of tiles [t_begin, t_end).
  void keys(const DenseHeadArgs& a, std::size_t i0, std::size_t t_begin, std::size_t t_end) {
    std::size_t t = t_begin;
    for (; t + KT <= t_end; t += KT) step<KT>(a, i0, t);
    for (; t < t_end; ++t) step<1>(a, i0, t);
  }

  // Keys of tiles [t, t + T): scores, the online softmax update, the weighted V sum.
  template <std::size_t T>
  void step(const DenseHeadArgs& a, std::size_t i0, std::size_t t) {
    const std::size_t dim = a.dim, j0 = t * kLanes;
    const float* q[R];
    for (std::size_t r = 0; r < R; ++r) q[r] = a.q + (i0 + r) * a.q_stride;
    const float* kt = a.k_tiles + t * dim * kLanes;
    vf s[R][T];
    for (std::size_t r = 0; r < R; ++r) {
      for (std::size_t u = 0; u < T; ++u) s[r][u] = vzero();
    }
    for (std::size_t d = 0; d < dim; ++d) {
      vf kv[T];
      for (std::size_t u = 0; u < T; ++u) kv[u] = vload(kt + (u * dim + d) * kLanes);
      for (std::size_t r = 0; r < R; ++r) {
        const vf qd = vset1(q[r][d]);
        for (std::size_t u = 0; u < T; ++u) s[r][u] = vfma(qd, kv[u], s[r][u]);
      }
    }
    const vf scale = vset1(a.scale);
    alignas(64) float p[R][T * kLanes];
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t last = a.causal ? i0 + r : a.n_keys - 1;
      vf top = vset1(kNegInf);
      for (std::size_t u = 0; u < T; ++u) {
        s[r][u] = vmask_keys_after(vmul(s[r][u], scale), j0 + u * kLanes, last, kNegInf);
        top = vmax(top, s[r][u]);
      }
      const float step_max = vhmax(top);
      if (step_max == kNegInf) {  // this row sees no key of the step
        for (std::size_t u = 0; u < T; ++u) vstore(p[r] + u * kLanes, vzero());
        continue;
      }
      if (step_max > m[r]) {  // the running max grows: rescale what was accumulated
        const vf cv = vset1(std::exp(m[r] - step_max));
        l[r] = vmul(l[r], cv);
        for (std::size_t v = 0; v < vectors(a); ++v) acc[r][v] = vmul(acc[r][v], cv);
        m[r] = step_max;
      }
      const vf mv = vset1(m[r]);
      for (std::size_t u = 0; u < T; ++u) {
        const vf e = vmask_keys_after(vexp(vsub(s[r][u], mv)), j0 + u * kLanes, last, 0.0f);
        l[r] = vadd(l[r], e);
        vstore(p[r] + u * kLanes, e);
      }
    }
    // The sums of output vectors [c0, c0 + CN) run in a local copy, which the compiler keeps
    // in registers (it would store the members on every key).
    const std::size_t nv = vectors(a);
    const bool full = dim == nv * kLanes;  // no partial vector in a V row
    const std::size_t valid = std::min(T * kLanes, visible(a, i0) - j0);
    auto sums = [&]<std::size_t CN>(std::size_t c0) {
      vf o[R][CN];
      for (std::size_t r = 0; r < R; ++r) {
        for (std::size_t v = 0; v < CN; ++v) o[r][v] = acc[r][c0 + v];
      }
      for (std::size_t j = 0; j < valid; ++j) {
        const float* vrow = a.v + (j0 + j) * a.v_stride + c0 * kLanes;
        vf vv[CN];
        for (std::size_t v = 0; v < CN; ++v) {
          vv[v] = full ? vload(vrow + v * kLanes) : load_vec(vrow - c0 * kLanes, c0 + v, dim);
        }
        for (std::size_t r = 0; r < R; ++r) {
          const vf w = vset1(p[r][j]);
          for (std::size_t v = 0; v < CN; ++v) o[r][v] = vfma(w, vv[v], o[r][v]);
        }
      }
      for (std::size_t r = 0; r < R; ++r) {
        for (std::size_t v = 0; v < CN; ++v) acc[r][c0 + v] = o[r][v];
      }
    };
    if constexpr (NV <= kSumVectors) {
      sums.template operator()<NV>(0);
    } else {
      for (std::size_t c0 = 0; c0 < nv; c0 += kSumVectors) {
        with_count<kSumVectors>(std::min(kSumVectors, nv - c0), [&]<std::size_t CN>() { sums.template operator()<CN>(c0); });
      }
    }
  }

  void finish(const DenseHeadArgs& a, std::size_t i0) const {
    for (std::size_t r = 0; r < R; ++r) {
      float* out = a.out + (i0 + r) * a.out_stride;
      const float denom = vsum(l[r]);
      const vf inv = vset1(denom > 0.0f ? 1.0f / denom : 0.0f);
      for (std::size_t v = 0; v < vectors(a); ++v) store_vec(out, v, a.dim, vmul(acc[r][v], inv));
    }
  }
};

// Query rows per group (R) and key tiles per softmax step (KT): as many as keep the R x KT
// scores and the loaded K vectors, and the V sums' chunk (kSumVectors), within the register
// file (32 vectors on AVX-512, 16 on AVX2); more spill, fewer reload K and V more often.
template <std::size_t NV>
struct DenseBlocking {
  static constexpr bool kWide = kLanes == 16;  // AVX-512
  static constexpr std::size_t kRows = 4;
  static constexpr std::size_t kKeyTiles = NV <= 2 ? (kWide ? 4 : 1) : 2;
};

// n groups of R rows from row i take the keys in ranges of about kRangeBytes of K and V,
// every group one range before the next: the range stays in L1 while the groups reuse it
// (one group after the other over all keys reread K and V from L3 once they outgrow L2).
// A range is a whole number of softmax steps, so the groups' numbers do not depend on it.
// Ranges of 256 KiB, kept in L2, left the Intel host of 2026-11-30 waiting on L2: 32 KiB
// ranges took one-thread calls 3 - 6% faster at dim 64 (N = 2048 - 4096), 1.5% at 1024, 2%
// at dim 32, 1.4% at dims 128 - 256, AVX2 level (docs/performance.md, "Dense key ranges").
template <std::size_t R, std::size_t NV, std::size_t KT>
void dense_groups(const DenseHeadArgs& a, std::size_t i, std::size_t n) {
  constexpr std::size_t kMaxGroups = 16, kRangeBytes = std::size_t{32} << 10;
  using Group = DenseGroup<R, NV, KT>;
  const std::size_t tile_bytes = 2 * kLanes * Group::vectors(a) * kLanes * sizeof(float);  // K and V of one tile
  const std::size_t range = std::max<std::size_t>(1, kRangeBytes / tile_bytes / KT) * KT;
  // On the stack: up to 267 KiB for 64 vectors on AVX-512 (threads get 8 MiB by default). On the
  // heap, allocated per call, AVX2 dim 256 ran 2 - 9% slower and AVX-512 1 - 3% (N = 1024).
  Group groups[kMaxGroups];
  for (; n > 0; i += kMaxGroups * R, n -= std::min(n, kMaxGroups)) {
    const std::size_t now = std::min(n, kMaxGroups);
    std::size_t most = 0;
    for (std::size_t g = 0; g < now; ++g) {
      groups[g].start();
      most = std::max(most, Group::tiles(a, i + g * R));
    }
    for (std::size_t t0 = 0; t0 < most; t0 += range) {
      for (std::size_t g = 0; g < now; ++g) {
        const std::size_t i0 = i + g * R, tiles = Group::tiles(a, i0);
        if (t0 < tiles) groups[g].keys(a, i0, t0, std::min(tiles, t0 + range));
      }
    }
    for (std::size_t g = 0; g < now; ++g) groups[g].finish(a, i + g * R);
  }
}

// Rows [begin, end): groups of kRows, the rows left over one by one.
template <std::size_t NV>
void dense_rows_nv(const DenseHeadArgs& a, std::size_t begin, std::size_t end) {
  constexpr std::size_t kRows = DenseBlocking<NV>::kRows, kKeyTiles = DenseBlocking<NV>::kKeyTiles;
  const std::size_t groups = (end - begin) / kRows, rest = begin + groups * kRows;
  dense_groups<kRows, NV, kKeyTiles>(a, begin, groups);
  dense_groups<1, NV, kKeyTiles>(a, rest, end - rest);
}

void dense_rows(const DenseHeadArgs& a, std::size_t begin, std::size_t end) {
  switch ((a.dim + kLanes - 1) / kLanes) {
    case 1: return dense_rows_nv<1>(a, begin, end);
    case 2: return dense_rows_nv<2>(a, begin, end);
    case 3: return dense_rows_nv<3>(a, begin, end);
    case 4: return dense_rows_nv<4>(a, begin, end);
    default: break;
  }
  // Wider heads: each instantiation a capacity (DenseGroup::vectors).
  const std::size_t nv = (a.dim + kLanes - 1) / kLanes;
  if (nv <= 8) return dense_rows_nv<8>(a, begin, end);
  if (nv <= 16) return dense_rows_nv<16>(a, begin, end);
  if (nv <= 32) return dense_rows_nv<32>(a, begin, end);
  if (nv <= kMaxDenseVectors) return dense_rows_nv<kMaxDenseVectors>(a, begin, end);
  // Wider heads: the scalar reference, row by row (the key tiles hold K transposed,
  // so read K from them).
  for (std::size_t i = begin; i < end; ++i) {
    float* o = a.out + i * a.out_stride;
    const std::size_t count = a.causal ? i + 1 : a.n_keys;
    float running_max = kNegInf, sum = 0.0f;
    std::fill(o, o + a.dim, 0.0f);
    for (std::size_t j = 0; j < count; ++j) {
      const float* tile = a.k_tiles + (j / kLanes) * a.dim * kLanes;
      float s = 0.0f;
      for (std::size_t d = 0; d < a.dim; ++d) s += a.q[i * a.q_stride + d] * tile[d * kLanes + j % kLanes];
      s *= a.scale;
      if (s > running_max) {
        const float c = std::exp(running_max - s);
        sum *= c;
        for (std::size_t d = 0; d < a.dim; ++d) o[d] *= c;
        running_max = s;
      }
      const float w = std::exp(s - running_max);
      sum += w;
      for (std::size_t d = 0; d < a.dim; ++d) o[d] += w * a.v[j * a.v_stride + d];
    }
    for (std::size_t d = 0; d < a.dim; ++d) o[d] /= sum;
  }
}

// block_mean_ref's sums (float, token order, per element) of P blocks of `count` rows
// (block p's rows from x + p * count * stride), elements [e0, e0 + V * kLanes), in P * V
// independent vector chains.
template <std::size_t P, std::size_t V>
void block_mean_pass(const float* x, std::size_t stride, std::size_t count, std::size_t e0, float* out,
                     std::size_t out_stride) {
  vf sum[P][V];
  for (std::size_t p = 0; p < P; ++p) {
    for (std::size_t v = 0; v < V; ++v) sum[p][v] = vzero();
  }
  for (std::size_t t = 0; t < count; ++t) {
    for (std::size_t p = 0; p < P; ++p) {
      const float* row = x + (p * count + t) * stride + e0;
      for (std::size_t v = 0; v < V; ++v) sum[p][v] = vadd(sum[p][v], vload(row + v * kLanes));
    }
  }
  const vf n = vset1(static_cast<float>(count));
  for (std::size_t p = 0; p < P; ++p) {
    for (std::size_t v = 0; v < V; ++v) vstore(out + p * out_stride + e0 + v * kLanes, vdiv(sum[p][v], n));
  }
}

// Elements [e0, e0 + V * kLanes) of every block in rows [0, rows): 4 / V blocks per pass, so
// that a short run of elements (one kv head's dim 32: two vectors) still has four chains
// in flight rather than `block` dependent adds per vector alone (eight: level).
template <std::size_t V>
void block_means_part(const float* x, std::size_t stride, std::size_t block, std::size_t rows, std::size_t e0,
                      float* out, std::size_t out_stride) {
  constexpr std::size_t kBlocksPerPass = std::max<std::size_t>(1, 4 / V);
  const std::size_t full = rows / block;
  std::size_t b = 0;
  for (; b + kBlocksPerPass <= full; b += kBlocksPerPass) {
    block_mean_pass<kBlocksPerPass, V>(x + b * block * stride, stride, block, e0, out + b * out_stride, out_stride);
  }
  for (; b < full; ++b) block_mean_pass<1, V>(x + b * block * stride, stride, block, e0, out + b * out_stride, out_stride);
  if (rows > full * block) {
    block_mean_pass<1, V>(x + full * block * stride, stride, rows - full * block, e0, out + full * out_stride, out_stride);
  }
}

// Spans of four blocks (their rows read while in cache), the elements of each span four
// vectors at a time, then the rest of the whole vectors; the last few elements as
// block_means_ref does them.
void block_means(const float* x, std::size_t stride, std::size_t block, std::size_t rows, std::size_t len, float* out,
                 std::size_t out_stride) {
  constexpr std::size_t kSpan = 4;
  for (std::size_t r0 = 0; r0 < rows; r0 += kSpan * block) {
    const float* xs = x + r0 * stride;
    float* os = out + r0 / block * out_stride;
    const std::size_t span = std::min(rows - r0, kSpan * block);
    std::size_t e0 = 0;
    for (; e0 + 4 * kLanes <= len; e0 += 4 * kLanes) block_means_part<4>(xs, stride, block, span, e0, os, out_stride);
    switch ((len - e0) / kLanes) {
      case 3: block_means_part<3>(xs, stride, block, span, e0, os, out_stride); break;
      case 2: block_means_part<2>(xs, stride, block, span, e0, os, out_stride); break;
      case 1: block_means_part<1>(xs, stride, block, span, e0, os, out_stride); break;
      default: break;
    }
    e0 += (len - e0) / kLanes * kLanes;
    if (e0 < len) block_means_ref(xs + e0, stride, block, span, len - e0, os + e0, out_stride);
  }
}

void to_half(const float* x, std::size_t n, std::uint16_t* out) {
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) vstore_half(out + i, vload(x + i));
  to_half_ref(x + i, n - i, out + i);
}

bool any_nonfinite(const float* x, std::size_t n) {
  // A value is NaN or Inf exactly when all its exponent bits are set.
  const vf exp_bits = vbits(0x7F800000u);
  vf hit = vzero();
  std::size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    const vf a = vmax_u(vand(vload(x + i), exp_bits), vand(vload(x + i + kLanes), exp_bits));
    const vf b = vmax_u(vand(vload(x + i + 2 * kLanes), exp_bits), vand(vload(x + i + 3 * kLanes), exp_bits));
    hit = vmax_u(hit, vmax_u(a, b));
  }
  for (; i + kLanes <= n; i += kLanes) hit = vmax_u(hit, vand(vload(x + i), exp_bits));
  if (i < n) hit = vmax_u(hit, vand(vload_part(x + i, n - i), exp_bits));
  return vany_equal(hit, exp_bits);
}

double fma_peak_work(std::size_t iterations) {
  constexpr std::size_t kChains = 12;
  vf acc[kChains];
  for (std::size_t c = 0; c < kChains; ++c) acc[c] = vset1(static_cast<float>(c) * 1e-3f);
  const vf a = vset1(0.999999f), b = vset1(1e-7f);
  for (std::size_t i = 0; i < iterations; ++i) {
    for (std::size_t c = 0; c < kChains; ++c) acc[c] = vfma(acc[c], a, b);
  }
  vf total = vzero();
  for (std::size_t c = 0; c < kChains; ++c) total = vadd(total, acc[c]);
  volatile float sink = vsum(total);  // keep the loop alive
  (void)sink;
  return static_cast<double>(iterations) * kChains * kLanes * 2.0;
}

}  // namespace

// sparse_tile.cpp
void sparse_tile(const SparseTileArgs& a, std::size_t row0, std::size_t rows, const TileColumns& cols,
                 float* scratch);
void transpose_tiles(const float* x, std::size_t x_stride, std::size_t shift, std::size_t begin, std::size_t end,
                     std::size_t dim, float* out);

// box_muller_simd.cpp
std::size_t normal_pairs(std::uint64_t seed, std::uint64_t first_pair, std::size_t n, float* out);

void stream_fence() { _mm_sfence(); }

extern const KernelTable kTable;
const KernelTable kTable{
#if defined(RVT_SIMD_AVX512)
    Isa::kAvx512,
#else
    Isa::kAvx2,
#endif
    kLanes, &sparse_row<float>, &sparse_row<std::uint16_t>, &dense_rows, &sparse_tile, &transpose_tiles, &block_means, &any_nonfinite, &to_half, &fma_peak_work,
    &normal_pairs, &stream_fence};

}  // namespace rvt::kernels::RVT_KERNEL_NS
