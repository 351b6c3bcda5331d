// `bench --compare BASELINE.json`: the ratio of every median of this run to the same
// median in a saved report, and the verdict for CI.
//
// A baseline is a previous `bench --json` (or --out-report) envelope, or its bare
// "result" object. It must describe the same workload: preset, heads, dim and the sparse
// pattern (window, block, globals, causal, log stride, landmarks). Medians are matched by
// (table, size, kernel): prefill dense / sparse / sparse_ref at each N and decode sparse /
// dense at each T present in both; extrapolated dense values are never compared. A
// median regresses when current / baseline > 1 + tolerance. The machine each side ran on
// is reported beside the ratios; another CPU, ISA or thread count is a warning, not a
// failure (a CI runner may change under a kept baseline: say so, let the job decide).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rvt/report/report.hpp"

namespace rvt::bench {

// Reads a baseline file: missing or unreadable -> rvt::Error(kIo); not JSON or not a
// bench report -> rvt::Error(kBadInput). Returns the bench result object.
report::Json load_baseline(const std::string& path);

// Whether `baseline` (a bench result) was measured on the machine and settings of this run
// (`current_machine`: a result's "machine" block): the same CPU (model string and, where both
// record it, cpu_id), ISA and thread count. nullopt where the baseline does not record
// enough to tell: no machine block, or no cpu_id while everything else matches.
std::optional<bool> same_machine(const report::Json& current_machine, const report::Json& baseline);

// A machine block in words: "AMD EPYC (AuthenticAMD family 25 model 17 stepping 1), avx512, 2 threads".
std::string describe_machine(const report::Json& machine);

// One line for stderr when same_machine is false, naming both machines; "" otherwise. The
// medians' ratios then mix the machines with the code (on this project's VM the host changed
// between sessions and the one-core FMA peak halved).
std::string machine_notice(const report::Json& current_machine, const report::Json& baseline,
                           const std::string& baseline_name);

// Throws rvt::Error(kBadInput) when `baseline` was measured on a different preset, shape
// or sparse pattern than `current` (both bench result objects, or a current result made
// only of "preset", "shape" and "config"), naming both sides.
void check_comparable(const report::Json& current, const report::Json& baseline, const std::string& baseline_name);

// Throws rvt::Error(kBadInput) when `baseline` has a median at none of the sizes a run will
// measure (prefill N in `seqs`, decode T in `decode_at`): checked before the timing starts.
void check_common_sizes(const report::Json& baseline, const std::vector<std::size_t>& seqs,
                        const std::vector<std::size_t>& decode_at, const std::string& baseline_name);

struct CompareEntry {
  std::string table;   // "prefill" | "decode"
  std::size_t n = 0;   // N or T
  std::string kernel;  // dense | sparse | sparse_ref
  double current = 0.0, baseline = 0.0, ratio = 0.0;  // medians (ms or ns), current / baseline
  bool regressed = false;
};

struct CompareResult {
  std::string baseline_name;
  double tolerance = 0.15;
  std::vector<CompareEntry> entries;
  std::vector<std::string> unmatched;  // "prefill N=64 sparse" measured now but absent from the baseline
  // Where each side ran (describe_machine, "" where a report has no machine block), whether
  // that is the same (same_machine), and this run's one-core FMA peak over the baseline's.
  std::string machine, baseline_machine;
  std::optional<bool> same_machine;
  std::optional<double> fma_peak_ratio;
  std::size_t regressions() const;
  // One line for stderr naming the worst regression (N and kernel) and how many more; "" if none.
  std::string failure_message() const;
  report::Json json() const;
};

// Compares every median present in both results (check_comparable first). Throws
// rvt::Error(kBadInput) when no median can be matched at all; kUsage for a negative
// tolerance.
CompareResult compare_results(const report::Json& current, const report::Json& baseline, double tolerance,
                              const std::string& baseline_name = "baseline");

}  // namespace rvt::bench
