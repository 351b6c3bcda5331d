#include "rvt/parity/gates.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "rvt/core/error.hpp"
#include "rvt/core/text.hpp"

namespace rvt::parity {
namespace {

std::string metric_list() {
  std::string names;
  for (const MetricInfo& m : metric_infos()) names += (names.empty() ? "" : ", ") + std::string(m.name);
  return names;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

const char* bound_op(Bound bound) { return bound == Bound::kUpper ? "<=" : ">="; }

const std::vector<MetricInfo>& metric_infos() {
  static const std::vector<MetricInfo> all{
      {"max_abs", Bound::kUpper, "largest |got - want|"},
      {"mean_abs", Bound::kUpper, "mean |got - want|"},
      {"rmse", Bound::kUpper, "root mean square error"},
      {"rel_l1", Bound::kUpper, "sum |got - want| / sum |want|"},
      {"nmse", Bound::kUpper, "sum (got - want)^2 / sum want^2"},
      {"cosine", Bound::kLower, "cosine similarity of the flattened tensors"},
      {"nonfinite", Bound::kUpper, "NaN/inf values on either side"},
      {"sparsity", Bound::kLower, "1 - sparse edges / dense edges"},
      {"top1", Bound::kLower, "fraction of logit rows whose argmax agrees"},
      {"spearman", Bound::kLower, "mean Spearman rank correlation of the logit rows"},
      {"mapping_errors", Bound::kUpper, "query heads that do not read kv head h / group"},
  };
  return all;
}

const MetricInfo* find_metric(const std::string& name) {
  for (const MetricInfo& m : metric_infos()) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

GatePreset parse_gate_preset(const std::string& name) {
  if (name == "default") return GatePreset::kDefault;
  if (name == "strict") return GatePreset::kStrict;
  throw_usage("--gate-preset: '" + name + "' is not one of default, strict");
}

const char* gate_preset_name(GatePreset preset) { return preset == GatePreset::kStrict ? "strict" : "default"; }

std::vector<GateOverride> parse_gates(const std::string& text, const std::vector<std::string>& suites) {
  std::vector<GateOverride> out;
  for (const std::string& untrimmed : split(text, ',')) {
    const std::string item = trim(untrimmed);
    const std::size_t eq = item.find('=');
    if (item.empty() || eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      throw_usage("--gate: '" + item + "' is not metric=value (e.g. max_abs=1e-4,cosine=0.98)");
    }
    GateOverride g;
    std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    const std::size_t dot = key.find('.');
    if (dot != std::string::npos) {
      g.suite = key.substr(0, dot);
      key = key.substr(dot + 1);
      if (std::find(suites.begin(), suites.end(), g.suite) == suites.end()) {
        std::string names;
        for (const std::string& s : suites) names += (names.empty() ? "" : ", ") + s;
        throw_usage("--gate: unknown suite '" + g.suite + "' in '" + item + "' (suites: " + names + ")");
      }
    }
    if (find_metric(key) == nullptr) {
      throw_usage("--gate: unknown metric '" + key + "' (metrics: " + metric_list() + ")");
    }
    g.metric = key;
    if (value != "off") {
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
        throw_usage("--gate: '" + value + "' in '" + item + "' is not a finite number or 'off'");
      }
      g.bound = v;
    }
    // A NaN anywhere fails the run: CI relies on it, so no --gate turns that off or loosens it.
    if (key == "nonfinite" && g.bound != 0.0) {
      throw_usage("--gate: '" + item + "': the nonfinite gate is always on (nonfinite<=0) and cannot be changed");
    }
    out.push_back(g);
  }
  return out;
}

bool gate_passes(Bound op, double value, double bound) {
  if (!std::isfinite(value)) return false;
  return op == Bound::kUpper ? value <= bound : value >= bound;
}

}  // namespace rvt::parity
