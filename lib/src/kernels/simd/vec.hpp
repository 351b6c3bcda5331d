// The one vector abstraction the SIMD kernels are written against. This header is
// included by kernels_simd.cpp, which CMake compiles once per ISA with that ISA's flags
// and RVT_SIMD_AVX512 or RVT_SIMD_AVX2 defined (house style: write once, compile per ISA).
//
// vexp is a Cephes-style exp: range reduction by ln2 (split in two constants) and a
// degree-6 polynomial; relative error about 2e-7 over the softmax range (x <= 0). vexp2
// (2^x, for scores already in log2 units) needs no ln2 reduction.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>

namespace rvt::kernels::RVT_KERNEL_NS {

#if defined(RVT_SIMD_AVX512)
using vf = __m512;
inline constexpr std::size_t kLanes = 16;

inline __mmask16 tail_mask(std::size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float x) { return _mm512_set1_ps(x); }
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline vf vload(const std::uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline vf vload_part(const float* p, std::size_t n) { return _mm512_maskz_loadu_ps(tail_mask(n), p); }
inline vf vload_part(const std::uint16_t* p, std::size_t n) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(n), p));
}
// x as IEEE halves, rounded to nearest even (rvt::f32_to_f16's numbers).
inline void vstore_half(std::uint16_t* p, vf x) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore(float* p, vf x) { _mm512_storeu_ps(p, x); }
inline void vstore_part(float* p, vf x, std::size_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), x); }
// A whole cache line (p 64-byte aligned) past the caches; stream_fence() orders it.
inline constexpr bool kStreamsLines = true;
inline void vstream(float* p, vf x) { _mm512_stream_ps(p, x); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm512_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm512_min_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline float vsum(vf x) { return _mm512_reduce_add_ps(x); }
inline float vhmax(vf x) { return _mm512_reduce_max_ps(x); }
// The four horizontal sums of a0..a3, in one pass (cheaper than four vsum calls).
inline void vsum4(vf a0, vf a1, vf a2, vf a3, float* out) {
  // 512 -> 256: add the halves of each vector.
  auto half = [](vf x) {
    return _mm256_add_ps(_mm512_castps512_ps256(x),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  };
  const __m256 h01 = _mm256_hadd_ps(half(a0), half(a1));
  const __m256 h23 = _mm256_hadd_ps(half(a2), half(a3));
  const __m256 h = _mm256_hadd_ps(h01, h23);  // per 128-bit lane: s0 s1 s2 s3 partials
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}
// Lanes whose key index (first + lane) exceeds last are replaced by fill.
inline vf vmask_keys_after(vf s, std::size_t first, std::size_t last, float fill) {
  if (last >= first + kLanes - 1) return s;
  const std::size_t keep = last < first ? 0 : last - first + 1;
  return _mm512_mask_mov_ps(_mm512_set1_ps(fill), tail_mask(keep), s);
}
// Lanes [0, n) from b, the rest from a.
inline vf vblend_part(vf a, vf b, std::size_t n) { return _mm512_mask_mov_ps(a, tail_mask(n), b); }
// Transposes the kLanes x kLanes matrix whose rows are r[0..kLanes), in place.
inline void vtranspose(vf r[16]) {
  vf t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
}
// Lanes whose bit is set in `bits` from x, the others from fill.
inline vf vselect_lanes(vf fill, vf x, std::uint32_t bits) {
  return _mm512_mask_mov_ps(fill, static_cast<__mmask16>(bits), x);
}
inline vf vload_aligned(const float* p) { return _mm512_load_ps(p); }
// A runtime shift of the pair (lo, hi), as vshift_pair: index vector from vshift_index(S).
using vidx = __m512i;
inline vidx vshift_index(std::size_t s) {
  return _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                          _mm512_set1_epi32(static_cast<int>(s)));
}
inline vf vshift_var(vf lo, vf hi, vidx i) { return _mm512_permutex2var_ps(lo, i, hi); }
// Lanes S .. S + kLanes - 1 of the pair (lo, hi): what an unaligned load S floats past lo's
// address reads, from two aligned vectors.
template <int S>
inline vf vshift_pair(vf lo, vf hi) {
  if constexpr (S == 0) return lo;
  else return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), S));
}
// Bit-level helpers for the non-finite scan: masked exponent bits compare as integers.
inline vf vbits(std::uint32_t b) { return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(b))); }
inline vf vand(vf a, vf b) { return _mm512_and_ps(a, b); }
inline vf vmax_u(vf a, vf b) {
  return _mm512_castsi512_ps(_mm512_max_epu32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
inline bool vany_equal(vf a, vf b) {
  return _mm512_cmpeq_epi32_mask(_mm512_castps_si512(a), _mm512_castps_si512(b)) != 0;
}
inline vf vround_floor(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf vpow2i(vf n) {  // 2^n for integral n in the normal range
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_castsi512_ps(e);
}
// vexp2's pieces. x - floor(x) in one instruction (vreduceps): in [0, 1], 1 only where a tiny
// negative x rounds so; -inf gives 0. p * 2^floor(x) in one (vscalefps): exact, and exactly 0
// for x = -inf or once the product is below half the smallest denormal. So no clamp.
inline vf vexp2_domain(vf x) { return x; }
inline vf vfrac(vf x) { return _mm512_reduce_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf vmul_pow2_floor(vf p, vf x) { return _mm512_scalef_ps(p, x); }
#elif defined(RVT_SIMD_AVX2)
using vf = __m256;
inline constexpr std::size_t kLanes = 8;

inline __m256i tail_mask(std::size_t n) {
  alignas(32) static const std::int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - std::min<std::size_t>(n, 8)));
}
inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float x) { return _mm256_set1_ps(x); }
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline vf vload(const std::uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline vf vload_part(const float* p, std::size_t n) { return _mm256_maskload_ps(p, tail_mask(n)); }
inline vf vload_part(const std::uint16_t* p, std::size_t n) {
  alignas(16) std::uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(tmp, p, n * sizeof(std::uint16_t));
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
}
// x as IEEE halves, rounded to nearest even (rvt::f32_to_f16's numbers).
inline void vstore_half(std::uint16_t* p, vf x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline void vstore(float* p, vf x) { _mm256_storeu_ps(p, x); }
inline void vstore_part(float* p, vf x, std::size_t n) { _mm256_maskstore_ps(p, tail_mask(n), x); }
// A vector is half a line: the sparse kernel writes a line's halves at different times, so
// streaming them would leave partial lines to the write-combining buffers. Plain stores.
inline constexpr bool kStreamsLines = false;
inline void vstream(float* p, vf x) { _mm256_storeu_ps(p, x); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vdiv(vf a, vf b) { return _mm256_div_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmin(vf a, vf b) { return _mm256_min_ps(a, b); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline float vsum(vf x) {
  const __m128 lo = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  const __m128 h = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
}
inline void vsum4(vf a0, vf a1, vf a2, vf a3, float* out) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}
inline float vhmax(vf x) {
  const __m128 lo = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  const __m128 h = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
  return _mm_cvtss_f32(_mm_max_ss(h, _mm_shuffle_ps(h, h, 1)));
}
inline vf vmask_keys_after(vf s, std::size_t first, std::size_t last, float fill) {
  if (last >= first + kLanes - 1) return s;
  const std::size_t keep = last < first ? 0 : last - first + 1;
  return _mm256_blendv_ps(_mm256_set1_ps(fill), s, _mm256_castsi256_ps(tail_mask(keep)));
}
inline vf vblend_part(vf a, vf b, std::size_t n) {
  return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(tail_mask(n)));
}
inline void vtranspose(vf r[8]) {
  vf t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
inline vf vload_aligned(const float* p) { return _mm256_load_ps(p); }
using vidx = __m256i;
inline vidx vshift_index(std::size_t s) {
  return _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(s)));
}
inline vf vshift_var(vf lo, vf hi, vidx i) {  // lane l: lo[i_l] for i_l < 8, else hi[i_l - 8]
  const vf from_hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(i, _mm256_set1_epi32(7)));
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, i), _mm256_permutevar8x32_ps(hi, i), from_hi);
}
template <int S>
inline vf vshift_pair(vf lo, vf hi) {  // alignr works within 128-bit halves: via the middle pair
  if constexpr (S == 0) return lo;
  const vf mid = _mm256_permute2f128_ps(lo, hi, 0x21);  // lanes 4..11 of the pair
  if constexpr (S == 4) return mid;
  else if constexpr (S < 4) {
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(mid), _mm256_castps_si256(lo), S * 4));
  } else {
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(hi), _mm256_castps_si256(mid), (S - 4) * 4));
  }
}
inline vf vselect_lanes(vf fill, vf x, std::uint32_t bits) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i hit = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), lane_bit), lane_bit);
  return _mm256_blendv_ps(fill, x, _mm256_castsi256_ps(hit));
}
inline vf vbits(std::uint32_t b) { return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(b))); }
inline vf vand(vf a, vf b) { return _mm256_and_ps(a, b); }
inline vf vmax_u(vf a, vf b) {
  return _mm256_castsi256_ps(_mm256_max_epu32(_mm256_castps_si256(a), _mm256_castps_si256(b)));
}
inline bool vany_equal(vf a, vf b) {
  return _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_castps_si256(a), _mm256_castps_si256(b)))) != 0;
}
inline vf vround_floor(vf x) { return _mm256_floor_ps(x); }
inline vf vpow2i(vf n) {
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_castsi256_ps(e);
}
// vexp2's pieces: x clamped at -127, where vpow2i's exponent bits are all zero, so that -inf
// and anything below gives exactly 0; x - floor(x) in [0, 1] (1 only where a tiny negative x
// rounds so); p * 2^floor(x).
inline vf vexp2_domain(vf x) { return vmax(vset1(-127.0f), x); }  // NaN stays NaN: see vexp
inline vf vfrac(vf x) { return vsub(x, vround_floor(x)); }
inline vf vmul_pow2_floor(vf p, vf x) { return vmul(p, vpow2i(vround_floor(x))); }
#else
#error "vec.hpp needs RVT_SIMD_AVX512 or RVT_SIMD_AVX2"
#endif

