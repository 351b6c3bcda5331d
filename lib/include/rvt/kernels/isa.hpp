// Which instruction set the fast kernels use: chosen once at start from CPU detection,
// or forced with --isa / the RVT_ISA environment variable. Every report records it.
#pragma once

#include <string>

namespace rvt::kernels {

enum class Isa { kAuto, kScalar, kAvx2, kAvx512 };

const char* isa_name(Isa isa);           // "auto", "scalar", "avx2", "avx512"
// Throws rvt::Error(kUsage) naming `source` (the option or variable the name came from).
Isa parse_isa(const std::string& name, const std::string& source = "--isa");
bool isa_supported(Isa isa);             // by this CPU and this build
Isa best_isa();                          // the widest supported

// kAuto -> RVT_ISA if set, else best_isa(). An unsupported request is
// rvt::Error(kUnsupported) naming the ISA.
Isa resolve_isa(Isa requested);

}  // namespace rvt::kernels
