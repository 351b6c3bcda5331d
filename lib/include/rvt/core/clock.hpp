// The clock every timing in the reports reads, and its intervals in the units they print.
#pragma once

#include <chrono>

namespace rvt {

using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
inline double ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}
inline double ms_since(Clock::time_point start) { return ms_between(start, Clock::now()); }

}  // namespace rvt
