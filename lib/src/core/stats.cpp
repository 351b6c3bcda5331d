#include "rvt/core/stats.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace rvt {

bool any_nonfinite(std::span<const float> values) {
  std::uint32_t hit = 0;
  for (float v : values) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    hit |= static_cast<std::uint32_t>((bits & 0x7F800000u) == 0x7F800000u);
  }
  return hit != 0;
}

std::optional<std::size_t> first_nonfinite(std::span<const float> values) {
  if (!any_nonfinite(values)) return std::nullopt;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) return i;
  }
  return std::nullopt;  // unreachable: any_nonfinite found one
}

SummaryStats summarize(std::span<const float> values) {
  SummaryStats s;
  s.count = values.size();
  double sum = 0.0;
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  for (float v : values) {
    if (std::isnan(v)) { ++s.nan_count; continue; }
    if (std::isinf(v)) { ++s.inf_count; continue; }
    sum += v;
    lo = std::min(lo, static_cast<double>(v));
    hi = std::max(hi, static_cast<double>(v));
  }
  const std::uint64_t n = s.finite_count();
  if (n == 0) return s;
  s.min = lo;
  s.max = hi;
  s.mean = sum / static_cast<double>(n);
  double sq = 0.0;  // second pass: numerically stable variance
  for (float v : values) {
    if (std::isfinite(v)) sq += (v - s.mean) * (v - s.mean);
  }
  s.std = std::sqrt(sq / static_cast<double>(n));
  return s;
}

}  // namespace rvt
