#include "rvt/bench/compare.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "rvt/bench/bench.hpp"
#include "rvt/bench/format.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"

namespace rvt::bench {
namespace {

using report::Json;

// (table, n, kernel) -> median
using Key = std::tuple<std::string, std::size_t, std::string>;

std::map<Key, double> medians(const Json& r) {
  std::map<Key, double> m;
  if (r.contains("prefill") && r["prefill"].is_array()) {
    for (const Json& p : r["prefill"]) {
      if (!p.is_object() || !p.contains("seq") || !p["seq"].is_number_unsigned()) continue;
      const auto n = p["seq"].get<std::size_t>();
      for (const char* kernel : {"dense", "sparse", "sparse_ref"}) {
        if (!p.contains(kernel) || !p[kernel].is_object()) continue;
        const Json& k = p[kernel];
        if (k.value("extrapolated", false) || !k.value("attempted", true)) continue;
        if (k.contains("median_ms") && k["median_ms"].is_number()) m[{"prefill", n, kernel}] = k["median_ms"].get<double>();
      }
    }
  }
  if (r.contains("decode") && r["decode"].is_object() && r["decode"].contains("rows") && r["decode"]["rows"].is_array()) {
    for (const Json& d : r["decode"]["rows"]) {
      if (!d.is_object() || !d.contains("t") || !d["t"].is_number_unsigned()) continue;
      const auto t = d["t"].get<std::size_t>();
      for (const char* kernel : {"sparse", "dense"}) {
        if (!d.contains(kernel) || !d[kernel].is_object()) continue;
        const Json& k = d[kernel];
        if (k.contains("median_ns") && k["median_ns"].is_number()) m[{"decode", t, kernel}] = k["median_ns"].get<double>();
      }
    }
  }
  return m;
}

// The one-core FMA peak a result measured; 0 where it has none.
double one_core_peak(const Json& r) {
  if (!r.contains("fma_peak") || !r["fma_peak"].is_object()) return 0.0;
  const Json& p = r["fma_peak"];
  return p.contains("single_core_gflops") && p["single_core_gflops"].is_number() ? p["single_core_gflops"].get<double>()
                                                                                 : 0.0;
}

std::string entry_name(const CompareEntry& e) {
  return (e.table == "decode" ? "decode T=" : "N=") + std::to_string(e.n) + " " + e.kernel;
}

[[noreturn]] void throw_no_common_sizes(const std::string& baseline_name) {
  throw_bad_input("--compare: baseline " + baseline_name + " has none of this run's sizes (N or decode T)");
}

}  // namespace

Json load_baseline(const std::string& path) {
  const std::vector<std::uint8_t> bytes = io::read_file(path);
  Json j = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw_bad_input("--compare: " + path + " is not JSON");
  if (j.is_object() && j.contains("result") && j["result"].is_object()) {
    if (j.contains("command") && j["command"] != "bench") {
      throw_bad_input("--compare: " + path + " is a '" + j["command"].get<std::string>() +
                      "' report, not a bench report");
    }
    j = j["result"];
  }
  if (!j.is_object() || !j.contains("schema") || j["schema"] != kBenchSchema) {
    throw_bad_input("--compare: " + path + " is not a bench report (no \"schema\": \"" + kBenchSchema + "\")");
  }
  return j;
}

std::optional<bool> same_machine(const Json& current_machine, const Json& baseline) {
  if (!baseline.contains("machine") || !baseline["machine"].is_object()) return std::nullopt;
  const Json& b = baseline["machine"];
  auto same = [&](const char* key) { return b.contains(key) && current_machine.contains(key) && b[key] == current_machine[key]; };
  if (!same("cpu_model") || !same("isa") || !same("threads")) return false;
  // A cpu_id absent (older reports) or null (a /proc/cpuinfo without the fields) cannot tell.
  auto known = [](const Json& m) { return m.contains("cpu_id") && !m["cpu_id"].is_null(); };
  if (!known(b) || !known(current_machine)) return std::nullopt;
  return same("cpu_id");
}

std::string describe_machine(const Json& machine) {
  std::string s = report::describe_cpu(machine);
  if (machine.contains("isa") && machine["isa"].is_string()) s += ", " + machine["isa"].get<std::string>();
  if (machine.contains("threads") && machine["threads"].is_number_unsigned()) {
    const auto t = machine["threads"].get<std::uint64_t>();
    s += ", " + std::to_string(t) + (t == 1 ? " thread" : " threads");
  }
  return s;
}

std::string machine_notice(const Json& current_machine, const Json& baseline, const std::string& baseline_name) {
  if (same_machine(current_machine, baseline) != false) return "";
  return "--compare: baseline " + baseline_name + " ran on " + describe_machine(baseline["machine"]) +
         "; this run on " + describe_machine(current_machine) +
         ": the ratios compare the machines as much as the code";
}

// The decode table's cache storage, "f32" where a report does not say (those before it could be f16).
std::string decode_kv_dtype(const Json& r) {
  return r.contains("decode") && r["decode"].is_object() && r["decode"].contains("kv_dtype") &&
                 r["decode"]["kv_dtype"].is_string()
             ? r["decode"]["kv_dtype"].get<std::string>()
             : "f32";
}

void check_comparable(const Json& current, const Json& baseline, const std::string& baseline_name) {
  const std::string a = workload_words(current, true), b = workload_words(baseline, true);
  if (a != b) {
    throw_bad_input("--compare: baseline " + baseline_name + " was measured on " + b + ", this run is " + a +
                    ": not comparable");
  }
  const std::string da = decode_kv_dtype(current), db = decode_kv_dtype(baseline);
  if (da != db) {
    throw_bad_input("--compare: baseline " + baseline_name + " timed its decode steps over an " + db +
                    " cache, this run over an " + da + " one: not comparable");
  }
}

std::size_t CompareResult::regressions() const {
  std::size_t n = 0;
  for (const auto& e : entries) n += e.regressed ? 1 : 0;
  return n;
}

std::string CompareResult::failure_message() const {
  const CompareEntry* worst = nullptr;
  for (const auto& e : entries) {
    if (e.regressed && (!worst || e.ratio > worst->ratio)) worst = &e;
  }
  if (!worst) return "";
  const char* unit = worst->table == "decode" ? "ns" : "ms";
  std::string s = "check failed: " + entry_name(*worst) + " median " + format_double("%.4g", worst->current) + " " + unit +
                  " is " + format_double("%.4g", worst->ratio) + "x the baseline " + format_double("%.4g", worst->baseline) + " " + unit +
                  " (tolerance " + format_double("%g", tolerance) + ")";
  const std::size_t more = regressions() - 1;
  if (more) s += ", and " + std::to_string(more) + " more regression" + (more > 1 ? "s" : "");
  return s;
}

Json CompareResult::json() const {
  Json j;
  j["baseline"] = baseline_name;
  j["tolerance"] = tolerance;
  j["compared"] = entries.size();
  j["regressions"] = regressions();
  j["ok"] = regressions() == 0;
  Json es = Json::array();
  for (const auto& e : entries) {
    es.push_back(Json{{"table", e.table},
                      {"n", e.n},
                      {"kernel", e.kernel},
                      {"unit", e.table == "decode" ? "ns" : "ms"},
                      {"current", e.current},
                      {"baseline", e.baseline},
                      {"ratio", e.ratio},
                      {"regressed", e.regressed}});
  }
  j["entries"] = es;
  j["unmatched"] = unmatched;
  j["machine"] = machine.empty() ? Json(nullptr) : Json(machine);
  j["baseline_machine"] = baseline_machine.empty() ? Json(nullptr) : Json(baseline_machine);
  j["same_machine"] = same_machine ? Json(*same_machine) : Json(nullptr);
  j["fma_peak_ratio"] = fma_peak_ratio ? Json(*fma_peak_ratio) : Json(nullptr);
  return j;
}

void check_common_sizes(const Json& baseline, const std::vector<std::size_t>& seqs,
                        const std::vector<std::size_t>& decode_at, const std::string& baseline_name) {
  auto has = [](const std::vector<std::size_t>& v, std::size_t n) { return std::find(v.begin(), v.end(), n) != v.end(); };
  for (const auto& [key, value] : medians(baseline)) {
    const auto& [table, n, kernel] = key;
    if (value > 0.0 && has(table == "decode" ? decode_at : seqs, n)) return;
  }
  throw_no_common_sizes(baseline_name);
}

CompareResult compare_results(const Json& current, const Json& baseline, double tolerance,
                              const std::string& baseline_name) {
  if (!(tolerance >= 0.0) || !std::isfinite(tolerance)) throw_usage("--tolerance must be a finite number >= 0");
  check_comparable(current, baseline, baseline_name);
  CompareResult res;
  res.baseline_name = baseline_name;
  res.tolerance = tolerance;
  const auto base = medians(baseline);
  for (const auto& [key, value] : medians(current)) {
    const auto& [table, n, kernel] = key;
    const auto it = base.find(key);
    if (it == base.end() || !(it->second > 0.0)) {
      res.unmatched.push_back(table + (table == "decode" ? " T=" : " N=") + std::to_string(n) + " " + kernel);
      continue;
    }
    CompareEntry e{table, n, kernel, value, it->second, value / it->second, false};
    e.regressed = e.ratio > 1.0 + tolerance;
    res.entries.push_back(e);
  }
  if (res.entries.empty()) throw_no_common_sizes(baseline_name);
  auto machine_of = [](const Json& r) { return r.contains("machine") && r["machine"].is_object() ? r["machine"] : Json(); };
  const Json machine = machine_of(current), base_machine = machine_of(baseline);
  res.machine = machine.is_null() ? "" : describe_machine(machine);
  res.baseline_machine = base_machine.is_null() ? "" : describe_machine(base_machine);
  res.same_machine = machine.is_null() ? std::nullopt : same_machine(machine, baseline);
  const double peak = one_core_peak(current), base_peak = one_core_peak(baseline);
  if (peak > 0.0 && base_peak > 0.0) res.fma_peak_ratio = peak / base_peak;
  return res;
}

}  // namespace rvt::bench
