// Summary statistics of a float array. Non-finite values are counted, not folded in:
// min/max/mean/std are over the finite values only (JSON has no NaN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace rvt {

struct SummaryStats {
  std::uint64_t count = 0;       // all values
  std::uint64_t nan_count = 0;
  std::uint64_t inf_count = 0;
  double min = 0.0, max = 0.0, mean = 0.0, std = 0.0;  // over finite values; 0 if none

  std::uint64_t finite_count() const { return count - nan_count - inf_count; }
};

// `threads` workers share the passes; the sums run in a fixed order (runs of 65,536 values,
// eight interleaved sums each), so the result is the same for every count.
SummaryStats summarize(std::span<const float> values, unsigned threads = 1);

// True if any value is NaN or +-Inf. Reads exponent bits with an integer OR-reduction, which
// the compiler vectorises (a std::isfinite loop with an early exit does not): it guards the
// SIMD kernels on every call, so it must cost little next to them.
bool any_nonfinite(std::span<const float> values);

// Index of the first NaN or +-Inf value, or nullopt if every value is finite. All-finite
// data (the normal case) costs one any_nonfinite pass; only data that holds a non-finite
// value is scanned again, serially, to locate it.
std::optional<std::size_t> first_nonfinite(std::span<const float> values);

}  // namespace rvt
