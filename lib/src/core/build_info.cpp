#include "rvt/core/build_info.hpp"

namespace rvt {

const BuildInfo& build_info() {
  static const BuildInfo info{RVT_VERSION, RVT_GIT_COMMIT, RVT_BUILD_TYPE, RVT_COMPILER};
  return info;
}

}  // namespace rvt
