#include "rvt/core/stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "rvt/core/parallel.hpp"

namespace rvt {

namespace {

// Not NaN or +-Inf: the exponent bits are not all set (an integer test that vectorizes).
bool finite_bits(float v) {
  std::uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7F800000u) != 0x7F800000u;
}

}  // namespace

bool any_nonfinite(std::span<const float> values) {
  std::uint32_t hit = 0;
  for (float v : values) hit |= finite_bits(v) ? 0u : 1u;
  return hit != 0;
}

std::optional<std::size_t> first_nonfinite(std::span<const float> values) {
  if (!any_nonfinite(values)) return std::nullopt;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) return i;
  }
  return std::nullopt;  // unreachable: any_nonfinite found one
}

namespace {

// Runs of this many values are summed on their own and combined in order, each in eight
// interleaved sums (lane l takes values l, l + 8, ...): a loop the compiler vectorizes, and
// the same order of additions for every thread count.
constexpr std::size_t kStatsRun = std::size_t{1} << 16;
constexpr std::size_t kStatsLanes = 8;

struct RunSums {
  double sum = 0.0, lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  std::uint64_t finite = 0;
};

// Sum, min, max and count of the finite values of a run; with `mean`, the sum of squared
// distances from it instead of the sum.
RunSums run_sums(std::span<const float> run, const double* mean) {
  double sum[kStatsLanes] = {}, lo[kStatsLanes], hi[kStatsLanes];
  std::uint64_t finite[kStatsLanes] = {};
  for (std::size_t l = 0; l < kStatsLanes; ++l) lo[l] = std::numeric_limits<double>::infinity(), hi[l] = -lo[l];
  auto add = [&](std::size_t l, float v) {
    const bool ok = finite_bits(v);
    const double x = ok ? static_cast<double>(v) : 0.0;
    const double term = mean ? (x - *mean) * (x - *mean) : x;
    sum[l] += ok ? term : 0.0;
    lo[l] = ok ? std::min(lo[l], x) : lo[l];
    hi[l] = ok ? std::max(hi[l], x) : hi[l];
    finite[l] += ok ? 1 : 0;
  };
  std::size_t i = 0;
  for (; i + kStatsLanes <= run.size(); i += kStatsLanes) {
    for (std::size_t l = 0; l < kStatsLanes; ++l) add(l, run[i + l]);
  }
  for (std::size_t l = 0; i < run.size(); ++i, ++l) add(l, run[i]);
  RunSums r;
  for (std::size_t l = 0; l < kStatsLanes; ++l) {
    r.sum += sum[l];
    r.lo = std::min(r.lo, lo[l]);
    r.hi = std::max(r.hi, hi[l]);
    r.finite += finite[l];
  }
  return r;
}

// run_sums of every run, split between `threads` workers, combined in run order.
RunSums all_sums(std::span<const float> values, const double* mean, unsigned threads) {
  std::vector<RunSums> runs((values.size() + kStatsRun - 1) / kStatsRun);
  parallel_runs(values.size(), kStatsRun, threads, [&](std::size_t begin, std::size_t end) {
    runs[begin / kStatsRun] = run_sums(values.subspan(begin, end - begin), mean);
  });
  RunSums all;
  for (const RunSums& r : runs) {
    all.sum += r.sum;
    all.lo = std::min(all.lo, r.lo);
    all.hi = std::max(all.hi, r.hi);
    all.finite += r.finite;
  }
  return all;
}

}  // namespace

SummaryStats summarize(std::span<const float> values, unsigned threads) {
  SummaryStats s;
  s.count = values.size();
  const RunSums first = all_sums(values, nullptr, threads);
  if (first.finite < s.count) {  // rare: count the kinds apart
    for (float v : values) {
      s.nan_count += std::isnan(v) ? 1 : 0;
      s.inf_count += std::isinf(v) ? 1 : 0;
    }
  }
  const std::uint64_t n = first.finite;
  if (n == 0) return s;
  s.min = first.lo;
  s.max = first.hi;
  s.mean = first.sum / static_cast<double>(n);
  // Second pass: the variance from distances to the mean, numerically stable.
  s.std = std::sqrt(all_sums(values, &s.mean, threads).sum / static_cast<double>(n));
  return s;
}

}  // namespace rvt
