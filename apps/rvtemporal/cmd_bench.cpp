// `rvtemporal bench`: dense vs sparse prefill timings over a list of N, the scalar
// reference beside the fast kernel, the core's FMA peak, thread scaling, decode-step
// latency, and a comparison with a saved report. The work is rvt::bench::run_bench_job.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "cli.hpp"
#include "attention_options.hpp"
#include "rvt/bench/bench.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/jobs/inputs.hpp"
#include "rvt/jobs/presets.hpp"

namespace rvt::cli {
namespace {

struct BenchOptions : PatternOptions {
  const CLI::App* cmd = nullptr;
  std::string preset = "bench";
  std::size_t q_heads = 0, kv_heads = 0, dim = 0, window = 0, block = 0;  // the preset's unless given
  std::string seq = "256,512,1024,2048,4096";
  std::size_t reps = 5, warmup = 1, rounds = 1;
  unsigned threads = 0;
  std::string decode_at = "1024,4096,16384";
  std::string scaling_at = "none";
  std::size_t scaling_rounds = 5;
  std::size_t decode_steps = 256, dense_decode_steps = 64;
  std::string kv_dtype = "f32";
  std::string format = "text";
  std::string plot, compare;
  double tolerance = 0.15;
  std::size_t no_dense_above = 65536;
  bool no_reference = false;
  std::string seed = "0x5EED";
};

// Progress on stderr: a bar redrawn in place on a terminal, one line per finished N
// (or decode T) otherwise; nothing with -q.
bench::ProgressFn progress_printer() {
  if (spdlog::default_logger()->level() >= spdlog::level::err) return {};
  if (isatty(fileno(stderr))) {
    return [](const bench::Progress& p) {
      if (p.n_done) return;
      const int width = 30;
      const int filled = p.total ? static_cast<int>(width * p.done / p.total) : 0;
      // \x1b[K clears what a longer label drawn before left on the line.
      std::fprintf(stderr, "\r[%s%s] %3d%% %s\x1b[K", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
                   p.total ? static_cast<int>(100 * p.done / p.total) : 0, p.label.c_str());
      if (p.done == p.total) std::fputc('\n', stderr);
      std::fflush(stderr);
    };
  }
  return [](const bench::Progress& p) {
    if (p.n_done) std::fprintf(stderr, "bench: %s\n", p.label.c_str());
  };
}

Outcome run_bench_cmd(const BenchOptions& o, Context& ctx) {
  const jobs::Preset& p = jobs::find_preset(o.preset);
  bench::BenchRequest req;
  bench::BenchConfig& c = req.config;
  c.preset = o.preset;
  // A value given, 0 included, is the user's: 0 heads, dim or block is refused (validate),
  // window 0 runs without the local window, as in forward.
  c.q_heads = given_or(*o.cmd, "--q-heads", o.q_heads, p.q_heads);
  c.kv_heads = given_or(*o.cmd, "--kv-heads", o.kv_heads, p.kv_heads);
  c.dim = given_or(*o.cmd, "--dim", o.dim, p.head_dim);
  c.sparse = attn::SparseConfig{};
  c.sparse.window = given_or(*o.cmd, "--window", o.window, p.window);
  c.sparse.block_size = given_or(*o.cmd, "--block", o.block, p.block_size);
  apply_pattern_options(o, c.sparse);
  c.seqs = jobs::parse_index_list(o.seq, "--seq");
  c.reps = o.reps;
  c.rounds = o.rounds;
  c.warmup = o.warmup;
  c.threads = o.threads ? o.threads : default_threads();
  c.isa = kernels::Isa::kAuto;  // the global --isa (or RVT_ISA), as the report's host.isa says
  c.decode_at = (o.decode_at == "none") ? std::vector<std::size_t>{} : jobs::parse_index_list(o.decode_at, "--decode-at");
  c.scaling_at = (o.scaling_at == "none") ? std::vector<std::size_t>{} : jobs::parse_index_list(o.scaling_at, "--scaling-at");
  c.scaling_rounds = o.scaling_rounds;
  c.decode_steps = o.decode_steps;
  c.dense_decode_steps = o.dense_decode_steps;
  c.kv_dtype = stream::parse_kv_dtype(o.kv_dtype);
  c.no_dense_above = o.no_dense_above;
  c.reference = !o.no_reference;
  c.seed = parse_u64(o.seed, "--seed");
  c.progress = progress_printer();
  req.format = o.format;
  req.plot_path = o.plot;
  req.compare_path = o.compare;
  req.tolerance = o.tolerance;
  req.notice = warn_notice("bench");
  if (ctx.json && (o.format == "md" || o.format == "csv")) {
    throw_usage("--format " + o.format + " and --json both want stdout; pick one");
  }
  bench::BenchOutcome r = bench::run_bench_job(req);
  return Outcome{r.code, std::move(r.result), std::move(r.text), std::move(r.error)};
}

}  // namespace

void register_bench(CLI::App& root, Context& ctx) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = root.add_subcommand("bench", "Time dense vs sparse attention (prefill and decode) on this machine");
  o->cmd = cmd;
  cmd->add_option("--preset", o->preset, jobs::preset_names(" | ") + ": heads, dim, window, block")
      ->capture_default_str();
  cmd->add_option("--q-heads", o->q_heads, "Query heads (default: the preset's)")->check(count_check());
  cmd->add_option("--kv-heads", o->kv_heads, "Key/value heads (default: the preset's)")->check(count_check());
  cmd->add_option("--dim", o->dim, "Head dimension (default: the preset's)")->check(count_check());
  cmd->add_option("--window", o->window, "Local window W (default: the preset's)")->check(count_check());
  cmd->add_option("--block", o->block, "Landmark block size B (default: the preset's)")->check(count_check());
  add_pattern_options(cmd, *o);
  cmd->add_option("--seq", o->seq, "Sequence lengths N, comma-separated")->capture_default_str();
  cmd->add_option("--reps", o->reps, "Timed runs per kernel and N")->check(count_check())->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed runs before them")->check(count_check())->capture_default_str();
  cmd->add_option("--rounds", o->rounds, "Rounds in which each N's kernels take turns (--warmup, then --reps calls each), and each T's decoders")
      ->check(count_check())->capture_default_str();
  cmd->add_option("--threads", o->threads, "Worker threads (default, or 0: all cores)")->check(threads_check());
  cmd->add_option("--decode-at", o->decode_at, "Decode cache lengths T, comma-separated ('none': no decode table)")
      ->capture_default_str();
  cmd->add_option("--scaling-at", o->scaling_at,
                  "Sequence lengths N for a thread-scaling table, 1 against --threads, alternating ('none': no table)")
      ->capture_default_str();
  cmd->add_option("--scaling-rounds", o->scaling_rounds, "Alternating rounds of --reps calls per side for --scaling-at")
      ->check(count_check())->capture_default_str();
  cmd->add_option("--decode-steps", o->decode_steps, "Timed sparse decode steps at each T (the last at T)")
      ->check(count_check())->capture_default_str();
  cmd->add_option("--kv-dtype", o->kv_dtype, "f32 | f16 storage of the decode table's KV cache")->capture_default_str();
  cmd->add_option("--dense-decode-steps", o->dense_decode_steps, "Timed dense (O(T) baseline) decode steps at each T")
      ->check(count_check())->capture_default_str();
  cmd->add_option("--format", o->format, "text | json | md | csv on stdout")
      ->check(CLI::IsMember({"text", "json", "md", "csv"}))
      ->each(json_on_stdout(ctx))
      ->capture_default_str();
  cmd->add_option("--plot", o->plot, "Write an SVG of time vs N (log-log) and speedup vs N to FILE");
  cmd->add_option("--compare", o->compare, "Compare the medians with a saved `bench --json` report");
  cmd->add_option("--tolerance", o->tolerance, "Allowed slowdown before --compare fails (0.15 = 15%)")
      ->capture_default_str();
  cmd->add_option("--no-dense-above", o->no_dense_above, "Never run dense above this N: extrapolate it")
      ->check(count_check())->capture_default_str();
  cmd->add_flag("--no-reference", o->no_reference, "Skip the scalar reference sparse kernel");
  cmd->add_option("--seed", o->seed, "Input generator seed")->capture_default_str();
  bind(cmd, ctx, "bench", [o, &ctx] { return run_bench_cmd(*o, ctx); });
}

}  // namespace rvt::cli
