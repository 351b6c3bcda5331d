// SplitMix64, the random stream of the input generators (rvt/tensor/generate.hpp) and of the
// fixtures' generator. Its state only ever adds a constant, so draw n is one multiply and a
// mix away: a fill can start anywhere in a stream and split it between threads. Header-only
// and branch-free, so loops over draws vectorize (rvt/kernels/box_muller.hpp).
#pragma once

#include <bit>
#include <cstdint>

namespace rvt {

inline constexpr std::uint64_t kSplitMixStep = 0x9E3779B97F4A7C15ull;

inline std::uint64_t splitmix_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Draw n (0-based) of SplitMix64(seed): its state after n + 1 steps, mixed.
inline std::uint64_t splitmix_draw(std::uint64_t seed, std::uint64_t n) {
  return splitmix_mix(seed + (n + 1) * kSplitMixStep);
}

// k as a double, exactly, for k <= 2^53: two 32-bit halves through the 2^52 trick (AVX2 has
// no instruction that converts 64-bit integers).
inline double exact_double(std::uint64_t k) {
  const double hi = std::bit_cast<double>(0x4330000000000000ull | (k >> 32)) - 0x1p52;
  const double lo = std::bit_cast<double>(0x4330000000000000ull | (k & 0xFFFFFFFFull)) - 0x1p52;
  return hi * 0x1p32 + lo;  // both exact, and so is their sum (< 2^53 + 1)
}

// A draw's top 53 bits as a double in [0, 1), and as one in (0, 1].
inline double unit_of(std::uint64_t draw) { return exact_double(draw >> 11) * 0x1p-53; }
inline double unit_open_of(std::uint64_t draw) { return exact_double((draw >> 11) + 1) * 0x1p-53; }

}  // namespace rvt
