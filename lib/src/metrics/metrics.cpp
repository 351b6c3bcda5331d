#include "rvt/metrics/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "rvt/core/error.hpp"
#include "rvt/core/text.hpp"

namespace rvt::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Accumulator accumulate(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size()) {
    throw_bad_input("metrics: " + std::to_string(got.size()) + " values compared with " +
                    std::to_string(want.size()));
  }
  Accumulator a;
  for (std::size_t i = 0; i < got.size(); ++i) a.add(i, got[i], want[i]);
  return a;
}

// num / den for the relative metrics: 0/0 = 0, x/0 = inf.
double ratio(double num, double den) {
  if (den > 0.0) return num / den;
  return num > 0.0 ? kInf : 0.0;
}

Element element_at(std::span<const float> got, std::span<const float> want, const TensorShape& s,
                   std::size_t index) {
  Element e;
  e.valid = true;
  e.index = index;
  const std::size_t row = s.dim ? index / s.dim : 0;
  e.dim = s.dim ? index % s.dim : 0;
  e.pos = s.heads ? row / s.heads : 0;
  e.head = s.heads ? row % s.heads : 0;
  e.got = got[index];
  e.want = want[index];
  e.abs_err = std::fabs(e.got - e.want);
  if (std::isnan(e.abs_err)) e.abs_err = kInf;
  return e;
}

Element worst_of(const Accumulator& a, std::span<const float> got, std::span<const float> want,
                 const TensorShape& s, std::size_t offset) {
  if (a.has_nonfinite) return element_at(got, want, s, offset + a.first_nonfinite);
  if (a.count == 0) return Element{};
  return element_at(got, want, s, offset + a.worst_index);
}

}  // namespace

void Accumulator::add(std::size_t index, float got, float want) {
  const bool got_ok = std::isfinite(got), want_ok = std::isfinite(want);
  if (!got_ok || !want_ok) {
    nonfinite_got += got_ok ? 0 : 1;
    nonfinite_want += want_ok ? 0 : 1;
    ++nonfinite_pairs;
    const bool same = (std::isnan(got) && std::isnan(want)) || got == want;  // both NaN, or the same inf
    nonfinite_mismatches += same ? 0 : 1;
    if (!has_nonfinite) first_nonfinite = index;
    has_nonfinite = true;
    return;
  }
  const double g = got, w = want, e = g - w, ae = std::fabs(e);
  if (count == 0 || ae > max_abs) {
    max_abs = ae;
    worst_index = index;
  }
  ++count;
  sum_abs += ae;
  sum_sq += e * e;
  sum_abs_want += std::fabs(w);
  sum_sq_want += w * w;
  sum_sq_got += g * g;
  dot += g * w;
}

double Accumulator::mean_abs_err() const { return count ? sum_abs / static_cast<double>(count) : 0.0; }
double Accumulator::rmse() const { return count ? std::sqrt(sum_sq / static_cast<double>(count)) : 0.0; }
double Accumulator::rel_l1() const { return ratio(sum_abs, sum_abs_want); }
double Accumulator::nmse() const { return ratio(sum_sq, sum_sq_want); }

double Accumulator::cosine() const {
  const bool zero_got = sum_sq_got == 0.0, zero_want = sum_sq_want == 0.0;
  if (zero_got && zero_want) return 1.0;
  if (zero_got || zero_want) return 0.0;
  // One square root of the product: for identical tensors dot, sum_sq_got and sum_sq_want are
  // the same double, and sqrt(a * a) is exactly a, so they score exactly 1 (the product of two
  // roots gave 0.9999999999999999, and failed a cosine=1 gate). Sums of float squares stay far
  // from a double's range at both ends, so the product neither overflows nor underflows.
  const double c = dot / std::sqrt(sum_sq_got * sum_sq_want);
  return std::clamp(c, -1.0, 1.0);  // rounding can step just outside
}

double max_abs_err(std::span<const float> got, std::span<const float> want) { return accumulate(got, want).max_abs_err(); }
double mean_abs_err(std::span<const float> got, std::span<const float> want) { return accumulate(got, want).mean_abs_err(); }
double rmse(std::span<const float> got, std::span<const float> want) { return accumulate(got, want).rmse(); }
double rel_l1(std::span<const float> got, std::span<const float> want) { return accumulate(got, want).rel_l1(); }
double nmse(std::span<const float> got, std::span<const float> want) { return accumulate(got, want).nmse(); }
double cosine(std::span<const float> got, std::span<const float> want) { return accumulate(got, want).cosine(); }

ErrorMetrics ErrorMetrics::of(const Accumulator& a) {
  return {a.max_abs_err(), a.mean_abs_err(), a.rmse(), a.rel_l1(), a.nmse(), a.cosine()};
}

