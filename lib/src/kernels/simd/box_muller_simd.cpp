// The normal generator's fast path (rvt/kernels/box_muller.hpp), compiled per ISA like
// kernels_simd.cpp: one plain loop that the compiler vectorizes (this file is built with
// -fno-math-errno, so that sqrt is an instruction, not a call that may set errno).
#include <cmath>
#include <cstddef>

#include "rvt/kernels/box_muller.hpp"
#include "rvt/kernels/fast.hpp"

namespace rvt::kernels::RVT_KERNEL_NS {

void box_muller_pairs(const double* u1, const double* theta, std::size_t n, float* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const double r = std::sqrt(-2.0 * box_muller_log(u1[i]));
    const CosSin cs = box_muller_cos_sin(theta[i]);
    out[2 * i] = box_muller_sure_float(r * cs.cos);
    out[2 * i + 1] = box_muller_sure_float(r * cs.sin);
  }
}

}  // namespace rvt::kernels::RVT_KERNEL_NS
