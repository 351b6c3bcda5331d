// What built this binary and where it runs: recorded in every report.
#pragma once

#include <string>

namespace rvt {

struct BuildInfo {
  std::string version;
  std::string git_commit;
  std::string build_type;
  std::string compiler;
};

const BuildInfo& build_info();

}  // namespace rvt
