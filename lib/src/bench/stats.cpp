#include "rvt/bench/stats.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace rvt::bench {

double median(std::span<const double> samples) {
  if (samples.empty()) return 0.0;
  std::vector<double> s(samples.begin(), samples.end());
  std::sort(s.begin(), s.end());
  const std::size_t n = s.size();
  return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

double stddev(std::span<const double> samples) {
  const std::size_t n = samples.size();
  if (n < 2) return 0.0;
  const double mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(n);
  double ss = 0.0;
  for (double x : samples) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(n - 1));
}

SampleStats sample_stats(std::span<const double> samples) {
  SampleStats s;
  s.count = samples.size();
  if (samples.empty()) return s;
  const auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  s.min = *lo;
  s.max = *hi;
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  s.median = median(samples);
  s.stddev = stddev(samples);
  return s;
}

double PowerFit::at(double x) const { return coefficient * std::pow(x, exponent); }

PowerFit fit_loglog(std::span<const double> x, std::span<const double> y) {
  std::vector<double> lx, ly;
  const std::size_t n = std::min(x.size(), y.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (x[i] > 0.0 && y[i] > 0.0 && std::isfinite(x[i]) && std::isfinite(y[i])) {
      lx.push_back(std::log(x[i]));
      ly.push_back(std::log(y[i]));
    }
  }
  PowerFit f;
  f.points = lx.size();
  if (lx.size() < 2) return f;
  const double m = static_cast<double>(lx.size());
  const double mx = std::accumulate(lx.begin(), lx.end(), 0.0) / m;
  const double my = std::accumulate(ly.begin(), ly.end(), 0.0) / m;
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < lx.size(); ++i) {
    sxx += (lx[i] - mx) * (lx[i] - mx);
    sxy += (lx[i] - mx) * (ly[i] - my);
    syy += (ly[i] - my) * (ly[i] - my);
  }
  if (!(sxx > 0.0)) return f;  // every point at the same x
  f.valid = true;
  f.exponent = sxy / sxx;
  f.coefficient = std::exp(my - f.exponent * mx);
  double rss = 0.0;
  for (std::size_t i = 0; i < lx.size(); ++i) {
    const double r = ly[i] - (my + f.exponent * (lx[i] - mx));
    rss += r * r;
  }
  f.r2 = syy > 0.0 ? 1.0 - rss / syy : 1.0;
  return f;
}

double attention_flops(std::uint64_t edges_per_head, std::size_t heads, std::size_t dim) {
  return 4.0 * static_cast<double>(dim) * static_cast<double>(edges_per_head) * static_cast<double>(heads);
}

double gflops(double flops, double ms) { return ms > 0.0 ? flops / (ms * 1e6) : 0.0; }

std::uint64_t peak_rss_bytes() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return static_cast<std::uint64_t>(u.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace rvt::bench
