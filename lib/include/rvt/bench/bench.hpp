// `rvtemporal bench`: prefill (forward) timings of dense vs sparse attention over a list of
// sequence lengths, the scalar reference sparse kernel beside the fast one, the core's FMA
// peak measured in the same run, thread scaling (one thread against several, alternating),
// decode-step latency against a prefilled KV cache, and the machine the numbers came from.
// One result schema (rvtemporal.bench/1); the CLI renders it as JSON, text, markdown or CSV
// (format.hpp) and compares it with a baseline (compare.hpp).
//
// Timing: each kernel call is timed whole with steady_clock (allocation of the output
// included, as a user of the API pays it), after `warmup` untimed calls; inputs are
// generated once per N (normal, fixed seed) outside the timed region. Dense above
// `no_dense_above` is never run: its time is the largest measured N's time per dense edge
// times the edges asked for, marked "extrapolated".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/core/error.hpp"
#include "rvt/kernels/isa.hpp"
#include "rvt/report/report.hpp"
#include "rvt/stream/kv_cache.hpp"

namespace rvt::bench {

inline constexpr const char* kBenchSchema = "rvtemporal.bench/1";

// Progress of a run: `done` of `total` stages finished; `label` says what runs next or
// what just finished ("N=4096 dense"). `n_done` is true once all stages of one
// N (or one decode T) are finished, with a one-line summary of it in `label`.
struct Progress {
  std::size_t done = 0, total = 0;
  std::string label;
  bool n_done = false;
};
using ProgressFn = std::function<void(const Progress&)>;

struct BenchConfig {
  std::string preset = "bench";  // recorded; shape and pattern below are what runs
  std::size_t q_heads = 4, kv_heads = 4, dim = 32;
  attn::SparseConfig sparse;
  std::vector<std::size_t> seqs{256, 512, 1024, 2048, 4096};
  std::size_t reps = 5, warmup = 1;
  // Prefill table: at each N the kernels (dense, sparse, the reference) take turns for
  // `rounds` rounds of `warmup` untimed and `reps` timed calls each, so a slow stretch of a
  // shared machine falls on all of them rather than on one; samples are pooled over the
  // rounds, and each round's speedup and fast/ref (ratios of its medians) are kept. The decode
  // table's two decoders take turns the same way, each round from a fresh cache.
  std::size_t rounds = 1;
  unsigned threads = 1;
  kernels::Isa isa = kernels::Isa::kAuto;
  std::vector<std::size_t> decode_at{1024, 4096, 16384};
  std::size_t decode_steps = 256;       // timed sparse decode steps at each T
  std::size_t dense_decode_steps = 64;  // timed dense (O(T) baseline) decode steps at each T
  stream::KvDType kv_dtype = stream::KvDType::kF32;  // the decode table's cache storage
  std::size_t no_dense_above = 65536;  // dense at N > this is extrapolated, never run
  bool reference = true;               // time the scalar reference sparse kernel too
  // Thread scaling: at each N here, dense (up to no_dense_above) and sparse on one thread and
  // on `threads`, timed in `scaling_rounds` rounds that alternate the two (`reps` calls each
  // per round), so that a slow stretch of a shared machine falls on both sides; speedup =
  // one-thread median / threaded median. Empty: no scaling table.
  std::vector<std::size_t> scaling_at;
  std::size_t scaling_rounds = 5;
  std::uint64_t seed = 0x5EED;
  double peak_seconds = 0.2;           // FMA peak probe duration
  ProgressFn progress;                 // optional

  void validate() const;  // throws rvt::Error(kUsage) naming the option
};

// The core's fp32 FMA peak for a resolved ISA, measured single-threaded: the kernel
// table's 12-chain FMA loop, iterations calibrated so the whole probe lasts `seconds`,
// split in 4 timed pieces of which the fastest counts (a busy machine slows some pieces;
// none can run faster than the hardware). Scalar has no SIMD table: valid = false.
struct FmaPeak {
  bool valid = false;
  kernels::Isa isa = kernels::Isa::kScalar;
  double gflops = 0.0;  // one core
  std::uint64_t iterations = 0;  // per timed piece
  int pieces = 0;                // timed pieces, the best counts
  double seconds = 0.0;          // total probe time
  std::string note;              // why it is not valid
};
FmaPeak measure_fma_peak(kernels::Isa resolved, double seconds = 0.2);

// Each CPU's FMA rate with every CPU busy at once: one thread pinned to each CPU this
// process may run on, all started together, each timing `pieces` runs of `iterations`
// (the best counts). A VM whose host takes time from some of its CPUs shows it here
// (on this project's 2-CPU VM one often ran 25-30% slower than the other for minutes),
// which is what the thread-scaling columns then show. Empty for an ISA without a probe.
struct CpuPeak {
  int cpu = -1;  // the CPU the thread was pinned to; -1 if pinning failed
  double gflops = 0.0;
};
std::vector<CpuPeak> measure_fma_per_cpu(kernels::Isa resolved, std::uint64_t iterations, int pieces = 4);

// CPU model and cpu_id (report::add_cpu), logical CPUs, the 1/5/15-minute load average at
// the start, the ISA and thread count, compiler, build type, git commit, UTC timestamp.
report::Json machine_json(kernels::Isa resolved, unsigned threads);

// The workload part of a result: {"preset", "shape", "config"}; what --compare checks a
// baseline against before anything runs.
report::Json workload_json(const BenchConfig& config);

// Runs the whole benchmark; returns the result object (schema above, documented in
// docs/performance.md).
report::Json run_bench(const BenchConfig& config);

// The whole `bench` command: run, then optionally write the SVG plot (atomically) and
// compare with a baseline. The baseline is read and checked for the same workload before
// anything runs (missing -> kIo, another workload -> kBadInput); a median beyond the
// tolerance -> code kCheckFailed with a one-line error naming N and kernel.
struct BenchRequest {
  BenchConfig config;
  std::string format = "text";  // text | json | md | csv (json: the CLI prints the envelope)
  std::string plot_path;
  std::string compare_path;
  double tolerance = 0.15;
  // Told machine_notice's line (compare.hpp), if any, once the baseline is read and before
  // the run: the baseline comes from another CPU, ISA or thread count.
  std::function<void(const std::string&)> notice;
};
struct BenchOutcome {
  ExitCode code = ExitCode::kOk;
  report::Json result;
  std::string text;   // in the requested format (empty for json)
  std::string error;  // one line when code is not kOk
};
BenchOutcome run_bench_job(const BenchRequest& request);

}  // namespace rvt::bench
