// Accuracy metrics: how far an output `got` is from a reference `want`.
//
// Every function accumulates in double and reads the tensors in C order. Definitions
// (n = number of element pairs, e_i = got_i - want_i):
//   max_abs_err  = max |e_i|
//   mean_abs_err = Σ|e_i| / n
//   rmse         = sqrt(Σ e_i² / n)
//   rel_l1       = Σ|e_i| / Σ|want_i|
//   nmse         = Σ e_i² / Σ want_i²          (ggml's mse(a,b) / mse(b,0))
//   cosine       = Σ got_i·want_i / (|got|·|want|) of the flattened tensors
//
// Non-finite values: a pair where either side is NaN or ±inf is counted (nonfinite_got,
// nonfinite_want) and left out of every sum above, so one NaN cannot hide behind another
// metric; gates check the counts separately (parity's `nonfinite` metric).
//
// Degenerate inputs, chosen so that "identical" always scores perfectly and a difference
// from a zero reference never does:
//   no (finite) pairs      : every error metric 0, cosine 1
//   Σ|want| = 0 (rel_l1) or Σwant² = 0 (nmse): 0 when the errors are all 0, else +inf
//   cosine with |got| = |want| = 0: 1; with exactly one of them 0: 0
// Infinite metric values are written to JSON as null (JSON has no inf) and always fail
// a gate.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "rvt/report/report.hpp"
#include "rvt/tensor/tensor.hpp"

namespace rvt::metrics {

// Plain functions over two equally long arrays (checked: kBadInput if the lengths differ).
double max_abs_err(std::span<const float> got, std::span<const float> want);
double mean_abs_err(std::span<const float> got, std::span<const float> want);
double rmse(std::span<const float> got, std::span<const float> want);
double rel_l1(std::span<const float> got, std::span<const float> want);
double nmse(std::span<const float> got, std::span<const float> want);
double cosine(std::span<const float> got, std::span<const float> want);

// One element of a [seq][heads][dim] comparison.
struct Element {
  bool valid = false;  // false when there was nothing to compare
  std::size_t index = 0, pos = 0, head = 0, dim = 0;
  double got = 0.0, want = 0.0, abs_err = 0.0;  // got/want may be non-finite
};

// The sums every metric is derived from, so partial results can be merged (per head).
struct Accumulator {
  std::uint64_t count = 0;  // finite pairs
  std::uint64_t nonfinite_got = 0, nonfinite_want = 0;
  // Pairs with a NaN or inf on either side, and those of them whose two sides differ (one
  // finite, NaN against inf, inf against -inf): where a NaN propagates through both
  // computations, only a different outcome is a disagreement.
  std::uint64_t nonfinite_pairs = 0, nonfinite_mismatches = 0;
  double max_abs = 0.0, sum_abs = 0.0, sum_sq = 0.0;
  double sum_abs_want = 0.0, sum_sq_want = 0.0, sum_sq_got = 0.0, dot = 0.0;
  std::size_t worst_index = 0;  // of max_abs (first on ties), when count > 0
  std::size_t first_nonfinite = 0;
  bool has_nonfinite = false;

  void add(std::size_t index, float got, float want);
  double max_abs_err() const { return max_abs; }
  double mean_abs_err() const;
  double rmse() const;
  double rel_l1() const;
  double nmse() const;
  double cosine() const;
  std::uint64_t nonfinite() const { return nonfinite_got + nonfinite_want; }
};

// The error metrics of a set of pairs (the definitions above).
struct ErrorMetrics {
  double max_abs_err = 0, mean_abs_err = 0, rmse = 0, rel_l1 = 0, nmse = 0, cosine = 1;
  static ErrorMetrics of(const Accumulator& a);
};
// Each metric under the name the reports and the parity gates give it, in report order.
struct ErrorField {
  const char* name;
  double ErrorMetrics::*value;
};
inline constexpr std::array<ErrorField, 6> kErrorFields{{{"max_abs", &ErrorMetrics::max_abs_err},
                                                         {"mean_abs", &ErrorMetrics::mean_abs_err},
                                                         {"rmse", &ErrorMetrics::rmse},
                                                         {"rel_l1", &ErrorMetrics::rel_l1},
                                                         {"nmse", &ErrorMetrics::nmse},
                                                         {"cosine", &ErrorMetrics::cosine}}};

struct HeadMetrics : ErrorMetrics {
  std::size_t head = 0;
  std::uint64_t nonfinite = 0;
  Element worst;
};

// The full comparison of two tensors of the same shape.
struct Comparison : ErrorMetrics {
  TensorShape shape;
  std::uint64_t count = 0, nonfinite_got = 0, nonfinite_want = 0;
  // The worst element: the first pair with a non-finite side if there is one, else the
  // largest |got - want| (the first on ties). valid is false for empty tensors.
  Element worst;
  std::vector<HeadMetrics> per_head;

  std::uint64_t nonfinite() const { return nonfinite_got + nonfinite_want; }
};

// Throws rvt::Error(kBadInput) when the shapes differ.
Comparison compare(const Tensor& got, const Tensor& want);
// The same over raw [seq][heads][dim] arrays (logits are [frames][1][classes]).
Comparison compare(std::span<const float> got, std::span<const float> want, const TensorShape& shape);

// max |got - want| per (position, head): [seq][heads], row-major (the error heatmap).
// A pair with a non-finite side counts as +inf.
std::vector<double> max_abs_err_map(const Tensor& got, const Tensor& want);

// 1 - edges / dense_edges; 0 when dense_edges is 0.
double sparsity(std::uint64_t edges, std::uint64_t dense_edges);

// Ranks with ties averaged (1-based), and Spearman's rho = Pearson correlation of the ranks.
// rho of two constant vectors is 1, of one constant and one varying vector 0; fewer than
// two values give 1.
std::vector<double> ranks(std::span<const float> values);
double spearman(std::span<const float> a, std::span<const float> b);

// Index of the largest value (the first on ties); 0 for an empty span. NaN never wins.
std::size_t argmax(std::span<const float> values);

// JSON: a double, or null when it is not finite.
report::Json number_json(double value);
report::Json element_json(const Element& e);
// Adds each of m's metrics to j under its kErrorFields name (number_json).
void add_error_json(report::Json& j, const ErrorMetrics& m);
report::Json comparison_json(const Comparison& c, bool per_head = true);
// "pos 17 head 2 dim 5: got 0.1234 want 0.1567 (|err| 0.0333)"
std::string element_text(const Element& e);

}  // namespace rvt::metrics
