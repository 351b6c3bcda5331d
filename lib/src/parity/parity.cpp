// The parity driver: request checks, gate evaluation, running suites, and the report in
// JSON, markdown and one stderr line.
#include "rvt/parity/parity.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <set>

#include "rvt/core/error.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"
#include "rvt/jobs/inputs.hpp"
#include "rvt/kernels/isa.hpp"
#include "suites.hpp"

namespace rvt::parity {
namespace {

// Short numbers for tables: 3 significant digits.
std::string short_num(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  return format_double("%.3g", v);
}

const std::vector<std::string> kErrorMetrics{"max_abs", "mean_abs", "rmse", "rel_l1", "nmse", "cosine", "nonfinite"};

// Every suite: its name, what runs it, the metrics it reports beyond kErrorMetrics, and
// whether it reads --q/--k/--v. The one list the names, metrics and dispatch come from.
struct SuiteDef {
  const char* name;
  SuiteResult (*run)(const detail::Ctx&);
  const char* extra_metrics[2];  // null where fewer
  bool reads_inputs;
};
constexpr SuiteDef kSuites[] = {
    {"saturated", detail::suite_saturated, {}, true},
    {"realistic", detail::suite_realistic, {"sparsity"}, true},
    {"stream", detail::suite_stream, {}, true},
    {"gqa", detail::suite_gqa, {"mapping_errors"}, false},
    {"reference", detail::suite_reference, {}, true},
    {"model", detail::suite_model, {"top1", "spearman"}, false},
    {"landmarks", detail::suite_landmarks, {"sparsity"}, true},
    {"sweep", detail::suite_sweep, {"sparsity"}, true},
};

const SuiteDef* find_suite(const std::string& name) {
  for (const SuiteDef& s : kSuites) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::vector<std::string> split_items(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& raw : items) {
    std::string cur;
    for (char c : raw) {
      if (c == ';' || c == ' ' || c == '\t') {
        if (!cur.empty()) out.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

std::string gates_text(const Case& c, bool failures_only) {
  std::string t;
  for (const GateResult& g : c.gates) {
    if (failures_only && g.pass) continue;
    if (!t.empty()) t += " ";
    if (!g.pass) t += "**FAIL** ";
    t += g.metric + bound_op(g.op) + short_num(g.bound);
  }
  return t;
}

std::string failure_text(const std::string& suite, const Case& c, const GateResult& g) {
  // Six digits, or as many as it takes to tell the value from the bound ("cosine 0.99999999999999989 < 1").
  std::string value = "inf", bound = format_double("%g", g.bound);
  if (std::isnan(g.value)) value = "nan";
  if (std::isfinite(g.value)) value = format_double("%.6g", g.value);
  if (std::isfinite(g.value) && value == bound) {
    value = format_double("%.17g", g.value);
    bound = format_double("%.17g", g.bound);
  }
  return suite + "/" + c.name + ": " + g.metric + " " + value + (g.op == Bound::kUpper ? " > " : " < ") + bound +
         (c.worst.valid ? "; worst element " + metrics::element_text(c.worst) : "");
}

Json gate_json(const GateResult& g) {
  return Json{{"metric", g.metric},          {"op", bound_op(g.op)},   {"bound", g.bound},
              {"value", metrics::number_json(g.value)}, {"pass", g.pass}, {"source", g.user ? "user" : "default"}};
}

Json case_json(const Case& c) {
  Json j;
  j["name"] = c.name;
  j["pass"] = c.pass;
  j["gating"] = c.gating;
  j["config"] = c.config;
  Json m = Json::object();
  for (const auto& [name, value] : c.metrics) m[name] = metrics::number_json(value);
  j["metrics"] = m;
  Json gates = Json::array();
  for (const GateResult& g : c.gates) gates.push_back(gate_json(g));
  j["gates"] = gates;
  j["worst"] = metrics::element_json(c.worst);
  j["details"] = c.details;
  return j;
}

// Made if missing (its parent must exist) and tried with a temp file, before any suite runs.
void ensure_plot_dir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw_io("--plot-dir " + dir + ": exists and is not a directory");
  } else if (::mkdir(dir.c_str(), 0777) != 0) {
    throw_io("--plot-dir " + dir + ": cannot create directory: " + std::strerror(errno));
  }
  io::check_writable(dir + "/" + kPatternSvg);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Names and parsing

const std::vector<std::string>& suite_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all;
    for (const SuiteDef& s : kSuites) all.emplace_back(s.name);
    return all;
  }();
  return names;
}

std::vector<std::string> parse_suites(const std::string& text) {
  const std::vector<std::string>& all = suite_names();
  if (text == "all") return all;
  std::set<std::string> chosen;
  for (const std::string& item : split(text, ',')) {
    if (item == "all") {  // in a list too: "all,stream" is all of them
      chosen.insert(all.begin(), all.end());
      continue;
    }
    if (std::find(all.begin(), all.end(), item) == all.end()) {
      std::string names;
      for (const std::string& s : all) names += s + ", ";
      throw_usage("--suite: unknown suite '" + item + "' (suites: " + names + "all)");
    }
    chosen.insert(item);
  }
  std::vector<std::string> out;
  for (const std::string& s : all) {
    if (chosen.count(s)) out.push_back(s);
  }
  return out;
}

std::vector<std::string> suite_metrics(const std::string& suite) {
  const SuiteDef* def = find_suite(suite);
  if (!def) return {};
  std::vector<std::string> metrics = kErrorMetrics;
  for (const char* extra : def->extra_metrics) {
    if (extra) metrics.emplace_back(extra);
  }
  return metrics;
}

bool suite_reads_inputs(const std::string& suite) {
  const SuiteDef* def = find_suite(suite);
  return def && def->reads_inputs;
}

std::vector<SweepAxis> parse_sweep(const std::vector<std::string>& items) {
  std::vector<SweepAxis> axes;
  std::size_t settings = 1;
  for (const std::string& item : split_items(items)) {
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      throw_usage("--sweep: '" + item + "' is not key=v1,v2,... (e.g. window=8,16,32 block=8,16)");
    }
    SweepAxis a;
    a.key = item.substr(0, eq);
    if (a.key != "window" && a.key != "block" && a.key != "landmarks" && a.key != "log_stride") {
      throw_usage("--sweep: unknown key '" + a.key + "' (keys: window, block, landmarks, log_stride)");
    }
    for (const SweepAxis& b : axes) {
      if (b.key == a.key) throw_usage("--sweep: key '" + a.key + "' given twice");
    }
    for (const std::string& v : split(item.substr(eq + 1), ',')) {
      bool ok = false;
      if (a.key == "window" || a.key == "block") {
        ok = !v.empty() && v.size() <= 9 && v.find_first_not_of("0123456789") == std::string::npos &&
             (a.key == "window" || std::stoul(v) > 0);
      } else if (a.key == "landmarks") {
        ok = v == "mean" || v == "mass" || v == "off";
      } else {
        ok = v == "on" || v == "off";
      }
      if (!ok) throw_usage("--sweep: bad value '" + v + "' for " + a.key);
      if (std::find(a.values.begin(), a.values.end(), v) == a.values.end()) a.values.push_back(v);
    }
    settings *= a.values.size();
    if (settings > 256) throw_usage("--sweep: more than 256 settings");
    axes.push_back(a);
  }
  return axes;
}

// ---------------------------------------------------------------------------------------
// Cases and reports

void Case::set(const std::string& metric, double value) {
  for (auto& [key, v] : metrics) {
    if (key == metric) {
      v = value;
      return;
    }
  }
  metrics.emplace_back(metric, value);
}

std::optional<double> Case::get(const std::string& metric) const {
  for (const auto& [key, v] : metrics) {
    if (key == metric) return v;
  }
  return std::nullopt;
}

void Case::set_comparison(const metrics::Comparison& c, bool per_head) {
  for (const metrics::ErrorField& f : metrics::kErrorFields) set(f.name, c.*f.value);
  set("nonfinite", static_cast<double>(c.nonfinite()));
  worst = c.worst;
  details["compared"] = c.count;
  details["nonfinite_got"] = c.nonfinite_got;
  details["nonfinite_want"] = c.nonfinite_want;
  if (per_head) details["per_head"] = metrics::comparison_json(c, true)["per_head"];
}

bool SuiteResult::pass() const {
  return std::all_of(cases.begin(), cases.end(), [](const Case& c) { return !c.gating || c.pass; });
}

bool Report::pass() const {
  return std::all_of(suites.begin(), suites.end(), [](const SuiteResult& s) { return s.pass(); });
}

std::size_t Report::case_count() const {
  std::size_t n = 0;
  for (const SuiteResult& s : suites) n += s.cases.size();
  return n;
}

std::size_t Report::failed_count() const {
  std::size_t n = 0;
  for (const SuiteResult& s : suites)
    for (const Case& c : s.cases) n += (c.gating && !c.pass) ? 1 : 0;
  return n;
}

Json Report::json() const {
  Json j;
  j["schema"] = kParitySchema;
  j["pass"] = pass();
  j["gate_preset"] = gate_preset_name(preset);
  Json ug = Json::array();
  for (const GateOverride& g : user_gates) {
    ug.push_back(Json{{"suite", g.suite.empty() ? Json(nullptr) : Json(g.suite)},
                      {"metric", g.metric},
                      {"bound", g.bound ? Json(*g.bound) : Json("off")}});
  }
  j["user_gates"] = ug;
  j["isa"] = isa;
  j["threads"] = threads;
  Json names = Json::array();
  for (const SuiteResult& s : suites) names.push_back(s.name);
  j["suites_run"] = names;
  j["cases"] = case_count();
  j["failed_cases"] = failed_count();
  Json failures = Json::array();
  for (const SuiteResult& s : suites) {
    for (const Case& c : s.cases) {
      if (!c.gating) continue;
      for (const GateResult& g : c.gates) {
        if (g.pass) continue;
        Json f = gate_json(g);
        f["suite"] = s.name;
        f["case"] = c.name;
        f["worst"] = metrics::element_json(c.worst);
        failures.push_back(f);
      }
    }
  }
  j["failures"] = failures;
  Json suites_json = Json::array();
  for (const SuiteResult& s : suites) {
    Json sj;
    sj["name"] = s.name;
    sj["pass"] = s.pass();
    sj["wall_ms"] = s.wall_ms;
    Json cases = Json::array();
    for (const Case& c : s.cases) cases.push_back(case_json(c));
    sj["cases"] = cases;
    sj["table"] = s.table;
    sj["notes"] = s.notes;
    sj["plots"] = s.plots;
    sj["plot_errors"] = s.plot_errors;
    suites_json.push_back(sj);
  }
  j["suites"] = suites_json;
  j["plots"] = plots;
  j["wall_ms"] = wall_ms;
  return j;
}

std::string Report::plot_error() const {
  for (const SuiteResult& s : suites) {
    if (!s.plot_errors.empty()) return s.plot_errors.front();
  }
  return "";
}

std::string Report::markdown() const {
  std::string md = std::string("## rvtemporal parity: ") + (pass() ? "PASS" : "FAIL") + "\n\n";
  md += "gate preset `" + std::string(gate_preset_name(preset)) + "`, isa `" + isa + "`, " + std::to_string(threads) +
        " threads, " + std::to_string(suites.size()) + " suites, " + std::to_string(case_count()) + " cases, " +
        std::to_string(failed_count()) + " failed, " + format_double("%.2f", wall_ms / 1000.0) + " s\n\n";
  md += "| suite | case | result | max_abs | rel_l1 | cosine | other | gates |\n";
  md += "|---|---|---|---|---|---|---|---|\n";
  for (const SuiteResult& s : suites) {
    for (const Case& c : s.cases) {
      if (!c.gating) continue;  // the sweep's rows are in the sweep table
      std::string other;
      for (const auto& [name, value] : c.metrics) {
        if (std::find(kErrorMetrics.begin(), kErrorMetrics.end(), name) != kErrorMetrics.end()) continue;
        other += (other.empty() ? "" : ", ") + name + " " + short_num(value);
      }
      auto m = [&](const char* name) { return c.get(name) ? short_num(*c.get(name)) : std::string("-"); };
      md += "| " + s.name + " | " + c.name + " | " + (c.pass ? "pass" : "**FAIL**") + " | " + m("max_abs") + " | " +
            m("rel_l1") + " | " + m("cosine") + " | " + other + " | " + gates_text(c, false) + " |\n";
    }
  }
  for (const SuiteResult& s : suites) {
    if (s.name == "landmarks" && s.table.is_array()) {
      md += "\n### landmarks: compat `mean` vs `mass` against dense\n\n";
      md += "| N | sparsity mean | sparsity mass | rel_l1 mean | rel_l1 mass | cosine mean | cosine mass | closer |\n";
      md += "|---|---|---|---|---|---|---|---|\n";
      for (const Json& r : s.table) {
        auto v = [&](const char* k) { return r[k].is_number() ? short_num(r[k].get<double>()) : std::string("-"); };
        md += "| " + std::to_string(r["seq"].get<std::size_t>()) + " | " + v("sparsity_mean") + " | " +
              v("sparsity_mass") + " | " + v("rel_l1_mean") + " | " + v("rel_l1_mass") + " | " + v("cosine_mean") +
              " | " + v("cosine_mass") + " | " + r["closer"].get<std::string>() + " |\n";
      }
    }
    if (s.name == "sweep" && s.table.is_array()) {
      md += "\n### sweep: accuracy vs sparsity\n\n";
      md += "| setting | sparsity | edges/head | cosine | rel_l1 | max_abs | time ms | gates | best |\n";
      md += "|---|---|---|---|---|---|---|---|---|\n";
      for (const Json& r : s.table) {
        auto v = [&](const char* k) { return r[k].is_number() ? short_num(r[k].get<double>()) : std::string("-"); };
        md += "| " + r["setting"].get<std::string>() + " | " + v("sparsity") + " | " +
              std::to_string(r["edges_per_head"].get<std::uint64_t>()) + " | " + v("cosine") + " | " + v("rel_l1") +
              " | " + v("max_abs") + " | " + format_double("%.2f", r["time_ms"].get<double>()) + " | " +
              (r["pass"].get<bool>() ? "pass" : "fail") + " | " + (r["best"].get<bool>() ? "**best**" : "") + " |\n";
      }
    }
  }
  bool any_notes = false;
  for (const SuiteResult& s : suites) {
    for (const std::string& n : s.notes) {
      if (!any_notes) md += "\nNotes:\n";
      any_notes = true;
      md += "- " + s.name + ": " + n + "\n";
    }
  }
  for (const std::string& p : plots) md += (p == plots.front() ? "\nPictures:\n" : "") + std::string("- ") + p + "\n";
  for (const SuiteResult& s : suites) {
    for (const Case& c : s.cases) {
      if (c.gating && !c.pass && c.worst.valid) {
        md += "\nWorst element of " + s.name + "/" + c.name + ": " + metrics::element_text(c.worst) + "\n";
      }
    }
  }
  return md;
}

std::string Report::failure_line() const {
  std::size_t failed_gates = 0;
  std::string first;
  for (const SuiteResult& s : suites) {
    for (const Case& c : s.cases) {
      if (!c.gating) continue;
      for (const GateResult& g : c.gates) {
        if (g.pass) continue;
        if (failed_gates++ == 0) first = failure_text(s.name, c, g);
      }
    }
  }
  if (failed_gates == 0) return "";
  return "parity: " + std::to_string(failed_gates) + " gate" + (failed_gates == 1 ? "" : "s") + " failed; " +
         (failed_gates == 1 ? "" : "first: ") + first;
}

// ---------------------------------------------------------------------------------------
// Running

void validate(const Request& r) {
  if (r.suites.empty()) throw_usage("--suite: no suite selected");
  auto selected = [&](const std::string& s) { return std::find(r.suites.begin(), r.suites.end(), s) != r.suites.end(); };
  for (const GateOverride& g : r.gates) {
    const std::string item = (g.suite.empty() ? "" : g.suite + ".") + g.metric;
    if (!g.suite.empty()) {
      if (!selected(g.suite)) throw_usage("--gate " + item + ": suite " + g.suite + " is not selected");
      const auto m = suite_metrics(g.suite);
      if (std::find(m.begin(), m.end(), g.metric) == m.end()) {
        throw_usage("--gate " + item + ": suite " + g.suite + " does not report " + g.metric);
      }
      continue;
    }
    bool reported = false;
    for (const std::string& s : r.suites) {
      const auto m = suite_metrics(s);
      reported = reported || std::find(m.begin(), m.end(), g.metric) != m.end();
    }
    if (!reported) throw_usage("--gate " + item + ": no selected suite reports " + g.metric);
  }
  if (!r.sweep.empty() && !selected("sweep")) throw_usage("--sweep needs --suite sweep (or all)");
  if (!r.blob_path.empty() && !selected("model")) throw_usage("--blob needs --suite model (or all)");
  if (!r.plot_dir.empty() && !selected("realistic") && !selected("sweep")) {
    throw_usage("--plot-dir: the pictures come from the realistic and sweep suites; select one of them");
  }
  if (r.from_files() && (r.q_path.empty() || r.k_path.empty() || r.v_path.empty())) {
    throw_usage("--q, --k and --v must be given together");
  }
  if (r.from_files() && r.gen) throw_usage("--gen and --q/--k/--v are exclusive");
  if (r.from_files() && std::none_of(r.suites.begin(), r.suites.end(), suite_reads_inputs)) {
    std::vector<std::string> readers;
    std::copy_if(suite_names().begin(), suite_names().end(), std::back_inserter(readers), suite_reads_inputs);
    std::string names;
    for (std::size_t i = 0; i < readers.size(); ++i) {
      names += (i == 0 ? "" : i + 1 == readers.size() ? " and " : ", ") + readers[i];
    }
    throw_usage("--q/--k/--v: no selected suite reads them (" + names + " do)");
  }
  if (r.threads == 0) throw_usage("--threads must be > 0");
  // Sizes given as options are checked whichever suites run, those with sizes of their own too
  // (the model suite once read --seq 0 as "no frames", exit 3; gqa took 4 q heads over 8 kv).
  if (r.seq && *r.seq == 0) throw_usage("parity: --seq must be > 0 (no positions to compare)");
  for (const auto& [name, value] :
       {std::pair{"--q-heads", r.q_heads}, {"--kv-heads", r.kv_heads}, {"--dim", r.dim}, {"--block", r.block}}) {
    if (value && *value == 0) throw_usage(std::string(name) + " must be > 0");
  }
  if (r.q_heads && r.kv_heads) attn::check_gqa_options(*r.q_heads, *r.kv_heads);
}

SuiteResult run_suite(const std::string& name, const Request& request) {
  detail::Ctx ctx{request, name, attn::ExecOptions{request.threads, kernels::Isa::kAuto}};
  const auto start = Clock::now();
  SuiteResult r;
  const SuiteDef* def = find_suite(name);
  if (!def) throw_usage("unknown suite '" + name + "'");
  r = def->run(ctx);
  r.name = name;
  r.wall_ms = ms_since(start);
  return r;
}

Report run_parity(const Request& request) {
  validate(request);
  if (!request.plot_dir.empty()) ensure_plot_dir(request.plot_dir);
  const auto start = Clock::now();
  Report rep;
  rep.preset = request.preset;
  rep.user_gates = request.gates;
  rep.isa = kernels::isa_name(kernels::resolve_isa(kernels::Isa::kAuto));
  rep.threads = request.threads;
  for (std::size_t i = 0; i < request.suites.size(); ++i) {
    const std::string& name = request.suites[i];
    if (request.progress) request.progress(Progress{i, request.suites.size(), name, nullptr});
    rep.suites.push_back(run_suite(name, request));
    for (const std::string& p : rep.suites.back().plots) rep.plots.push_back(p);
    if (request.progress) request.progress(Progress{i, request.suites.size(), name, &rep.suites.back()});
  }
  rep.wall_ms = ms_since(start);
  return rep;
}

// ---------------------------------------------------------------------------------------
// Shared by the suites

namespace detail {

void Ctx::evaluate(Case& c) const {
  // Built-in gates, then the user's items (a later item replaces an earlier one).
  std::vector<std::pair<Gate, bool>> gates;  // gate, from the user
  for (const Gate& g : c.defaults) gates.emplace_back(g, false);
  for (const GateOverride& o : req.gates) {
    if (!o.suite.empty() && o.suite != suite) continue;
    gates.erase(std::remove_if(gates.begin(), gates.end(), [&](const auto& x) { return x.first.metric == o.metric; }),
                gates.end());
    if (o.bound) gates.emplace_back(Gate{o.metric, *o.bound}, true);
  }
  c.gates.clear();
  c.pass = true;
  for (const auto& [g, user] : gates) {
    const std::optional<double> value = c.get(g.metric);
    if (!value) continue;  // this case does not report the metric
    const MetricInfo* info = find_metric(g.metric);
    GateResult r;
    r.metric = g.metric;
    r.op = info ? info->bound : Bound::kUpper;
    r.bound = g.bound;
    r.value = *value;
    r.pass = gate_passes(r.op, r.value, r.bound);
    r.user = user;
    c.pass = c.pass && r.pass;
    c.gates.push_back(r);
  }
}

Inputs load_inputs(const Ctx& ctx, GenKind gen, std::size_t seq, std::size_t q_heads, std::size_t kv_heads,
                   std::size_t dim) {
  const Request& r = ctx.req;
  jobs::InputSpec spec;
  spec.q_path = r.q_path;
  spec.k_path = r.k_path;
  spec.v_path = r.v_path;
  spec.allow_nonfinite = r.allow_nonfinite;
  spec.gen = r.gen.value_or(gen);
  spec.seed = r.seed;
  spec.seq = r.seq.value_or(seq);
  spec.q_heads = r.q_heads.value_or(q_heads);
  spec.kv_heads = r.kv_heads.value_or(kv_heads);
  spec.dim = r.dim.value_or(dim);
  if (!spec.from_files()) {
    // validate() refused a zero size given; here one head count given against the suite's other.
    attn::check_gqa_options(spec.q_heads, spec.kv_heads);
  }
  Inputs in;
  in.x = jobs::load_inputs(spec, r.threads);
  const attn::AttentionShape s = attn::check_qkv(in.x.q, in.x.k, in.x.v);
  if (s.seq == 0) throw_bad_input("parity: the inputs hold no positions (seq 0)");
  in.json = jobs::inputs_json(spec, in.x);
  return in;
}

attn::SparseConfig pattern(const Ctx& ctx, std::size_t window, std::size_t block) {
  const Request& r = ctx.req;
  attn::SparseConfig c;
  c.window = r.window.value_or(window);
  c.block_size = r.block.value_or(block);
  c.globals = r.globals.value_or(std::vector<std::size_t>{0});
  c.causal = r.causal;
  c.log_stride = r.log_stride;
  c.landmarks = r.landmarks;
  c.landmark_mode = r.landmark_mode.value_or(attn::LandmarkMode::kMean);
  c.validate();
  return c;
}

void write_plot(const Ctx& ctx, SuiteResult& suite, const std::string& file, const std::string& svg) {
  const std::string path = ctx.req.plot_dir + "/" + file;
  try {  // a picture that fails (a full disk) costs the picture, not the suites' results
    io::write_file_atomic(path, svg);
    suite.plots.push_back(path);
  } catch (const Error& e) {
    suite.plot_errors.push_back(e.what());
  }
}

}  // namespace detail
}  // namespace rvt::parity
