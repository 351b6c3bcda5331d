// IEEE 754 binary16 <-> binary32, scalar reference.
//
// f32 -> f16 rounds to nearest, ties to even; overflow gives +-inf, NaN stays NaN
// (quiet, payload truncated), values below half the smallest subnormal round to +-0.
// f16 -> f32 is exact; it is inline because KV-cache kernels call it per element.
#pragma once

#include <bit>
#include <cstdint>

namespace rvt {

std::uint16_t f32_to_f16(float value);

inline float f16_to_f32(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exp = (bits >> 10) & 0x1Fu;
  const std::uint32_t mant = bits & 0x3FFu;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));  // inf, NaN
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in f32.
  const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

}  // namespace rvt
