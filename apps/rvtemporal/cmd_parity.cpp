// `rvtemporal parity`: accuracy suites with gates that CI can trust (docs/parity.md).
// Exit 0 when every gate passes, 1 when one fails (stderr names it and its worst element),
// 2/3/4 for usage, input and I/O errors.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "cli.hpp"
#include "attention_options.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/jobs/presets.hpp"
#include "rvt/parity/parity.hpp"

namespace rvt::cli {
namespace {

struct ParityOptions {
  AttentionOptions attention;
  std::string suite = "all";
  std::vector<std::string> gates;
  std::string gate_preset = "default";
  std::vector<std::string> sweep;
  std::string blob;
  std::string format;  // "" = md unless --json
  std::string plot_dir;
  unsigned threads = 0;
};

bool given(const ParityOptions& o, const std::string& name) { return cli::given(*o.attention.cmd, name); }

parity::Request make_request(const ParityOptions& o) {
  const AttentionOptions& a = o.attention;
  check_given_values(a);
  parity::Request r;
  r.suites = parity::parse_suites(o.suite);
  r.q_path = a.q;
  r.k_path = a.k;
  r.v_path = a.v;
  r.allow_nonfinite = a.allow_nonfinite;
  if (given(o, "--gen")) r.gen = parse_gen_kind(a.gen);
  r.seed = parse_u64(a.seed, "--seed");
  if (given(o, "--seq")) r.seq = a.seq;
  const jobs::Preset* p = a.preset.empty() ? nullptr : &jobs::find_preset(a.preset);
  auto pick = [&](const char* name, std::size_t value, std::size_t preset_value) -> std::optional<std::size_t> {
    if (given(o, name)) return value;
    if (p) return preset_value;
    return std::nullopt;
  };
  r.q_heads = pick("--q-heads", a.q_heads, p ? p->q_heads : 0);
  r.kv_heads = pick("--kv-heads", a.kv_heads, p ? p->kv_heads : 0);
  r.dim = pick("--dim", a.dim, p ? p->head_dim : 0);
  r.window = pick("--window", a.window, p ? p->window : 0);
  r.block = pick("--block", a.block, p ? p->block_size : 0);
  if (given(o, "--globals")) r.globals = parse_globals(a.globals);
  r.causal = a.causal;
  r.log_stride = !a.no_log_stride;
  r.landmarks = !a.no_landmarks;
  if (given(o, "--landmarks")) r.landmark_mode = attn::parse_landmark_mode(a.landmarks);
  r.preset = parity::parse_gate_preset(o.gate_preset);
  for (const std::string& g : o.gates) {
    for (parity::GateOverride& item : parity::parse_gates(g, parity::suite_names())) r.gates.push_back(item);
  }
  r.sweep = parity::parse_sweep(o.sweep);
  if (given(o, "--sweep") && r.sweep.empty()) throw_usage("--sweep: no axes given");
  r.blob_path = o.blob;
  r.threads = o.threads ? o.threads : default_threads();
  r.plot_dir = o.plot_dir;
  parity::validate(r);  // refusals first, then the warning below
  // Beside --q/--k/--v the generator options have no effect where every selected suite reads
  // the files; gqa generates its own inputs (--seed applies) and model its frames (--seq).
  if (std::all_of(r.suites.begin(), r.suites.end(), parity::suite_reads_inputs)) {
    warn_unused(unused_with_files(a, false), "parity");  // --gen with files: refused by validate
  }
  return r;
}

// Progress on stderr, for runs that take minutes (large --seq): on a terminal a status line
// naming the suite that runs, redrawn in place and cleared at the end, so that a failing
// gate's one-line error stands alone; with -v one line per finished suite (on a terminal or
// not); nothing with -q, nor without -v when stderr is not a terminal (scripts read the
// one-line error).
std::function<void(const parity::Progress&)> progress_printer() {
  const spdlog::level::level_enum level = spdlog::default_logger()->level();
  const bool tty = level < spdlog::level::err && isatty(fileno(stderr));
  const bool lines = level <= spdlog::level::info;
  if (!tty && !lines) return {};
  return [tty, lines](const parity::Progress& p) {
    if (tty) {
      if (p.done) std::fputs("\r\x1b[K", stderr);
      else std::fprintf(stderr, "\rparity: suite %zu/%zu: %s\x1b[K", p.index + 1, p.total, p.suite.c_str());
      std::fflush(stderr);
    }
    if (lines && p.done) {
      const std::size_t n = p.done->cases.size();
      spdlog::info("parity: suite {} ({}/{}): {}, {} case{}, {:.2f} s", p.suite, p.index + 1, p.total,
                   p.done->pass() ? "pass" : "FAIL", n, n == 1 ? "" : "s", p.done->wall_ms / 1000.0);
    }
  };
}

Outcome run_parity_cmd(const ParityOptions& o, Context& ctx) {
  if (o.format == "md" && ctx.json) {
    throw_usage("--format md and --json both want stdout; pick one");
  }
  parity::Request request = make_request(o);
  request.progress = progress_printer();
  const parity::Report report = parity::run_parity(request);
  Outcome out;
  out.result = report.json();
  out.text = report.markdown();
  if (const std::string plot_error = report.plot_error(); !plot_error.empty()) {
    out.code = ExitCode::kIo;  // decides over a failed gate, as an unwritable report does
    out.error = plot_error + (report.pass() ? "" : " (a gate failed too: " + report.failure_line() + ")");
  } else if (!report.pass()) {
    out.code = ExitCode::kCheckFailed;
    out.error = report.failure_line();
  }
  return out;
}

}  // namespace

void register_parity(CLI::App& root, Context& ctx) {
  auto o = std::make_shared<ParityOptions>();
  CLI::App* cmd = root.add_subcommand("parity", "Accuracy suites with gates: sparse vs dense, stream, GQA, kernels, model");
  add_attention_options(cmd, o->attention);
  // Each suite has its own input sizes and pattern; these options override them only when given.
  const char* own = " (default: each suite's own, docs/parity.md)";
  cmd->get_option("--gen")->description(std::string("Generate inputs: normal | uniform | sincos | structured") + own)->default_str("");
  for (const char* name : {"--seq", "--q-heads", "--kv-heads", "--dim", "--window", "--block", "--globals", "--landmarks"}) {
    CLI::Option* opt = cmd->get_option(name);
    opt->description(opt->get_description() + own)->default_str("");
  }
  std::string suites = "all";
  for (const std::string& name : parity::suite_names()) suites += " | " + name;
  cmd->add_option("--suite", o->suite, suites + " (or a comma-separated list)")
      ->capture_default_str();
  cmd->add_option("--gate", o->gates, "Gates, e.g. max_abs=1e-4,cosine=0.98 or stream.max_abs=1e-6 (metric=off drops one)")
      ->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--gate-preset", o->gate_preset, "Built-in gates: default | strict")->capture_default_str();
  cmd->add_option("--sweep", o->sweep, "Sweep grid, e.g. --sweep window=8,16,32,64 block=8,16,32 (also landmarks=, log_stride=)")
      ->expected(1, -1);
  cmd->add_option("--blob", o->blob, "RVNE blob for the model suite (default: the default random blob)");
  cmd->add_option("--format", o->format, "json | md (default: md on stdout, json with --json)")
      ->check(CLI::IsMember({"json", "md"}))
      ->each(json_on_stdout(ctx));
  cmd->add_option("--plot-dir", o->plot_dir, "Write SVG pictures here (created if missing, parent must exist)");
  cmd->add_option("--threads", o->threads, "Worker threads (default, or 0: all cores)")->check(threads_check());
  bind(cmd, ctx, "parity", [o, &ctx] { return run_parity_cmd(*o, ctx); });
}

}  // namespace rvt::cli