Comparison compare(std::span<const float> got, std::span<const float> want, const TensorShape& shape) {
  const std::size_t numel = shape.seq * shape.heads * shape.dim;
  if (got.size() != numel || want.size() != numel) {
    throw_bad_input("metrics: arrays of " + std::to_string(got.size()) + " and " + std::to_string(want.size()) +
                    " values do not have shape " + shape.str());
  }
  std::vector<Accumulator> heads(shape.heads);
  Accumulator all;
  for (std::size_t i = 0; i < numel; ++i) {
    all.add(i, got[i], want[i]);
    // Per head: the index within the whole tensor, so the worst element maps back.
    heads[(i / shape.dim) % shape.heads].add(i, got[i], want[i]);
  }
  Comparison c{ErrorMetrics::of(all), shape, all.count, all.nonfinite_got, all.nonfinite_want,
               worst_of(all, got, want, shape, 0), {}};
  for (std::size_t h = 0; h < shape.heads; ++h) {
    const Accumulator& a = heads[h];
    c.per_head.push_back(HeadMetrics{ErrorMetrics::of(a), h, a.nonfinite(), worst_of(a, got, want, shape, 0)});
  }
  return c;
}

Comparison compare(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) {
    throw_bad_input("metrics: shapes differ: " + got.shape().str() + " vs " + want.shape().str());
  }
  return compare(got.values(), want.values(), got.shape());
}

std::vector<double> max_abs_err_map(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) {
    throw_bad_input("metrics: shapes differ: " + got.shape().str() + " vs " + want.shape().str());
  }
  std::vector<double> map(got.seq() * got.heads(), 0.0);
  for (std::size_t t = 0; t < got.seq(); ++t) {
    for (std::size_t h = 0; h < got.heads(); ++h) {
      double m = 0.0;
      const float* g = got.row(t, h);
      const float* w = want.row(t, h);
      for (std::size_t d = 0; d < got.dim(); ++d) {
        if (!std::isfinite(g[d]) || !std::isfinite(w[d])) {
          m = kInf;
          break;
        }
        m = std::max(m, std::fabs(static_cast<double>(g[d]) - w[d]));
      }
      map[t * got.heads() + h] = m;
    }
  }
  return map;
}

double sparsity(std::uint64_t edges, std::uint64_t dense_edges) {
  return dense_edges ? 1.0 - static_cast<double>(edges) / static_cast<double>(dense_edges) : 0.0;
}

std::vector<double> ranks(std::span<const float> values) {
  const std::size_t n = values.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> r(n);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i;
    while (j + 1 < n && values[order[j + 1]] == values[order[i]]) ++j;
    const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (std::size_t k = i; k <= j; ++k) r[order[k]] = avg;
    i = j + 1;
  }
  return r;
}

double spearman(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) {
    throw_bad_input("spearman: " + std::to_string(a.size()) + " values compared with " + std::to_string(b.size()));
  }
  if (a.size() < 2) return 1.0;
  const std::vector<double> ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double mean = (n + 1.0) / 2.0;
  double cov = 0.0, va = 0.0, vb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    cov += (ra[i] - mean) * (rb[i] - mean);
    va += (ra[i] - mean) * (ra[i] - mean);
    vb += (rb[i] - mean) * (rb[i] - mean);
  }
  if (va == 0.0 && vb == 0.0) return 1.0;
  if (va == 0.0 || vb == 0.0) return 0.0;
  return std::clamp(cov / std::sqrt(va * vb), -1.0, 1.0);
}

std::size_t argmax(std::span<const float> values) {
  std::size_t best = 0;
  bool found = false;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) continue;
    if (!found || values[i] > values[best]) {
      best = i;
      found = true;
    }
  }
  return best;
}

report::Json number_json(double value) { return std::isfinite(value) ? report::Json(value) : report::Json(nullptr); }

report::Json element_json(const Element& e) {
  if (!e.valid) return nullptr;
  report::Json j;
  j["pos"] = e.pos;
  j["head"] = e.head;
  j["dim"] = e.dim;
  j["index"] = e.index;
  j["got"] = number_json(e.got);
  j["want"] = number_json(e.want);
  j["abs_err"] = number_json(e.abs_err);
  j["finite"] = std::isfinite(e.got) && std::isfinite(e.want);
  return j;
}

void add_error_json(report::Json& j, const ErrorMetrics& m) {
  for (const ErrorField& f : kErrorFields) j[f.name] = number_json(m.*f.value);
}

report::Json comparison_json(const Comparison& c, bool per_head) {
  report::Json j;
  j["count"] = c.count;
  add_error_json(j, c);
  j["nonfinite_got"] = c.nonfinite_got;
  j["nonfinite_want"] = c.nonfinite_want;
  j["worst"] = element_json(c.worst);
  if (per_head) {
    report::Json heads = report::Json::array();
    for (const HeadMetrics& h : c.per_head) {
      report::Json head{{"head", h.head}};
      add_error_json(head, h);
      head["nonfinite"] = h.nonfinite;
      head["worst"] = element_json(h.worst);
      heads.push_back(std::move(head));
    }
    j["per_head"] = heads;
  }
  return j;
}

std::string element_text(const Element& e) {
  if (!e.valid) return "no elements";
  // A pair with a NaN or inf has no error to quote (abs_err holds inf so that it sorts first).
  const bool finite = std::isfinite(e.got) && std::isfinite(e.want);
  return "pos " + std::to_string(e.pos) + " head " + std::to_string(e.head) + " dim " + std::to_string(e.dim) +
         ": got " + format_double("%.6g", e.got) + " want " + format_double("%.6g", e.want) +
         (finite ? " (|err| " + format_double("%.6g", e.abs_err) + ")" : std::string(" (non-finite)"));
}

}  // namespace rvt::metrics
