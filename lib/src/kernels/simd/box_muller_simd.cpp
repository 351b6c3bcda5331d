// The normal generator's fast path (rvt/kernels/box_muller.hpp), compiled per ISA like
// kernels_simd.cpp: one plain loop that the compiler vectorizes. This file is built with
// -fno-math-errno, so that sqrt is an instruction, not a call that may set errno, and with
// -ffp-contract=off, so that only the header's explicit std::fma calls fuse: every ISA then
// computes the very doubles of the scalar code that tests/unit/test_generate.cpp compares
// with glibc.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rvt/kernels/box_muller.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt::kernels::RVT_KERNEL_NS {

std::size_t normal_pairs(std::uint64_t seed, std::uint64_t first_pair, std::size_t n, float* out) {
  std::size_t unsure = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const FloatPair v = box_muller_pair(seed, first_pair + i);
    out[2 * i] = v.first;
    out[2 * i + 1] = v.second;
    unsure += (v.first != v.first ? 1 : 0) + (v.second != v.second ? 1 : 0);  // NaN
  }
  return unsure;
}

}  // namespace rvt::kernels::RVT_KERNEL_NS
