// The arithmetic of `rvtemporal bench`: summary statistics of timing samples, the log-log
// growth fit, the FLOP count of an attention pass, and the process's peak RSS.
//
// Kept apart from the timing loops so every formula is unit-tested on exact inputs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace rvt::bench {

// Median, min, max, mean and sample standard deviation (n - 1; 0 for one sample) of a
// set of timings. An empty set is all zeros with count 0.
struct SampleStats {
  std::size_t count = 0;
  double median = 0.0, min = 0.0, max = 0.0, mean = 0.0, stddev = 0.0;
};
SampleStats sample_stats(std::span<const double> samples);
double median(std::span<const double> samples);  // mean of the two middle values for an even count
double stddev(std::span<const double> samples);  // sample standard deviation (n - 1)

// Least squares on (log x, log y): y ~ coefficient * x^exponent. Points with x <= 0 or
// y <= 0 (or non-finite) are skipped; fewer than two usable points, or all at the same x,
// give valid = false.
struct PowerFit {
  bool valid = false;
  double exponent = 0.0;
  double coefficient = 0.0;  // y at x = 1
  double r2 = 0.0;           // of the fit in log space (1 when every point lies on the line)
  std::size_t points = 0;
  double at(double x) const;  // coefficient * x^exponent
};
PowerFit fit_loglog(std::span<const double> x, std::span<const double> y);

// Float operations of one attention pass that evaluates `edges_per_head` (query, key)
// pairs in each of `heads` query heads: a QK dot product and a PV accumulation per edge,
// dim multiply-adds each, a multiply-add counting 2: 4 * dim * edges * heads. The softmax
// (one exp per edge) is not counted. Dense and sparse use the same formula over their edges.
double attention_flops(std::uint64_t edges_per_head, std::size_t heads, std::size_t dim);

// GFLOP/s of `flops` done in `ms` milliseconds (0 when ms <= 0).
double gflops(double flops, double ms);

// Peak resident set size of this process so far (getrusage ru_maxrss), in bytes.
std::uint64_t peak_rss_bytes();

}  // namespace rvt::bench
