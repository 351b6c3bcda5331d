#include "rvt/core/error.hpp"

namespace rvt {

const char* exit_code_name(ExitCode code) {
  switch (code) {
    case ExitCode::kOk: return "ok";
    case ExitCode::kCheckFailed: return "check_failed";
    case ExitCode::kUsage: return "usage";
    case ExitCode::kBadInput: return "bad_input";
    case ExitCode::kIo: return "io";
    case ExitCode::kUnsupported: return "unsupported";
    case ExitCode::kInternal: return "internal";
  }
  return "unknown";
}

void throw_usage(const std::string& message) { throw Error(ExitCode::kUsage, message); }
void throw_bad_input(const std::string& message) { throw Error(ExitCode::kBadInput, message); }
void throw_io(const std::string& message) { throw Error(ExitCode::kIo, message); }

}  // namespace rvt
