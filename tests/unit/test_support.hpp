// Shared helpers of the unit tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "rvt/tensor/tensor.hpp"

namespace rvt::test {

// data/ of the source tree (small fixtures and golden files).
inline std::string data_path(const std::string& rel) {
  const char* env = std::getenv("RVT_DATA_DIR");
  return std::string(env ? env : RVT_DATA_DIR) + "/" + rel;
}

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
