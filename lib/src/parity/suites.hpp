// Internal to the parity module: what every suite gets, and the suites themselves.
#pragma once

#include <chrono>

#include "rvt/core/clock.hpp"
#include "rvt/attention/attention.hpp"
#include "rvt/parity/parity.hpp"

namespace rvt::parity::detail {

struct Ctx {
  const Request& req;
  std::string suite;
  attn::ExecOptions exec;  // threads, kAuto

  // The preset's value: `def` for default, `strict` for strict.
  double by_preset(double def, double strict) const { return req.preset == GatePreset::kStrict ? strict : def; }
  // Merges the case's built-in gates with the user's items for this suite, evaluates them
  // and sets c.pass. Gates on metrics the case does not report are skipped.
  void evaluate(Case& c) const;
};

// Inputs of an attention suite: the user's files, or the generator with the user's values
// and the suite's defaults for the rest.
struct Inputs {
  Qkv x;
  Json json;
};
Inputs load_inputs(const Ctx& ctx, GenKind gen, std::size_t seq, std::size_t q_heads, std::size_t kv_heads,
                   std::size_t dim);
// The user's pattern values with the suite's default window and block.
attn::SparseConfig pattern(const Ctx& ctx, std::size_t window, std::size_t block);


// Writes an SVG under req.plot_dir (atomically) and records it in the suite.
void write_plot(const Ctx& ctx, SuiteResult& suite, const std::string& file, const std::string& svg);

SuiteResult suite_saturated(const Ctx& ctx);
SuiteResult suite_realistic(const Ctx& ctx);
SuiteResult suite_stream(const Ctx& ctx);
SuiteResult suite_gqa(const Ctx& ctx);
SuiteResult suite_reference(const Ctx& ctx);
SuiteResult suite_model(const Ctx& ctx);
SuiteResult suite_landmarks(const Ctx& ctx);
SuiteResult suite_sweep(const Ctx& ctx);

}  // namespace rvt::parity::detail
