// Shared helpers of the unit tests.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "rvt/tensor/tensor.hpp"

namespace rvt::test {

// data/ of the source tree (small fixtures and golden files).
inline std::string data_path(const std::string& rel) {
  const char* env = std::getenv("RVT_DATA_DIR");
  return std::string(env ? env : RVT_DATA_DIR) + "/" + rel;
}

// A fresh directory under the system temp dir, removed with everything in it on scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rvt_unit_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Largest elementwise |a - b| (in double), +inf where either holds a NaN; the shapes must match.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape())) throw std::invalid_argument("max_abs_diff: shapes differ");
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]);
    if (std::isnan(d)) return HUGE_VAL;
    m = std::max(m, d);
  }
  return m;
}

// Every unit test runs with unwritten outputs poisoned (see rvt::poison_uninitialized).
inline const bool kPoisonUninitialized = [] {
  poison_uninitialized(true);
  return true;
}();

}  // namespace rvt::test
