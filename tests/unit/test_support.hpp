// Shared helpers of the unit tests.
#pragma once

#include <cstdlib>
#include <string>

namespace rvt::test {

// data/ of the source tree (small fixtures and golden files).
inline std::string data_path(const std::string& rel) {
  const char* env = std::getenv("RVT_DATA_DIR");
  return std::string(env ? env : RVT_DATA_DIR) + "/" + rel;
}

}  // namespace rvt::test