// The polynomial with these coefficients, highest degree first, at r (Horner's rule).
template <typename... Rest>
inline vf vhorner(vf r, float top, Rest... rest) {
  vf p = vset1(top);
  ((p = vfma(p, r, vset1(rest))), ...);
  return p;
}

// exp(x) for the softmax: inputs are <= 0 after max subtraction; -inf gives 0.
// The clamps take x second: maxps/minps return the second operand where either is NaN, so a
// NaN (a score that overflowed to inf, minus an inf max) stays NaN, as in the scalar
// reference; clamped first, it became a weight of ~0 and the row a finite wrong answer.
inline vf vexp(vf x) {
  x = vmax(vset1(-87.3f), x);  // below this the result underflows to (near) zero anyway
  x = vmin(vset1(88.3f), x);
  const vf n = vround_floor(vfma(x, vset1(1.44269504088896341f), vset1(0.5f)));
  vf r = vfma(n, vset1(-0.693359375f), x);  // x - n*ln2, ln2 split for accuracy
  r = vfma(n, vset1(2.12194440e-4f), r);
  vf p = vhorner(r, 1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                 5.0000001201e-1f);
  p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
  return vmul(p, vpow2i(n));
}

// 2^x for the tiled kernel's softmax, whose scores come in log2 units (the queries carry
// log2(e)): inputs are <= 0 after max subtraction; -inf gives exactly 0, so masked lanes
// (scored -inf) need no select. No ln2 range reduction: 2^floor(x) times a degree-6 fit of 2^r,
// r = x - floor(x) in [0, 1] (relative error under 1e-7 in float, numpy least squares on
// Chebyshev nodes; 2^0 is exactly 1), four operations fewer than vexp. On AVX-512 vreduceps
// gives r and vscalefps applies 2^floor(x), with no clamp: five fewer again.
inline vf vexp2(vf x) {
  x = vexp2_domain(x);
  const vf p = vhorner(vfrac(x), 2.1690609162e-4f, 1.2443081511e-3f, 9.6784725542e-3f, 5.5483524724e-2f,
                       2.4022979581e-1f, 6.9314698706e-1f, 1.0f);
  return vmul_pow2_floor(p, x);
}

}  // namespace rvt::kernels::RVT_KERNEL_NS
