// IEEE 754 binary16 <-> binary32, scalar reference.
//
// f32 -> f16 rounds to nearest, ties to even; overflow gives +-inf, NaN stays NaN
// (quiet, payload truncated), values below the smallest subnormal round to +-0.
#pragma once

#include <cstdint>

namespace rvt {

std::uint16_t f32_to_f16(float value);
float f16_to_f32(std::uint16_t bits);

}  // namespace rvt
