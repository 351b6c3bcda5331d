// libFuzzer target: the .npy reader on arbitrary bytes. Contract: only rvt::Error escapes,
// and an accepted array holds exactly product(shape) values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "fuzz_common.hpp"
#include "rvt/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  RVT_FUZZ_ONLY_RVT_ERROR({
    const rvt::io::NpyArray a = rvt::io::parse_npy(std::span<const std::uint8_t>(data, size), "fuzz.npy");
    std::size_t n = 1;
    for (std::size_t d : a.shape) n *= d;
    if (n != a.values.size()) std::abort();
    (void)rvt::io::shape_str(a.shape);
  });
  return 0;
}
