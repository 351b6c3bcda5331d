#include "rvt/bench/format.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

#include "rvt/core/error.hpp"
#include "rvt/core/text.hpp"
#include "rvt/report/svg.hpp"

namespace rvt::bench {
namespace {

using report::Json;

std::optional<double> num_at(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

// A number with about 4 significant digits, never in exponent form.
std::string n4(double v) {
  const double a = std::fabs(v);
  const int decimals = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 10 ? 2 : a >= 1 ? 3 : a >= 0.1 ? 4 : 5;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string n4(const std::optional<double>& v) { return v ? n4(*v) : std::string("-"); }
std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string fixed(const std::optional<double>& v, int decimals, const std::string& suffix = "") {
  return v ? fixed(*v, decimals) + suffix : std::string("-");
}
std::string csv_num(const std::optional<double>& v) {
  if (!v) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", *v);
  return buf;
}

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

std::string render_markdown(const Table& t) {
  std::string s = "|";
  for (const auto& h : t.header) s += " " + h + " |";
  s += "\n|";
  for (std::size_t i = 0; i < t.header.size(); ++i) s += "---:|";
  s += "\n";
  for (const auto& r : t.rows) {
    s += "|";
    for (const auto& c : r) s += " " + c + " |";
    s += "\n";
  }
  return s;
}

std::string render_text(const Table& t) {
  std::vector<std::size_t> w(t.header.size(), 0);
  for (std::size_t i = 0; i < t.header.size(); ++i) w[i] = t.header[i].size();
  for (const auto& r : t.rows) {
    for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      s += (i ? "  " : "") + std::string(w[i] - cells[i].size(), ' ') + cells[i];
    }
    return s + "\n";
  };
  std::string s = line(t.header);
  for (const auto& r : t.rows) s += line(r);
  return s;
}

std::string pct(const Json& k) { return fixed(num_at(k, "pct_of_peak"), 1, "%"); }

// The smallest and largest numbers of a JSON array (nulls skipped), both empty if it has none.
std::pair<std::optional<double>, std::optional<double>> number_range(const Json& values) {
  std::optional<double> lo, hi;
  for (const Json& v : values) {
    if (!v.is_number()) continue;
    const double x = v.get<double>();
    lo = lo ? std::min(*lo, x) : x;
    hi = hi ? std::max(*hi, x) : x;
  }
  return {lo, hi};
}

// "lo - hi" over an array of per-round values (nulls skipped); "-" when none.
std::string range_cell(const Json& values, const char* unit, int decimals = 2) {
  const auto [lo, hi] = number_range(values);
  return lo ? fixed(lo, decimals) + " - " + fixed(hi, decimals) + unit : "-";
}

// Rounds of the prefill and decode tables (BenchConfig::rounds); reports from before it had one.
std::uint64_t table_rounds(const Json& result) { return result["params"].value("rounds", std::uint64_t{1}); }

Table prefill_table(const Json& result) {
  Table t;
  t.header = {"N",          "dense ms", "dense sd", "sparse ms", "sparse sd", "ref sparse ms", "speedup", "edge ratio",
              "efficiency", "dense GFLOP/s", "dense %peak", "sparse GFLOP/s", "sparse %peak", "fast/ref"};
  const bool rounds = table_rounds(result) > 1;
  if (rounds) t.header.insert(t.header.end(), {"speedup rounds", "fast/ref rounds"});
  for (const Json& r : result["prefill"]) {
    const Json& d = r["dense"];
    const Json& sp = r["sparse"];
    const bool extra = d.value("extrapolated", false);
    std::string dense_ms = n4(num_at(d, "median_ms"));
    if (extra) dense_ms = "~" + dense_ms + "*";
    const Json& ref = r["sparse_ref"];
    std::string speed = fixed(num_at(r["speedup"], "measured"), 2, "x");
    if (extra) speed = "~" + speed + "*";
    t.rows.push_back({std::to_string(r["seq"].get<std::uint64_t>()), dense_ms, n4(num_at(d, "stddev_ms")),
                      n4(num_at(sp, "median_ms")), n4(num_at(sp, "stddev_ms")),
                      ref.is_object() ? n4(num_at(ref, "median_ms")) : "-", speed,
                      fixed(num_at(r["edges"], "ratio"), 2, "x"), fixed(num_at(r["speedup"], "efficiency"), 2),
                      extra ? "-" : fixed(num_at(d, "gflops"), 1), extra ? "-" : pct(d), fixed(num_at(sp, "gflops"), 1),
                      pct(sp), fixed(num_at(r, "fast_vs_ref"), 1, "x")});
    if (rounds) {
      t.rows.back().insert(t.rows.back().end(), {range_cell(r.value("round_speedups", Json::array()), "x"),
                                                 range_cell(r.value("round_fast_vs_ref", Json::array()), "x")});
    }
  }
  return t;
}

Table decode_table(const Json& result) {
  Table t;
  t.header = {"T", "steps sparse/dense", "sparse ns/token", "dense ns/token", "dense/sparse", "sparse vs first T",
              "dense vs first T"};
  const bool rounds = table_rounds(result) > 1;
  if (rounds) t.header.push_back("sparse rounds ns");
  for (const Json& r : result["decode"]["rows"]) {
    t.rows.push_back({std::to_string(r["t"].get<std::uint64_t>()),
                      std::to_string(r["sparse"]["steps"].get<std::uint64_t>()) + "/" +
                          std::to_string(r["dense"]["steps"].get<std::uint64_t>()),
                      fixed(num_at(r["sparse"], "median_ns"), 0), fixed(num_at(r["dense"], "median_ns"), 0),
                      fixed(num_at(r, "speedup"), 1, "x"), fixed(num_at(r, "sparse_vs_first"), 2),
                      fixed(num_at(r, "dense_vs_first"), 2)});
    if (rounds) t.rows.back().push_back(range_cell(r["sparse"].value("round_medians_ns", Json::array()), "", 0));
  }
  return t;
}

// The thread-scaling rows (BenchConfig::scaling_at); none in reports without them.
const Json& scaling_rows(const Json& result) {
  static const Json kNone = Json::array();
  return result.contains("scaling") && result["scaling"].is_object() ? result["scaling"]["rows"] : kNone;
}

Table scaling_table(const Json& result) {
  const std::string t = std::to_string(result["scaling"]["threads"].get<unsigned>());
  Table table;
  table.header = {"N", "dense 1 thread ms", "dense " + t + " threads ms", "dense speedup", "sparse 1 thread ms",
                  "sparse " + t + " threads ms", "sparse speedup", "sparse rounds", "sparse 1 thread by CPU ms",
                  "sparse balanced bound", "sparse concurrent bound"};
  for (const Json& r : scaling_rows(result)) {
    auto side = [](const Json& k, std::vector<std::string>& row) {
      if (!k.is_object()) {
        row.insert(row.end(), {"-", "-", "-"});
        return;
      }
      row.insert(row.end(), {n4(num_at(k["one_thread"], "median_ms")), n4(num_at(k["threads"], "median_ms")),
                             fixed(num_at(k, "speedup"), 2, "x")});
    };
    std::vector<std::string> row{std::to_string(r["seq"].get<std::uint64_t>())};
    side(r["dense"], row);
    side(r["sparse"], row);
    row.push_back(range_cell(r["sparse"]["round_speedups"], "x"));
    std::string by_cpu;
    for (const Json& k : r["sparse"].value("one_thread_by_cpu", Json::array())) {
      by_cpu += (by_cpu.empty() ? "" : ", ") + std::string("cpu") + std::to_string(k["cpu"].get<int>()) + " " +
                n4(num_at(k, "median_ms"));
    }
    row.push_back(by_cpu.empty() ? "-" : by_cpu);
    row.push_back(fixed(num_at(r["sparse"], "balanced_bound"), 2, "x"));
    // The pooled bound, then its rounds' range.
    const std::optional<double> concurrent = num_at(r["sparse"], "concurrent_bound");
    const Json rounds = r["sparse"].value("round_concurrent_bounds", Json::array());
    row.push_back(fixed(concurrent, 2, "x") + (concurrent && rounds.size() > 1 ? " (" + range_cell(rounds, "x") + ")" : ""));
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::string scaling_title(const Json& r) {
  const Json& sc = r["scaling"];
  return "thread scaling, 1 against " + std::to_string(sc["threads"].get<unsigned>()) + " threads, medians of " +
         std::to_string(sc["rounds"].get<std::uint64_t>()) + " alternating rounds of " +
         std::to_string(sc["reps_per_round"].get<std::uint64_t>()) + " calls each";
}

// ", R rounds taking turns" for a report of R > 1 rounds; only "R rounds" where sparse ran
// alone (no reference, and dense at no N).
std::string rounds_note(const Json& r) {
  if (table_rounds(r) <= 1) return "";
  bool turns = r["params"].value("reference", true);
  for (const Json& row : r["prefill"]) turns = turns || row["dense"].value("attempted", true);
  return ", " + std::to_string(table_rounds(r)) + (turns ? " rounds taking turns" : " rounds");
}

std::string title_line(const Json& r) {
  return workload_words(r, false) + ", isa " + r["machine"]["isa"].get<std::string>() + ", threads " +
         std::to_string(r["params"]["threads"].get<std::uint64_t>()) + ", reps " +
         std::to_string(r["params"]["reps"].get<std::uint64_t>()) + " after " +
         std::to_string(r["params"]["warmup"].get<std::uint64_t>()) + " warmup" + rounds_note(r);
}

std::string machine_line(const Json& r) {
  const Json& m = r["machine"];
  std::string load = "n/a";
  if (m["loadavg"].is_array()) {
    load = fixed(m["loadavg"][0].get<double>(), 2) + " " + fixed(m["loadavg"][1].get<double>(), 2) + " " +
           fixed(m["loadavg"][2].get<double>(), 2);
  }
  return report::describe_cpu(m) + ", " + std::to_string(m["logical_cpus"].get<std::uint64_t>()) +
         " logical CPUs, load average " + load + ", " + m["compiler"].get<std::string>() + " " +
         m["build_type"].get<std::string>() + ", commit " + m["git_commit"].get<std::string>() + ", " +
         m["timestamp_utc"].get<std::string>();
}

std::string peak_line(const Json& r) {
  const Json& p = r["fma_peak"];
  if (!p["valid"].get<bool>()) return "fma peak: not measured (" + p["note"].get<std::string>() + ")";
  return "fma peak: " + fixed(p["single_core_gflops"].get<double>(), 1) + " GFLOP/s per core (" +
         p["isa"].get<std::string>() + ", one thread); %peak is of " +
         fixed(p["reference_gflops"].get<double>(), 1) + " GFLOP/s (threads x one core)";
}

// Each CPU's rate with all of them busy, or "" when not measured.
std::string per_cpu_peak_line(const Json& r) {
  const Json& p = r["fma_peak"];
  if (!p.contains("per_cpu_all_busy") || p["per_cpu_all_busy"].empty()) return "";
  std::string cpus;
  for (const Json& c : p["per_cpu_all_busy"]) {
    const int cpu = c["cpu"].get<int>();
    cpus += (cpus.empty() ? "" : ", ") + (cpu >= 0 ? "cpu" + std::to_string(cpu) : std::string("unpinned")) + " " +
            fixed(c["gflops"].get<double>(), 1);
  }
  return "fma peak with every CPU busy: " + cpus + " GFLOP/s";
}

std::string fit_text(const Json& f) {
  if (!f["valid"].get<bool>()) return "-";
  return "N^" + fixed(f["exponent"].get<double>(), 3) + " (r2 " + fixed(f["r2"].get<double>(), 4) + ", " +
         std::to_string(f["points"].get<std::uint64_t>()) + " points)";
}

std::string fits_line(const Json& r) {
  const Json& f = r["fits"];
  return "growth (least squares on log time vs log N): dense " + fit_text(f["dense"]) + ", sparse " +
         fit_text(f["sparse"]) + ", reference sparse " + fit_text(f["sparse_ref"]);
}

bool any_extrapolated(const Json& r) {
  for (const Json& row : r["prefill"]) {
    if (row["dense"].value("extrapolated", false)) return true;
  }
  return false;
}

std::string mib(const Json& v) { return fixed(v.get<double>() / (1024.0 * 1024.0), 1) + " MiB"; }

std::string compare_text(const Json& r) {
  if (!r.contains("compare")) return "";
  const Json& c = r["compare"];
  std::string s = "compare with " + c["baseline"].get<std::string>() + " (tolerance " +
                  format_double("%g", c["tolerance"].get<double>()) + "): " + std::to_string(c["compared"].get<std::uint64_t>()) +
                  " medians, " + std::to_string(c["regressions"].get<std::uint64_t>()) + " regressed\n";
  auto text_or = [&](const char* key, const char* absent) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : std::string(absent);
  };
  s += "  baseline ran on " + text_or("baseline_machine", "(not recorded)") + "\n  this run on " +
       text_or("machine", "(not recorded)");
  if (c.contains("fma_peak_ratio") && c["fma_peak_ratio"].is_number()) {
    s += ", one-core FMA peak " + fixed(c["fma_peak_ratio"].get<double>(), 2) + "x the baseline's";
  }
  if (c.contains("same_machine") && c["same_machine"] == false) s += "  NOT THE SAME MACHINE OR SETTINGS";
  s += "\n";
  for (const Json& e : c["entries"]) {
    s += "  " + e["table"].get<std::string>() + " " + (e["table"] == "decode" ? "T=" : "N=") +
         std::to_string(e["n"].get<std::uint64_t>()) + " " + e["kernel"].get<std::string>() + ": " +
         format_double("%.4g", e["ratio"].get<double>()) + "x baseline" + (e["regressed"].get<bool>() ? "  REGRESSED" : "") + "\n";
  }
  return s;
}

// ----- SVG -----

struct LogAxis {
  double lo, hi;      // data range (log10 space endpoints computed from these)
  double p0, p1;      // pixel range
  double map(double v) const {
    const double a = std::log10(lo), b = std::log10(hi);
    return p0 + (std::log10(v) - a) / (b - a) * (p1 - p0);
  }
};

LogAxis decade_axis(double lo, double hi, double p0, double p1) {
  if (!(lo > 0.0)) lo = 1e-3;
  if (!(hi > lo)) hi = lo * 10.0;
  return {std::pow(10.0, std::floor(std::log10(lo))), std::pow(10.0, std::ceil(std::log10(hi))), p0, p1};
}

std::string size_label(double n) {
  const auto v = static_cast<std::uint64_t>(n);
  if (v >= (1u << 20) && v % (1u << 20) == 0) return std::to_string(v >> 20) + "M";
  if (v >= 1024 && v % 1024 == 0) return std::to_string(v >> 10) + "k";
  return std::to_string(v);
}

std::string decade_label(double v) {
  const int e = static_cast<int>(std::lround(std::log10(v)));
  if (e >= 0 && e <= 4) return fixed(v, 0);
  if (e < 0 && e >= -3) return fixed(v, -e);
  return "1e" + std::to_string(e);
}

// A value a log axis can show: positive and finite (an infinite one would stretch the axis
// to infinity, and its decade loop would never end).
bool on_log_axis(double y) { return y > 0.0 && std::isfinite(y); }

struct Series {
  std::string name, color, dash;
  std::vector<std::pair<double, double>> pts;
};

void draw_panel(report::Svg& svg, double x0, double y0, double w, double h, const std::vector<double>& ns,
                const std::vector<Series>& series, const std::string& title, const std::string& ylabel) {
  double ylo = 0, yhi = 0;
  bool first = true;
  for (const Series& s : series) {
    for (auto [x, y] : s.pts) {
      if (!on_log_axis(y)) continue;
      ylo = first ? y : std::min(ylo, y);
      yhi = first ? y : std::max(yhi, y);
      first = false;
    }
  }
  const double nlo = ns.front(), nhi = ns.size() > 1 ? ns.back() : ns.front() * 2.0;
  const LogAxis xa{nlo, nhi, x0, x0 + w};
  const LogAxis ya = decade_axis(first ? 1e-3 : ylo, first ? 1.0 : yhi, y0 + h, y0);
  svg.rect(x0, y0, w, h, "#ffffff", R"(stroke="#888")");
  svg.text(x0 + w / 2, y0 - 10, title, 13, "middle", R"(font-weight="bold")");
  for (double d = ya.lo; d <= ya.hi * 1.0001; d *= 10.0) {
    const double y = ya.map(d);
    svg.line(x0, y, x0 + w, y, "#e4e4e4");
    svg.text(x0 - 6, y + 4, decade_label(d), 10, "end");
  }
  for (double n : ns) {
    const double x = xa.map(n);
    svg.line(x, y0, x, y0 + h, "#f0f0f0");
    svg.text(x, y0 + h + 14, size_label(n), 10, "middle");
  }
  svg.text(x0 + w / 2, y0 + h + 32, "N (tokens, log scale)", 11, "middle");
  svg.vtext(x0 - 44, y0 + h / 2, ylabel, 11);
  double ly = y0 + 14;
  for (const Series& s : series) {
    std::string d;
    for (auto [x, y] : s.pts) {
      if (!on_log_axis(y)) continue;
      d += (d.empty() ? "M" : " L") + report::num(xa.map(x)) + " " + report::num(ya.map(y));
    }
    if (d.empty()) continue;
    const std::string extra =
        R"(stroke=")" + s.color + R"(" stroke-width="2")" + (s.dash.empty() ? "" : R"( stroke-dasharray=")" + s.dash + "\"");
    svg.path(d, "none", extra);
    for (auto [x, y] : s.pts) {
      if (on_log_axis(y)) svg.rect(xa.map(x) - 2.5, ya.map(y) - 2.5, 5, 5, s.color);
    }
    svg.line(x0 + 10, ly - 4, x0 + 34, ly - 4, s.color, 2, s.dash.empty() ? "" : R"(stroke-dasharray=")" + s.dash + "\"");
    svg.text(x0 + 40, ly, s.name, 11);
    ly += 16;
  }
}

// The CSV columns, in order (format.hpp). A row names the cells it has; the rest are empty.
const std::vector<std::string> kCsvColumns{
    "table", "n", "kernel", "isa", "extrapolated", "median", "min", "max", "stddev", "unit", "samples", "gflops",
    "pct_of_peak", "edges_per_head", "edge_ratio", "speedup_vs_dense", "fast_vs_ref", "rounds", "speedup_rounds_min",
    "speedup_rounds_max", "fast_vs_ref_rounds_min", "fast_vs_ref_rounds_max", "threads_speedup",
    "threads_speedup_rounds_min", "threads_speedup_rounds_max"};
using CsvRow = std::map<std::string, std::string>;

// A timing record's median/min/max/stddev (keys median_<unit>, ...), its unit and sample count.
void add_timing(CsvRow& row, const Json& k, const std::string& unit, std::string samples) {
  for (const std::string stat : {"median", "min", "max", "stddev"}) {
    row[stat] = csv_num(num_at(k, (stat + "_" + unit).c_str()));
  }
  row["unit"] = unit;
  row["samples"] = std::move(samples);
}

// `<prefix>_min` and `<prefix>_max`: the range of an array of per-round ratios (nulls skipped).
void add_range(CsvRow& row, const std::string& prefix, const Json& values) {
  const auto [lo, hi] = number_range(values);
  row[prefix + "_min"] = csv_num(lo);
  row[prefix + "_max"] = csv_num(hi);
}

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  if (name == "md") return Format::kMarkdown;
  if (name == "csv") return Format::kCsv;
  throw_usage("--format: '" + name + "' is not one of text, json, md, csv");
}

std::string workload_words(const Json& r, bool every_field) {
  auto u = [](const Json& j, const char* k) {
    return j.is_object() && j.contains(k) && j[k].is_number_unsigned() ? std::to_string(j[k].get<std::uint64_t>())
                                                                       : std::string("?");
  };
  const Json& s = r.contains("shape") ? r["shape"] : Json::object();
  const Json& c = r.contains("config") && r["config"].is_object() ? r["config"] : Json::object();
  std::string w = "preset " + (r.contains("preset") && r["preset"].is_string() ? r["preset"].get<std::string>() : "?") +
                  " (q_heads " + u(s, "q_heads") + ", kv_heads " + u(s, "kv_heads") + ", dim " + u(s, "head_dim") +
                  ", window " + u(c, "window") + ", block " + u(c, "block_size");
  if (c.contains("globals") && (every_field || c["globals"] != Json::array({0}))) w += ", globals " + c["globals"].dump();
  if (c.contains("causal")) w += c["causal"] == true ? ", causal" : ", bidirectional";
  if (c.contains("log_stride") && c["log_stride"] == false) w += ", no log stride";
  else if (c.contains("log_stride") && every_field) w += ", log stride";
  if (c.contains("landmarks")) {
    const std::string mode = c.contains("landmark_mode") && c["landmark_mode"].is_string() ? c["landmark_mode"].get<std::string>() : "?";
    if (c["landmarks"] == false) w += ", no landmarks";
    else if (every_field || mode != "mean") w += ", landmarks " + mode;
  }
  return w + ")";
}

std::string format_text(const Json& r) {
  std::string s = "rvtemporal bench: " + title_line(r) + "\n";
  s += "machine: " + machine_line(r) + "\n";
  s += peak_line(r) + "\n";
  if (const std::string cpus = per_cpu_peak_line(r); !cpus.empty()) s += cpus + "\n";
  if (r["machine"]["build_type"] != "Release") s += "warning: not a Release build; timings are not representative\n";
  s += "\nprefill (forward), median of the timed runs:\n" + render_text(prefill_table(r));
  if (any_extrapolated(r)) s += "* dense not run above N=" + std::to_string(r["params"]["no_dense_above"].get<std::uint64_t>()) + ": extrapolated from the largest measured N's time per dense edge\n";
  s += fits_line(r) + "\n";
  if (!scaling_rows(r).empty()) s += "\n" + scaling_title(r) + ":\n" + render_text(scaling_table(r));
  if (r.contains("scaling") && r["scaling"]["note"].is_string()) s += "\n" + r["scaling"]["note"].get<std::string>() + "\n";
  if (!r["decode"]["rows"].empty()) {
    s += "\ndecode step (" + r["decode"]["kv_dtype"].get<std::string>() +
         " cache, median ns per token over the timed steps):\n" + render_text(decode_table(r));
  }
  s += "\npeak RSS " + mib(r["peak_rss_bytes"]) + ", wall " + fixed(r["wall_s"].get<double>(), 1) + " s\n";
  if (r.contains("plot") && r["plot"].is_string()) s += "plot: " + r["plot"].get<std::string>() + "\n";
  s += compare_text(r);
  return s;
}

std::string format_markdown(const Json& r) {
  std::string s = "### rvtemporal bench: " + title_line(r) + "\n\n";
  s += "- machine: " + machine_line(r) + "\n";
  s += "- " + peak_line(r) + "\n";
  if (const std::string cpus = per_cpu_peak_line(r); !cpus.empty()) s += "- " + cpus + "\n";
  s += "- " + fits_line(r) + "\n\n";
  s += render_markdown(prefill_table(r));
  if (any_extrapolated(r)) {
    s += "\n\\* dense not run above N=" + std::to_string(r["params"]["no_dense_above"].get<std::uint64_t>()) +
         ": extrapolated from the largest measured N's time per dense edge\n";
  }
  if (!scaling_rows(r).empty()) {
    std::string title = scaling_title(r);
    title[0] = 'T';
    s += "\n" + title + ":\n\n" + render_markdown(scaling_table(r));
  }
  if (!r["decode"]["rows"].empty()) {
    s += "\nDecode step (" + r["decode"]["kv_dtype"].get<std::string>() + " cache, median ns per token):\n\n" +
         render_markdown(decode_table(r));
  }
  s += "\nPeak RSS " + mib(r["peak_rss_bytes"]) + ", wall " + fixed(r["wall_s"].get<double>(), 1) + " s.\n";
  return s;
}

std::string format_csv(const Json& r) {
  std::string s;
  auto line = [&](auto&& cell) {
    for (std::size_t i = 0; i < kCsvColumns.size(); ++i) s += (i ? "," : "") + cell(kCsvColumns[i]);
    s += "\n";
  };
  line([](const std::string& column) { return column; });
  auto row = [&](const CsvRow& cells) {
    for (const auto& [column, value] : cells) {
      if (std::find(kCsvColumns.begin(), kCsvColumns.end(), column) == kCsvColumns.end()) {
        throw std::logic_error("format_csv: no column '" + column + "'");
      }
    }
    line([&](const std::string& column) {
      const auto it = cells.find(column);
      return it == cells.end() ? std::string() : it->second;
    });
  };
  // The prefill rows' rounds (BenchConfig::rounds); the sparse row also gives the range of
  // the rounds' own speedup and fast/ref, as the text table's round columns do.
  const std::string rounds = std::to_string(table_rounds(r));
  for (const Json& p : r["prefill"]) {
    for (const std::string kernel : {"dense", "sparse", "sparse_ref"}) {
      const Json& k = p[kernel];
      if (!k.is_object()) continue;
      CsvRow cells{{"table", "prefill"},
                   {"n", std::to_string(p["seq"].get<std::uint64_t>())},
                   {"kernel", kernel},
                   {"isa", k["isa"].get<std::string>()},
                   {"extrapolated", k.value("extrapolated", false) ? "true" : "false"},
                   {"gflops", csv_num(num_at(k, "gflops"))},
                   {"pct_of_peak", csv_num(num_at(k, "pct_of_peak"))},
                   {"edges_per_head", std::to_string(p["edges"][kernel == "dense" ? "dense_per_head" : "sparse_per_head"]
                                                         .get<std::uint64_t>())}};
      add_timing(cells, k, "ms", k.contains("samples_ms") ? std::to_string(k["samples_ms"].size()) : "0");
      if (k.value("attempted", true)) cells["rounds"] = rounds;  // dense not run: no rounds
      if (kernel == "sparse") {
        cells["edge_ratio"] = csv_num(num_at(p["edges"], "ratio"));
        cells["speedup_vs_dense"] = csv_num(num_at(p["speedup"], "measured"));
        cells["fast_vs_ref"] = csv_num(num_at(p, "fast_vs_ref"));
        add_range(cells, "speedup_rounds", p.value("round_speedups", Json::array()));
        add_range(cells, "fast_vs_ref_rounds", p.value("round_fast_vs_ref", Json::array()));
      }
      row(cells);
    }
  }
  // Thread scaling: kernel "dense@1" / "dense@T" (T the threads); the @T row gives the
  // speedup over one thread and the range of the rounds' own. Then one thread pinned to each
  // CPU: kernel "dense@cpu0", ...
  for (const Json& p : scaling_rows(r)) {
    const std::string t = std::to_string(r["scaling"]["threads"].get<unsigned>());
    auto timing_cells = [&](const std::string& kernel, const Json& k) {
      CsvRow cells{{"table", "scaling"},
                   {"n", std::to_string(p["seq"].get<std::uint64_t>())},
                   {"kernel", kernel},
                   {"isa", k["isa"].get<std::string>()},
                   {"extrapolated", "false"},
                   {"gflops", csv_num(num_at(k, "gflops"))},
                   {"pct_of_peak", csv_num(num_at(k, "pct_of_peak"))},
                   {"rounds", std::to_string(r["scaling"]["rounds"].get<std::uint64_t>())}};
      add_timing(cells, k, "ms", std::to_string(k["samples_ms"].size()));
      return cells;
    };
    for (const std::string kernel : {"dense", "sparse"}) {
      if (!p[kernel].is_object()) continue;
      for (const auto& [side, threads] : {std::pair{"one_thread", std::string("1")}, std::pair{"threads", t}}) {
        CsvRow cells = timing_cells(kernel + "@" + threads, p[kernel][side]);
        if (std::string(side) == "threads") {
          cells["threads_speedup"] = csv_num(num_at(p[kernel], "speedup"));
          add_range(cells, "threads_speedup_rounds", p[kernel].value("round_speedups", Json::array()));
        }
        row(cells);
      }
      for (const Json& k : p[kernel].value("one_thread_by_cpu", Json::array())) {
        row(timing_cells(kernel + "@cpu" + std::to_string(k["cpu"].get<int>()), k));
      }
      for (const Json& k : p[kernel].value("one_thread_concurrent_by_cpu", Json::array())) {
        row(timing_cells(kernel + "@cpu" + std::to_string(k["cpu"].get<int>()) + "/concurrent", k));
      }
    }
  }
  for (const Json& d : r["decode"]["rows"]) {
    for (const std::string kernel : {"sparse", "dense"}) {
      const Json& k = d[kernel];
      CsvRow cells{{"table", "decode"},
                   {"n", std::to_string(d["t"].get<std::uint64_t>())},
                   {"kernel", kernel},
                   {"isa", r["decode"][kernel + "_kernel"].get<std::string>()},
                   {"extrapolated", "false"}};
      add_timing(cells, k, "ns", std::to_string(k["steps"].get<std::uint64_t>()));
      if (k.contains("round_medians_ns")) cells["rounds"] = std::to_string(k["round_medians_ns"].size());
      if (kernel == "sparse") {
        if (k.contains("edges_last_step")) cells["edges_per_head"] = std::to_string(k["edges_last_step"].get<std::uint64_t>());
        cells["speedup_vs_dense"] = csv_num(num_at(d, "speedup"));
      }
      row(cells);
    }
  }
  return s;
}

std::string plot_svg(const Json& r) {
  std::vector<double> ns;
  Series dense{"dense (measured)", "#d62728", "", {}}, dense_x{"dense (extrapolated)", "#d62728", "6 4", {}},
      sparse{"sparse", "#1f77b4", "", {}}, ref{"sparse, scalar reference", "#7f7f7f", "2 3", {}};
  Series speed{"measured dense/sparse", "#2ca02c", "", {}}, speed_x{"measured (dense extrapolated)", "#2ca02c", "6 4", {}},
      ideal{"edge ratio (ideal)", "#444444", "2 3", {}};
  std::pair<double, double> last_dense{0, 0}, last_speed{0, 0};
  for (const Json& p : r["prefill"]) {
    const double n = p["seq"].get<double>();
    ns.push_back(n);
    const Json& d = p["dense"];
    if (auto v = num_at(d, "median_ms")) {
      if (d.value("extrapolated", false)) {
        if (dense_x.pts.empty() && last_dense.first > 0) dense_x.pts.push_back(last_dense);
        dense_x.pts.push_back({n, *v});
      } else {
        dense.pts.push_back({n, *v});
        last_dense = {n, *v};
      }
    }
    if (auto v = num_at(p["sparse"], "median_ms")) sparse.pts.push_back({n, *v});
    if (p["sparse_ref"].is_object()) {
      if (auto v = num_at(p["sparse_ref"], "median_ms")) ref.pts.push_back({n, *v});
    }
    if (auto v = num_at(p["speedup"], "measured")) {
      if (p["speedup"].value("extrapolated", false)) {
        if (speed_x.pts.empty() && last_speed.first > 0) speed_x.pts.push_back(last_speed);
        speed_x.pts.push_back({n, *v});
      } else {
        speed.pts.push_back({n, *v});
        last_speed = {n, *v};
      }
    }
    if (auto v = num_at(p["edges"], "ratio")) ideal.pts.push_back({n, *v});
  }
  report::Svg svg(1000, 440);
  svg.title("rvtemporal bench: " + title_line(r));
  svg.rect(0, 0, 1000, 440, "#fafafa");
  if (!ns.empty()) {
    draw_panel(svg, 80, 50, 380, 320, ns, {dense, dense_x, sparse, ref}, "prefill time vs N", "median time (ms, log)");
    draw_panel(svg, 590, 50, 380, 320, ns, {speed, speed_x, ideal}, "speedup vs N", "dense / sparse (log)");
  }
  svg.text(500, 430, title_line(r), 10, "middle", R"(fill="#555")");
  return svg.str();
}

}  // namespace rvt::bench
