#include "rvt/kernels/isa.hpp"

#include <cstdlib>

#include "rvt/core/error.hpp"

namespace rvt::kernels {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAuto: return "auto";
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name, const std::string& source) {
  for (Isa isa : {Isa::kAuto, Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (name == isa_name(isa)) return isa;
  }
  throw_usage(source + ": '" + name + "' is not one of auto, scalar, avx2, avx512");
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kAuto:
    case Isa::kScalar: return true;
#if defined(__x86_64__) && defined(RVT_HAVE_AVX2)
    case Isa::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
#if defined(__x86_64__) && defined(RVT_HAVE_AVX512)
    case Isa::kAvx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
    default: return false;
  }
}

Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (isa_supported(isa)) return isa;
  }
  return Isa::kScalar;
}

Isa resolve_isa(Isa requested) {
  if (requested == Isa::kAuto) {
    const char* env = std::getenv("RVT_ISA");
    if (env == nullptr || *env == '\0') return best_isa();
    requested = parse_isa(env, "RVT_ISA");
    if (requested == Isa::kAuto) return best_isa();
  }
  if (!isa_supported(requested)) {
    throw Error(ExitCode::kUnsupported, std::string("isa ") + isa_name(requested) +
                                            " is not supported by this CPU or build");
  }
  return requested;
}

}  // namespace rvt::kernels
