#include "rvt/kernels/fast.hpp"

#include <algorithm>

namespace rvt::kernels {

const KernelTable* kernel_table(Isa isa) {
#ifdef RVT_HAVE_AVX512
  if (isa == Isa::kAvx512) return &avx512::kTable;
#endif
#ifdef RVT_HAVE_AVX2
  if (isa == Isa::kAvx2) return &avx2::kTable;
#endif
  (void)isa;
  return nullptr;
}

std::size_t tile_floats(std::size_t n, std::size_t dim, std::size_t lanes) {
  return (n + lanes - 1) / lanes * dim * lanes;
}

void transpose_key_tiles(const float* k, std::size_t k_stride, std::size_t n, std::size_t shift, std::size_t dim,
                         std::size_t lanes, float* out) {
  std::fill(out, out + tile_floats(n + shift, dim, lanes), 0.0f);
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t p = j + shift;
    float* tile = out + (p / lanes) * dim * lanes;
    const float* row = k + j * k_stride;
    for (std::size_t d = 0; d < dim; ++d) tile[d * lanes + p % lanes] = row[d];
  }
}

}  // namespace rvt::kernels
