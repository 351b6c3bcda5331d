// Box-Muller without libm calls, for the normal generator's fast path: r cos(theta) and
// r sin(theta), r = sqrt(-2 log u1), as plain double arithmetic (polynomials, no branches,
// no tables), so a loop over it vectorizes. The generator's values are defined by glibc's
// log, sin and cos (the fixtures' generator calls them); these agree with them to a few
// double ulps, not exactly. So a value is kept only where every double within
// kBoxMullerTolerance (relative) of it rounds to the same float: then glibc's double, which
// lies within that distance, gives the same float. The rest (1 value in 48,000 over 40M of
// the stream) are marked NaN for the caller to compute with glibc (rvt/tensor/generate.cpp).
// tests/unit/test_generate.cpp measures the distance to glibc (below 2^-46 over 500,000
// pairs and the edge cases) and checks the fast path's floats on every ISA bit for bit.
// Multiply-adds are fused only where written (std::fma: exactly rounded on every build, an
// instruction where the CPU has FMA) and the ISA copies are built with -ffp-contract=off, so
// every build computes the same doubles as the tests' baseline build.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <utility>

#include "rvt/core/splitmix.hpp"

namespace rvt::kernels {

// The inputs of pair p of the normal stream of `seed`: draws 2p and 2p + 1 as u1 in (0, 1]
// and theta = 2 pi u2 in [0, 2 pi).
struct BoxMullerInputs {
  double u1, theta;
};
inline BoxMullerInputs box_muller_inputs(std::uint64_t seed, std::uint64_t p) {
  return {unit_open_of(splitmix_draw(seed, 2 * p)), 2.0 * std::numbers::pi * unit_of(splitmix_draw(seed, 2 * p + 1))};
}

// ~1400 times the largest relative distance to glibc's doubles the tests have seen (2^-50.4;
// they fail above 2^-46).
inline constexpr double kBoxMullerTolerance = 0x1p-40;

// log(x) for x in (0, 1] (normal doubles): x = 2^e m, m in [sqrt(2)/2, sqrt(2)),
// log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, by its series to s^21.
inline double box_muller_log(double x) {
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(x);
  const std::uint64_t mantissa = bits & 0x000FFFFFFFFFFFFFull;
  // m in [1, 2), halved where above sqrt(2) (its exponent field one lower), e one higher.
  const std::uint64_t high = mantissa > 0x6A09E667F3BCDull ? 1 : 0;
  const double m = std::bit_cast<double>(mantissa | (0x3FF0000000000000ull - (high << 52)));
  // The exponent field as a double, without an integer conversion (2^52 + field, minus 2^52).
  const double e = std::bit_cast<double>(0x4330000000000000ull | ((bits >> 52) + high)) - 0x1p52 - 1023.0;
  const double s = (m - 1.0) / (m + 1.0), z = s * s;
  double p = 2.0 / 21;
  [&]<int... J>(std::integer_sequence<int, J...>) {  // unrolled: 2/19, 2/17, ..., 2/1
    ((p = std::fma(p, z, 2.0 / (19 - 2 * J))), ...);
  }(std::make_integer_sequence<int, 10>{});
  // ln 2 in two parts: e * hi is exact for the few bits e has.
  constexpr double kLn2Hi = 0x1.62e42fefa3800p-1, kLn2Lo = 0x1.ef35793c76730p-45;
  return std::fma(e, kLn2Hi, std::fma(e, kLn2Lo, s * p));
}

struct CosSin {
  double cos, sin;
};

// The Taylor coefficient of x^n in sin (n odd) or cos (n even): +-1/n!.
constexpr double taylor_term(int n) {
  double factorial = 1.0;
  for (int i = 2; i <= n; ++i) factorial *= i;  // exact up to 18!
  return ((n / 2) % 2 == 0 ? 1.0 : -1.0) / factorial;
}
template <int N>
inline constexpr double kTaylor = taylor_term(N);

// cos and sin of theta in [0, 2 pi): theta = k pi/2 + r, |r| <= pi/4, by their Taylor series
// (to r^17 and r^16: the next terms are below 2^-60) and the quadrant k. pi/2 comes in three
// parts (33, 33 and 53 bits), so k times the first two is exact and r keeps its relative
// accuracy next to a multiple of pi/2, where cos or sin is tiny.
inline CosSin box_muller_cos_sin(double theta) {
  constexpr double kRound = 0x1.8p52;  // adding and subtracting it rounds to an integer
  const double k = (theta * 0x1.45f306dc9c883p-1 + kRound) - kRound;  // theta * 2/pi, 0..4
  const double r = ((theta - k * 0x1.921fb54400000p+0) - k * 0x1.0b4611a600000p-34) - k * 0x1.3198a2e037073p-69;
  const double z = r * r;
  double ps = kTaylor<17>, pc = kTaylor<16>;
  [&]<int... J>(std::integer_sequence<int, J...>) {  // unrolled: n = 15, 13, ..., 3 and 14, 12, ..., 2
    ((ps = std::fma(ps, z, kTaylor<15 - 2 * J>), pc = std::fma(pc, z, kTaylor<14 - 2 * J>)), ...);
  }(std::make_integer_sequence<int, 7>{});
  const double sin_r = std::fma(r * z, ps, r);
  const double cos_r = std::fma(z, pc, 1.0);
  const bool swap = (k == 1.0) | (k == 3.0);  // | not ||: no branches, so loops vectorize
  const double c = swap ? sin_r : cos_r, s = swap ? cos_r : sin_r;
  return {(k == 1.0) | (k == 2.0) ? -c : c, (k == 2.0) | (k == 3.0) ? -s : s};
}

// x as a float if every double within kBoxMullerTolerance of it rounds to that float, else NaN.
inline float box_muller_sure_float(double x) {
  const double d = (x < 0 ? -x : x) * kBoxMullerTolerance;
  const float lo = static_cast<float>(x - d), hi = static_cast<float>(x + d);
  return lo == hi ? lo : std::numeric_limits<float>::quiet_NaN();
}

// Pair p of the normal stream: the floats of r cos(theta) and r sin(theta), each NaN where
// the polynomials cannot tell which float glibc's functions give.
struct FloatPair {
  float first, second;
};
inline FloatPair box_muller_pair(std::uint64_t seed, std::uint64_t p) {
  const BoxMullerInputs in = box_muller_inputs(seed, p);
  const double r = std::sqrt(-2.0 * box_muller_log(in.u1));
  const CosSin cs = box_muller_cos_sin(in.theta);
  return {box_muller_sure_float(r * cs.cos), box_muller_sure_float(r * cs.sin)};
}

}  // namespace rvt::kernels
