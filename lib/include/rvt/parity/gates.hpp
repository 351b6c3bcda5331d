// Gates: a bound on one metric of a parity case. The metric's name fixes the direction:
// error metrics (max_abs, mean_abs, rmse, rel_l1, nmse, nonfinite, mapping_errors) are upper
// bounds (value <= bound passes), agreement metrics (cosine, spearman, top1, sparsity) lower
// bounds (value >= bound passes). A non-finite value never passes.
//
// The user's `--gate` text is a comma-separated list of `[suite.]metric=value`, where value
// is a number or `off` (drop that gate). Without a suite prefix an item applies to every
// selected suite that reports the metric; a user gate replaces the built-in one on the same
// metric. Several --gate options add up, later items winning.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace rvt::parity {

enum class Bound { kUpper, kLower };
const char* bound_op(Bound bound);  // "<=" | ">="

struct MetricInfo {
  const char* name;
  Bound bound;
  const char* meaning;
};
// Every gateable metric, in report order.
const std::vector<MetricInfo>& metric_infos();
const MetricInfo* find_metric(const std::string& name);  // nullptr if unknown

enum class GatePreset { kDefault, kStrict };
GatePreset parse_gate_preset(const std::string& name);  // "default" | "strict"; throws kUsage
const char* gate_preset_name(GatePreset preset);

struct Gate {
  std::string metric;
  double bound = 0.0;
};

struct GateResult {
  std::string metric;
  Bound op = Bound::kUpper;
  double bound = 0.0;
  double value = 0.0;
  bool pass = false;
  bool user = false;  // set on the command line rather than built in
};

// One item of --gate.
struct GateOverride {
  std::string suite;            // empty: every selected suite
  std::string metric;
  std::optional<double> bound;  // nullopt: `off`
};

// Parses one --gate value; throws rvt::Error(kUsage) naming the bad item. Suite prefixes
// are checked against `suites` (the known suite names).
std::vector<GateOverride> parse_gates(const std::string& text, const std::vector<std::string>& suites);

bool gate_passes(Bound op, double value, double bound);

}  // namespace rvt::parity
