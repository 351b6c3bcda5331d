// `parity`: accuracy suites that CI can gate on (docs/parity.md).
//
// A suite runs one or more cases. A case compares an output with a reference (sparse vs
// dense, streamed vs forward, SIMD vs scalar, GQA vs repeated MHA, f32 vs f64, ...) with the
// metrics module, and checks its gates: the suite's built-in bounds for the chosen preset,
// with the user's --gate items on top. The report passes when every gating case passes.
// Informational cases (the sweep grid's rows) carry gates too, but only the sweep's
// summary case decides: a sweep passes when at least one setting passes its gates.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/metrics/metrics.hpp"
#include "rvt/parity/gates.hpp"
#include "rvt/report/report.hpp"
#include "rvt/tensor/generate.hpp"

namespace rvt::parity {

// The pictures --plot-dir receives: realistic writes the first three, sweep the last.
inline constexpr const char* kPatternSvg = "pattern.svg";
inline constexpr const char* kAttentionMapsSvg = "attention_maps.svg";
inline constexpr const char* kErrorHeatmapSvg = "error_heatmap.svg";
inline constexpr const char* kSweepSvg = "sweep.svg";
inline constexpr std::array<const char*, 4> kPlotFiles{kPatternSvg, kAttentionMapsSvg, kErrorHeatmapSvg, kSweepSvg};

using report::Json;

inline constexpr const char* kParitySchema = "rvtemporal.parity/1";

// saturated, realistic, stream, gqa, reference, model, landmarks, sweep (run in this order).
const std::vector<std::string>& suite_names();
// "all" or a comma-separated list of suite names; throws kUsage. Order follows suite_names().
std::vector<std::string> parse_suites(const std::string& text);
// The gateable metrics each suite reports.
std::vector<std::string> suite_metrics(const std::string& suite);
// Whether a suite runs on --q/--k/--v when they are given (gqa and model use shapes of their own).
bool suite_reads_inputs(const std::string& suite);

// One axis of the --sweep grid: window | block (integers), landmarks (mean|mass|off),
// log_stride (on|off).
struct SweepAxis {
  std::string key;
  std::vector<std::string> values;
};
// Each item is "key=v1,v2,..."; items may also be separated by ';' or spaces inside one
// string. Throws kUsage on unknown keys or values, repeated keys, or more than 256 settings.
std::vector<SweepAxis> parse_sweep(const std::vector<std::string>& items);

struct SuiteResult;

// Where a run stands: suite `index` (0-based) of `total` is about to run (`done` null), or
// has just run (`done` its result). Long runs (model and reference suites over large --seq)
// take minutes; the CLI shows this on stderr.
struct Progress {
  std::size_t index = 0, total = 0;
  std::string suite;
  const SuiteResult* done = nullptr;
};

struct Request {
  std::vector<std::string> suites;  // from parse_suites

  // Inputs: .npy files (all three) or a generator. Unset values take each suite's default.
  std::string q_path, k_path, v_path;
  bool allow_nonfinite = false;  // let NaN/inf in the files through (the nonfinite gate then fails)
  std::optional<GenKind> gen;
  std::uint64_t seed = 0x5EED;
  std::optional<std::size_t> seq, q_heads, kv_heads, dim;

  // Sparse pattern; unset values take each suite's default.
  std::optional<std::size_t> window, block;
  std::optional<std::vector<std::size_t>> globals;
  bool causal = true;
  bool log_stride = true;
  bool landmarks = true;
  std::optional<attn::LandmarkMode> landmark_mode;

  GatePreset preset = GatePreset::kDefault;
  std::vector<GateOverride> gates;
  std::vector<SweepAxis> sweep;  // empty: the default grid window=8,16,32,64 block=8,16,32
  std::string blob_path;         // model suite; empty: the default random blob
  unsigned threads = 1;
  std::string plot_dir;          // empty: no pictures (kPlotFiles)
  std::function<void(const Progress&)> progress;  // optional: before and after each suite

  bool from_files() const { return !q_path.empty() || !k_path.empty() || !v_path.empty(); }
};

struct Case {
  std::string name;
  Json config = Json::object();
  std::vector<std::pair<std::string, double>> metrics;  // gateable values, in report order
  std::vector<Gate> defaults;                            // built-in gates of the preset
  std::vector<GateResult> gates;                         // after evaluate()
  metrics::Element worst;
  Json details = Json::object();
  bool gating = true;
  bool pass = true;

  void set(const std::string& metric, double value);
  std::optional<double> get(const std::string& metric) const;
  // The standard error metrics of a comparison (+ nonfinite), worst element and per head.
  void set_comparison(const metrics::Comparison& c, bool per_head = true);
};

struct SuiteResult {
  std::string name;
  std::vector<Case> cases;
  Json table = nullptr;  // landmarks and sweep: their summary rows
  std::vector<std::string> notes;
  std::vector<std::string> plots;  // pictures written by this suite
  std::vector<std::string> plot_errors;  // pictures that could not be written (a full disk): io, exit 4
  double wall_ms = 0.0;

  bool pass() const;
};

struct Report {
  std::vector<SuiteResult> suites;
  std::vector<std::string> plots;  // files written under plot_dir
  GatePreset preset = GatePreset::kDefault;
  std::vector<GateOverride> user_gates;
  std::string isa;  // the kernels kAuto resolves to
  unsigned threads = 1;
  double wall_ms = 0.0;

  bool pass() const;
  std::size_t case_count() const;
  std::size_t failed_count() const;  // failed gating cases
  Json json() const;
  std::string markdown() const;
  // One line for stderr naming the first failing suite/case/gate and its worst element;
  // empty when everything passed.
  std::string failure_line() const;
  // The first picture that could not be written, or "": the run's results stand, its exit code is io.
  std::string plot_error() const;
};

// Checks the request (gates against the selected suites' metrics, sweep only with the
// sweep suite, ...): throws kUsage. run_parity calls it first.
void validate(const Request& request);

// Runs every requested suite (and writes the pictures if plot_dir is set).
Report run_parity(const Request& request);
// One suite, gates evaluated; used by run_parity and the tests.
SuiteResult run_suite(const std::string& name, const Request& request);

}  // namespace rvt::parity
