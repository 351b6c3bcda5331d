#include "rvt/core/build_info.hpp"

#include "rvt_git_commit.h"  // generated at build time: RVT_GIT_COMMIT

namespace rvt {

const BuildInfo& build_info() {
  static const BuildInfo info{RVT_VERSION, RVT_GIT_COMMIT, RVT_BUILD_TYPE, RVT_COMPILER};
  return info;
}

}  // namespace rvt
