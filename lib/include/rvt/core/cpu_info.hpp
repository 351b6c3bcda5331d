// The CPU this process runs on, as /proc/cpuinfo gives it (its first processor): recorded in
// every report's host block and in bench's machine block.
//
// The model string alone does not tell hosts apart: this project's VM reads "AMD EPYC" on a
// family 25 host and on a family 26 one, whose one-core FMA peaks differ twofold (~117
// against ~220 GFLOP/s), so the vendor, family, model and stepping numbers come with it.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace rvt {

struct CpuIdentity {
  std::string model_name = "unknown";
  std::string vendor;  // "" where not given
  std::optional<int> family, model, stepping;
};

// The first processor's fields; what is missing or not a number stays empty.
CpuIdentity parse_cpuinfo(std::istream& in);

// This machine's, read once per process; model_name "unknown" where /proc/cpuinfo cannot be read.
const CpuIdentity& cpu_identity();

}  // namespace rvt
