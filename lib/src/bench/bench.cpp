#include "rvt/bench/bench.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <thread>

#include "rvt/attention/attention.hpp"
#include "rvt/attention/pattern.hpp"
#include "rvt/bench/compare.hpp"
#include "rvt/bench/format.hpp"
#include "rvt/bench/stats.hpp"
#include "rvt/core/build_info.hpp"
#include "rvt/core/clock.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/core/spin.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"
#include "rvt/jobs/forward.hpp"
#include "rvt/kernels/fast.hpp"
#include "rvt/stream/decoder.hpp"
#include "rvt/stream/kv_cache.hpp"
#include "rvt/tensor/generate.hpp"

namespace rvt::bench {
namespace {

using report::Json;
// Keeps a result alive past the timed call so the compiler cannot drop the work. One per
// thread: the one-thread calls on every CPU at once (time_concurrent) write it together.
thread_local volatile float g_sink = 0.0f;

// One call of fn (returning a Tensor), its result kept: its time in ms.
template <typename Fn>
double call_ms(Fn&& fn) {
  const auto start = Clock::now();
  const Tensor out = fn();
  const auto stop = Clock::now();
  g_sink = g_sink + (out.empty() ? 0.0f : out.data()[0]);
  return ms_between(start, stop);
}

template <typename Fn>
std::vector<double> time_ms(std::size_t warmup, std::size_t reps, Fn&& fn) {
  for (std::size_t i = 0; i < warmup; ++i) call_ms(fn);
  std::vector<double> samples;
  samples.reserve(reps);
  for (std::size_t i = 0; i < reps; ++i) samples.push_back(call_ms(fn));
  return samples;
}

Json nullable(double value, bool valid) { return valid ? Json(value) : Json(nullptr); }

// The samples and their statistics, keys suffixed with the unit: median_ms ... samples_ms.
void put_samples(Json& j, const std::vector<double>& samples, const SampleStats& s, const std::string& unit) {
  j["median_" + unit] = s.median;
  j["min_" + unit] = s.min;
  j["max_" + unit] = s.max;
  j["mean_" + unit] = s.mean;
  j["stddev_" + unit] = s.stddev;
  j["samples_" + unit] = samples;
}

// One kernel's timing record at one N.
Json kernel_json(kernels::Isa isa, const std::vector<double>& samples_ms, double flops, double peak_gflops) {
  const SampleStats s = sample_stats(samples_ms);
  const double g = gflops(flops, s.median);
  Json j;
  j["isa"] = kernels::isa_name(isa);
  j["attempted"] = true;
  j["extrapolated"] = false;
  put_samples(j, samples_ms, s, "ms");
  j["flops"] = flops;
  j["gflops"] = g;
  j["pct_of_peak"] = nullable(100.0 * g / peak_gflops, peak_gflops > 0.0);
  return j;
}

Json fit_json(const PowerFit& f) {
  Json j;
  j["valid"] = f.valid;
  j["points"] = f.points;
  j["exponent"] = nullable(f.exponent, f.valid);
  j["coefficient_ms"] = nullable(f.coefficient, f.valid);
  j["r2"] = nullable(f.r2, f.valid);
  return j;
}

PowerFit fit_column(const Json& rows, const char* kernel) {
  std::vector<double> x, y;
  for (const Json& r : rows) {
    if (!r.contains(kernel)) continue;
    const Json& k = r[kernel];
    if (k.is_object() && k.value("attempted", false) && k["median_ms"].is_number()) {
      x.push_back(r["seq"].get<double>());
      y.push_back(k["median_ms"].get<double>());
    }
  }
  return fit_loglog(x, y);
}

template <typename Decoder>
std::vector<double> time_steps(Decoder& dec, const Qkv& x, std::size_t first, std::size_t last, Tensor& out) {
  std::vector<double> samples;
  samples.reserve(last - first);
  for (std::size_t t = first; t < last; ++t) {
    const auto start = Clock::now();
    dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.data());
    const auto stop = Clock::now();
    samples.push_back(ns_between(start, stop));
  }
  g_sink = g_sink + out.data()[0];
  return samples;
}

// The progress label's " (round k of R)", empty with one round.
std::string round_of(std::size_t round, std::size_t rounds) {
  return rounds > 1 ? " (round " + std::to_string(round) + " of " + std::to_string(rounds) + ")" : "";
}

Json decode_kernel_json(const std::vector<double>& samples_ns, const char* kernel) {
  const SampleStats s = sample_stats(samples_ns);
  Json j;
  j["kernel"] = kernel;
  j["steps"] = s.count;
  put_samples(j, samples_ns, s, "ns");
  return j;
}

// Per-CPU one-thread calls (scaling_kernel_json) only where the process may use at most this
// many CPUs (a small VM, or a run limited with taskset): on a large machine they would
// multiply the table's time.
constexpr std::size_t kMaxCpusTimedAlone = 8;
// One-thread calls on every CPU at once (time_concurrent) only up to this much input a copy.
constexpr std::size_t kMaxCopiedInputBytes = std::size_t{1} << 30;

// Pins the calling thread to one CPU while alive, then gives it back the CPUs it had.
class PinnedTo {
 public:
  explicit PinnedTo(int cpu) {
    CPU_ZERO(&before_);
    restore_ = pthread_getaffinity_np(pthread_self(), sizeof before_, &before_) == 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
  }
  ~PinnedTo() {
    if (restore_) pthread_setaffinity_np(pthread_self(), sizeof before_, &before_);
  }
  PinnedTo(const PinnedTo&) = delete;
  PinnedTo& operator=(const PinnedTo&) = delete;
  bool pinned() const { return pinned_; }

 private:
  cpu_set_t before_;
  bool restore_ = false, pinned_ = false;
};

// Lets `count` threads start each timed call together; a thread that fails gives up the
// line, and the others stop waiting at it.
class StartLine {
 public:
  explicit StartLine(unsigned count) : count_(count) {}
  // Returns once every thread has arrived (true), or once one has given up (false).
  bool arrive() {
    const std::uint64_t generation = generation_.load();
    if (arrived_.fetch_add(1) + 1 == count_) {
      arrived_.store(0);
      generation_.fetch_add(1);
    }
    spin_until([&] { return generation_.load() != generation || given_up_.load(); }, std::chrono::hours(24));
    return !given_up_.load();
  }
  void give_up() { given_up_.store(true); }

 private:
  const unsigned count_;
  std::atomic<unsigned> arrived_{0};
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> given_up_{false};
};

// The kernel call bench times for thread scaling: call(threads, inputs).
using ScalingCall = std::function<Tensor(unsigned, const Qkv&)>;

// `reps` one-thread calls on every CPU of `cpus` at once, the one on CPU i over inputs[i]: a
// thread pinned to each (the caller takes the first), all starting call k together after one
// untimed call each. Each CPU's samples; `pinned` is false if a thread could not be pinned.
std::vector<std::vector<double>> time_concurrent(std::size_t reps, const std::vector<int>& cpus,
                                                 const std::vector<Qkv>& inputs, const ScalingCall& call, bool& pinned) {
  std::vector<std::vector<double>> samples(cpus.size());
  std::vector<std::exception_ptr> errors(cpus.size());
  std::vector<char> was_pinned(cpus.size(), 0);
  StartLine line(static_cast<unsigned>(cpus.size()));
  auto copy = [&](std::size_t i) {
    try {
      const PinnedTo pin(cpus[i]);
      was_pinned[i] = pin.pinned();
      for (std::size_t r = 0; r <= reps && line.arrive(); ++r) {
        const double ms = call_ms([&] { return call(1, inputs[i]); });
        if (r > 0) samples[i].push_back(ms);
      }
    } catch (...) {
      errors[i] = std::current_exception();
      line.give_up();
    }
  };
  std::vector<std::thread> others = start_threads(1, cpus.size(), copy, [&line] { line.give_up(); });
  copy(0);
  for (auto& t : others) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  pinned = pinned && std::all_of(was_pinned.begin(), was_pinned.end(), [](char p) { return p != 0; });
  return samples;
}

// What one call per CPU, at these medians, gets done together over one call taking `one_ms`:
// one_ms x the sum of their rates.
double throughput_over(double one_ms, const std::vector<double>& medians_ms) {
  double rate_sum = 0.0;
  for (double m : medians_ms) rate_sum += 1.0 / m;
  return one_ms * rate_sum;
}

std::vector<double> medians_of(const std::vector<std::vector<double>>& samples) {
  std::vector<double> m;
  for (const auto& s : samples) m.push_back(sample_stats(s).median);
  return m;
}

// One kernel's thread scaling at one N (BenchConfig::scaling_at): rounds of `reps` calls on
// one thread then `reps` on c.threads, warmed up before the first round; per side the
// pooled samples, and each round's ratio of medians (their spread shows how steady the
// machine was). Each round also times `reps` one-thread calls pinned to each of `cpus`
// (every CPU the process may use, if at most kMaxCpusTimedAlone), first one CPU at a time,
// then, where there is a CPU per thread and `inputs` holds a copy for each, on all of them at
// once (time_concurrent).
// - "balanced_bound": on a VM one CPU can run a memory-bound kernel 1.3 - 1.5x slower than
//   the other for seconds while the FMA probe finds both alike (2026-11-29). This is what a
//   perfectly balanced call would reach over the fastest CPU alone if each thread ran at its
//   CPU's one-thread speed: that time x the sum of every CPU's rate.
// - "concurrent_bound": what the one-thread calls running at once on every CPU get done
//   together, over one call alone (the one-thread median x the sum of their rates), and the
//   same per round. It counts what the CPUs share: caches, memory, and on a VM a physical core
//   (two threads have run dense, all FMAs, at 1.09x for seconds, 2026-11-29) -- what the
//   machine gave independent copies of this kernel, beside what the threaded call got.
// Neither is a hard cap: T threads also have T cores' caches (sparse at N = 4096 has scaled
// 2.05x beside a balanced bound of 1.73x).
Json scaling_kernel_json(const BenchConfig& c, kernels::Isa isa, double flops, double peak_one,
                         const std::vector<int>& cpus, const std::vector<Qkv>& inputs, const ScalingCall& kernel) {
  const bool cpu_per_thread = cpus.size() == c.threads, at_once = cpu_per_thread && inputs.size() == cpus.size();
  auto call = [&](unsigned threads) { return kernel(threads, inputs[0]); };
  std::vector<double> one, many, rounds, concurrent_rounds;
  std::vector<std::vector<double>> by_cpu(cpus.size()), concurrent(at_once ? cpus.size() : 0);
  bool all_pinned = !cpus.empty();
  for (std::size_t r = 0; r < c.scaling_rounds; ++r) {
    const std::size_t warmup = r == 0 ? c.warmup : 0;
    const std::vector<double> a = time_ms(warmup, c.reps, [&] { return call(1); });
    const std::vector<double> b = time_ms(warmup, c.reps, [&] { return call(c.threads); });
    one.insert(one.end(), a.begin(), a.end());
    many.insert(many.end(), b.begin(), b.end());
    rounds.push_back(sample_stats(a).median / sample_stats(b).median);
    for (std::size_t i = 0; i < cpus.size(); ++i) {
      const PinnedTo pin(cpus[i]);
      all_pinned = all_pinned && pin.pinned();
      const std::vector<double> t = time_ms(0, c.reps, [&] { return call(1); });
      by_cpu[i].insert(by_cpu[i].end(), t.begin(), t.end());
    }
    if (at_once) {
      const std::vector<std::vector<double>> t = time_concurrent(c.reps, cpus, inputs, kernel, all_pinned);
      for (std::size_t i = 0; i < cpus.size(); ++i) concurrent[i].insert(concurrent[i].end(), t[i].begin(), t[i].end());
      concurrent_rounds.push_back(throughput_over(sample_stats(a).median, medians_of(t)));
    }
  }
  Json j;
  j["one_thread"] = kernel_json(isa, one, flops, peak_one);
  j["threads"] = kernel_json(isa, many, flops, peak_one * c.threads);
  j["speedup"] = sample_stats(one).median / sample_stats(many).median;
  j["round_speedups"] = rounds;
  // Per CPU: a timing record with its `cpu` (-1 where pinning failed).
  auto per_cpu = [&](const std::vector<std::vector<double>>& samples) {
    Json list = Json::array();
    for (std::size_t i = 0; i < samples.size(); ++i) {
      Json k = kernel_json(isa, samples[i], flops, peak_one);
      k["cpu"] = all_pinned ? cpus[i] : -1;
      list.push_back(std::move(k));
    }
    return list;
  };
  const std::vector<double> alone = medians_of(by_cpu);
  j["one_thread_by_cpu"] = per_cpu(by_cpu);
  j["one_thread_concurrent_by_cpu"] = per_cpu(concurrent);
  // The bounds only where the call's threads can have a CPU each, and each CPU was really pinned.
  j["balanced_bound"] = nullable(
      alone.empty() ? 0.0 : throughput_over(*std::min_element(alone.begin(), alone.end()), alone), all_pinned && cpu_per_thread);
  j["concurrent_bound"] = nullable(
      concurrent.empty() ? 0.0 : throughput_over(sample_stats(one).median, medians_of(concurrent)), all_pinned && at_once);
  j["round_concurrent_bounds"] = all_pinned && at_once ? Json(concurrent_rounds) : Json::array();
  return j;
}

}  // namespace

void BenchConfig::validate() const {
  if (seqs.empty()) throw_usage("--seq: give at least one sequence length");
  for (std::size_t n : seqs) {
    if (n == 0) throw_usage("--seq: sequence lengths must be > 0");
  }
  for (std::size_t t : decode_at) {
    if (t == 0) throw_usage("--decode-at: cache lengths must be > 0");
  }
  if (reps == 0) throw_usage("--reps must be > 0");
  if (rounds == 0) throw_usage("--rounds must be > 0");
  if (threads == 0) throw_usage("--threads must be > 0");
  for (std::size_t n : scaling_at) {
    if (n == 0) throw_usage("--scaling-at: sequence lengths must be > 0");
  }
  if (scaling_rounds == 0) throw_usage("--scaling-rounds must be > 0");
  if (decode_steps == 0) throw_usage("--decode-steps must be > 0");
  if (dense_decode_steps == 0) throw_usage("--dense-decode-steps must be > 0");
  if (q_heads == 0 || kv_heads == 0 || dim == 0) throw_usage("--q-heads, --kv-heads and --dim must be > 0");
  attn::check_gqa_options(q_heads, kv_heads);
  sparse.validate();
}

namespace {

// The fastest of `pieces` timed runs of the FMA loop, in GFLOP/s: a busy machine can slow a
// piece, nothing makes one faster than the hardware.
double best_piece_gflops(const kernels::KernelTable& table, std::uint64_t iterations, int pieces) {
  double best = 0.0;
  for (int i = 0; i < pieces; ++i) {
    const auto start = Clock::now();
    const double flops = table.fma_peak_work(iterations);
    best = std::max(best, gflops(flops, ms_between(start, Clock::now())));
  }
  return best;
}

}  // namespace

FmaPeak measure_fma_peak(kernels::Isa resolved, double seconds) {
  FmaPeak p;
  p.isa = resolved;
  const kernels::KernelTable* table = kernels::kernel_table(resolved);
  if (table == nullptr || table->fma_peak_work == nullptr) {
    p.note = std::string("no SIMD FMA probe for isa ") + kernels::isa_name(resolved);
    return p;
  }
  // Calibrate: double the iterations until one call takes >= 10 ms.
  std::uint64_t iters = 1u << 14;
  double ms = 0.0;
  const auto probe_start = Clock::now();
  for (;;) {
    const auto start = Clock::now();
    g_sink = g_sink + static_cast<float>(table->fma_peak_work(iters));
    ms = ms_between(start, Clock::now());
    if (ms >= 10.0 || iters >= (std::uint64_t{1} << 40)) break;
    iters *= 2;
  }
  constexpr int kPieces = 4;
  const double piece_ms = std::max(1.0, seconds * 1000.0 / kPieces);
  p.iterations = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(iters) * piece_ms / ms));
  p.pieces = kPieces;
  p.gflops = best_piece_gflops(*table, p.iterations, kPieces);
  p.seconds = ms_between(probe_start, Clock::now()) / 1000.0;
  p.valid = p.gflops > 0.0;
  return p;
}

std::vector<CpuPeak> measure_fma_per_cpu(kernels::Isa resolved, std::uint64_t iterations, int pieces) {
  const kernels::KernelTable* table = kernels::kernel_table(resolved);
  if (table == nullptr || table->fma_peak_work == nullptr || iterations == 0) return {};
  std::vector<int> cpus = allowed_cpus();
  if (cpus.empty()) cpus.push_back(-1);
  std::vector<CpuPeak> peaks(cpus.size());
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> abandoned{false};  // a thread could not be started: the others stop waiting
  auto probe = [&](std::size_t i) {
    CpuPeak& p = peaks[i];
    std::optional<PinnedTo> pin;  // for the whole probe; -1: the affinity could not be read
    if (cpus[i] >= 0) pin.emplace(cpus[i]);
    p.cpu = pin && pin->pinned() ? cpus[i] : -1;
    ready.fetch_add(1);
    while (ready.load() < cpus.size() && !abandoned.load()) std::this_thread::yield();  // all start together
    if (!abandoned.load()) p.gflops = best_piece_gflops(*table, iterations, pieces);
  };
  for (auto& t : start_threads(0, cpus.size(), probe, [&abandoned] { abandoned.store(true); })) t.join();
  return peaks;
}

Json machine_json(kernels::Isa resolved, unsigned threads) {
  const BuildInfo& b = build_info();
  Json j;
  report::add_cpu(j);
  j["logical_cpus"] = std::max(1u, std::thread::hardware_concurrency());
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) {
    j["loadavg"] = Json::array({load[0], load[1], load[2]});
  } else {
    j["loadavg"] = nullptr;
  }
  j["isa"] = kernels::isa_name(resolved);
  j["isa_best"] = kernels::isa_name(kernels::best_isa());
  j["threads"] = threads;
  j["compiler"] = b.compiler;
  j["build_type"] = b.build_type;
  j["git_commit"] = b.git_commit;
  j["version"] = b.version;
  j["timestamp_utc"] = report::utc_timestamp();
  return j;
}

Json workload_json(const BenchConfig& c) {
  Json j;
  j["preset"] = c.preset;
  j["shape"] = Json{{"q_heads", c.q_heads}, {"kv_heads", c.kv_heads}, {"head_dim", c.dim}};
  j["config"] = jobs::sparse_config_json(c.sparse);
  return j;
}

// The report's "fma_peak": the one-core probe, the reference %peak divides by (threads x
// one core), then every CPU busy at once.
Json fma_peak_json(kernels::Isa isa, unsigned threads, double seconds) {
  const FmaPeak peak = measure_fma_peak(isa, seconds);
  Json pj;
  pj["isa"] = kernels::isa_name(isa);
  pj["valid"] = peak.valid;
  pj["single_core_gflops"] = nullable(peak.gflops, peak.valid);
  pj["threads"] = threads;
  pj["reference_gflops"] = nullable(peak.gflops * threads, peak.valid);  // what pct_of_peak divides by
  pj["iterations_per_piece"] = peak.iterations;
  pj["pieces"] = peak.pieces;
  pj["seconds"] = peak.seconds;
  pj["note"] = peak.valid ? Json(nullptr) : Json(peak.note);
  Json per_cpu = Json::array();
  for (const CpuPeak& cp : measure_fma_per_cpu(isa, peak.valid ? peak.iterations : 0, peak.pieces)) {
    per_cpu.push_back(Json{{"cpu", cp.cpu}, {"gflops", cp.gflops}});
  }
  pj["per_cpu_all_busy"] = per_cpu;
  return pj;
}

namespace {

// `c` with its size lists sorted and without repeats; a --scaling-at size too large fails
// here, not after the other tables.
BenchConfig normalized(const BenchConfig& config_in) {
  BenchConfig c = config_in;
  c.validate();
  for (std::vector<std::size_t>* list : {&c.seqs, &c.decode_at, &c.scaling_at}) {
    std::sort(list->begin(), list->end());
    list->erase(std::unique(list->begin(), list->end()), list->end());
  }
  for (std::size_t n : c.scaling_at) checked_numel({n, std::max(c.q_heads, c.kv_heads), c.dim}, "--scaling-at");
  return c;
}

// One thread against one thread would measure nothing.
bool runs_scaling(const BenchConfig& c) { return c.threads > 1; }

// The run's stages, counted for BenchConfig::progress.
class Stages {
 public:
  explicit Stages(const BenchConfig& c) : callback_(c.progress) {
    prog_.total = 1 + c.rounds * c.decode_at.size();
    for (std::size_t n : c.seqs) prog_.total += c.rounds * (1 + (n <= c.no_dense_above ? 1 : 0) + (c.reference ? 1 : 0));
    if (runs_scaling(c)) {
      for (std::size_t n : c.scaling_at) prog_.total += 1 + (n <= c.no_dense_above ? 1 : 0);
    }
  }
  void starting(const std::string& label) { report(label, false); }
  void done(const std::string& label) {
    ++prog_.done;
    report(label, false);
  }
  void summary(const std::string& line) { report(line, true); }  // one N or T finished

 private:
  void report(const std::string& label, bool n_done) {
    prog_.label = label;
    prog_.n_done = n_done;
    if (callback_) callback_(prog_);
  }
  ProgressFn callback_;
  Progress prog_;
};

Json params_json(const BenchConfig& c) {
  return Json{{"seqs", c.seqs},
              {"reps", c.reps},
              {"warmup", c.warmup},
              {"rounds", c.rounds},
              {"threads", c.threads},
              {"isa_requested", kernels::isa_name(c.isa)},
              {"decode_at", c.decode_at},
              {"decode_steps", c.decode_steps},
              {"dense_decode_steps", c.dense_decode_steps},
              {"kv_dtype", stream::kv_dtype_name(c.kv_dtype)},
              {"no_dense_above", c.no_dense_above},
              {"scaling_at", c.scaling_at},
              {"scaling_rounds", c.scaling_rounds},
              {"reference", c.reference},
              {"gen", "normal"},
              {"seed", hex64(c.seed)}};
}

// The prefill table: per N, the kernels taking turns round by round (BenchConfig::rounds),
// without the speedups (add_speedups). peak_ref: the GFLOP/s that pct_of_peak divides by.
Json prefill_rows(const BenchConfig& c, kernels::Isa isa, double peak_ref, Stages& stages) {
  // Generated inputs are finite: no scan for non-finite values, as in `forward`, which
  // checks its inputs once when it reads or makes them.
  const attn::ExecOptions fast{c.threads, isa, true};
  const attn::ExecOptions scalar{c.threads, kernels::Isa::kScalar};
  Json rows = Json::array();
  for (std::size_t n : c.seqs) {
    const Qkv x = generate_qkv(GenKind::kNormal, n, c.q_heads, c.kv_heads, c.dim, c.seed, c.threads);
    const std::uint64_t dense_edges = attn::dense_edges_per_head(n, c.sparse.causal);
    const std::uint64_t sparse_edges = attn::sparse_edges_per_head(n, c.sparse);
    const double dense_flops = attention_flops(dense_edges, c.q_heads, c.dim);
    const double sparse_flops = attention_flops(sparse_edges, c.q_heads, c.dim);
    const std::string at = "N=" + std::to_string(n);

    Json r;
    r["seq"] = n;
    r["edges"] = Json{{"dense_per_head", dense_edges},
                      {"sparse_per_head", sparse_edges},
                      {"ratio", sparse_edges ? static_cast<double>(dense_edges) / static_cast<double>(sparse_edges)
                                             : 0.0}};
    // The kernels take turns, round by round (BenchConfig::rounds).
    const bool run_dense = n <= c.no_dense_above;
    std::vector<double> dense_ms, sparse_ms, ref_ms;
    Json round_speedups = Json::array(), round_fast_vs_ref = Json::array();
    auto timed = [&](std::vector<double>& pooled, const std::string& label, auto&& call) {
      stages.starting(label);
      std::vector<double> samples = time_ms(c.warmup, c.reps, call);
      pooled.insert(pooled.end(), samples.begin(), samples.end());
      stages.done(label);
      return sample_stats(samples).median;
    };
    for (std::size_t round = 1; round <= c.rounds; ++round) {
      const std::string of = round_of(round, c.rounds);
      const double dense = run_dense ? timed(dense_ms, at + " dense" + of, [&] {
        return attn::dense_attention(x.q, x.k, x.v, c.sparse.causal, fast);
      }) : 0.0;
      const double sparse =
          timed(sparse_ms, at + " sparse" + of, [&] { return attn::sparse_attention(x.q, x.k, x.v, c.sparse, fast); });
      // The scalar reference has no FMA peak of its own: no pct_of_peak.
      const double ref = c.reference ? timed(ref_ms, at + " sparse reference" + of, [&] {
        return attn::sparse_attention(x.q, x.k, x.v, c.sparse, scalar);
      }) : 0.0;
      if (run_dense) round_speedups.push_back(nullable(dense / sparse, sparse > 0.0));
      if (c.reference) round_fast_vs_ref.push_back(nullable(ref / sparse, sparse > 0.0));
    }
    if (run_dense) {
      r["dense"] = kernel_json(isa, dense_ms, dense_flops, peak_ref);
    } else {
      r["dense"] = Json{{"isa", kernels::isa_name(isa)}, {"attempted", false}, {"extrapolated", false},
                        {"median_ms", nullptr}, {"flops", dense_flops}};
    }
    r["sparse"] = kernel_json(isa, sparse_ms, sparse_flops, peak_ref);
    r["sparse_ref"] = c.reference ? kernel_json(kernels::Isa::kScalar, ref_ms, sparse_flops, 0.0) : Json(nullptr);
    r["round_speedups"] = round_speedups;
    r["round_fast_vs_ref"] = round_fast_vs_ref;
    r["peak_rss_bytes"] = peak_rss_bytes();
    rows.push_back(std::move(r));

    const Json& last = rows.back();
    std::string line = at + ": sparse " + format_double("%.3f ms", last["sparse"]["median_ms"].get<double>());
    if (last["dense"]["attempted"].get<bool>()) {
      line += ", dense " + format_double("%.3f ms", last["dense"]["median_ms"].get<double>()) + ", speedup " +
              format_double("%.2fx", last["dense"]["median_ms"].get<double>() / last["sparse"]["median_ms"].get<double>());
    }
    line += " (edge ratio " + format_double("%.2f", last["edges"]["ratio"].get<double>()) + ")";
    stages.summary(line);
  }

  return rows;
}

// Dense above --no-dense-above from the largest measured N, then each row's measured and
// ideal speedup, efficiency and fast/ref.
void add_speedups(Json& rows) {
  // Dense above the cap: the largest measured N's time per dense edge times the edges asked
  // for (the work is one FMA pass per edge). A fitted exponent, taken from a few noisy small N,
  // once came out negative under load and put the extrapolation below a measured time.
  double anchor_n = 0.0, anchor_ms = 0.0, anchor_edges = 0.0;
  for (const Json& r : rows) {
    if (r["dense"]["attempted"].get<bool>()) {
      anchor_n = r["seq"].get<double>();
      anchor_ms = r["dense"]["median_ms"].get<double>();
      anchor_edges = r["edges"]["dense_per_head"].get<double>();
    }
  }
  for (Json& r : rows) {
    Json& d = r["dense"];
    const double sparse_ms = r["sparse"]["median_ms"].get<double>();
    if (!d["attempted"].get<bool>()) {
      if (anchor_edges > 0.0 && anchor_ms > 0.0) {
        const double edges_ratio = r["edges"]["dense_per_head"].get<double>() / anchor_edges;
        d["extrapolated"] = true;
        d["median_ms"] = anchor_ms * edges_ratio;
        d["extrapolated_from"] =
            Json{{"seq", static_cast<std::uint64_t>(anchor_n)}, {"median_ms", anchor_ms}, {"edges_ratio", edges_ratio}};
      } else {
        d["note"] = "dense was not run above --no-dense-above and no measured size leaves anything to extrapolate from";
      }
    }
    Json sp;
    if (d["median_ms"].is_number() && sparse_ms > 0.0) {
      sp["measured"] = d["median_ms"].get<double>() / sparse_ms;
    } else {
      sp["measured"] = nullptr;
    }
    sp["ideal"] = r["edges"]["ratio"];
    sp["efficiency"] = sp["measured"].is_number() && r["edges"]["ratio"].get<double>() > 0.0
                           ? Json(sp["measured"].get<double>() / r["edges"]["ratio"].get<double>())
                           : Json(nullptr);
    sp["extrapolated"] = d["extrapolated"];
    r["speedup"] = sp;
    r["fast_vs_ref"] = r["sparse_ref"].is_object() && sparse_ms > 0.0
                           ? Json(r["sparse_ref"]["median_ms"].get<double>() / sparse_ms)
                           : Json(nullptr);
  }
}

// The thread-scaling table (--scaling-at), `c.threads` threads against one.
Json scaling_table(const BenchConfig& c, kernels::Isa isa, double peak_one, Stages& stages) {
  const bool scaling = runs_scaling(c);
  Json scale;
  scale["threads"] = c.threads;
  scale["rounds"] = c.scaling_rounds;
  scale["reps_per_round"] = c.reps;
  scale["note"] = !c.scaling_at.empty() && !scaling ? Json("thread scaling needs --threads 2 or more") : Json(nullptr);
  const std::vector<int> allowed = allowed_cpus();
  const bool too_many_cpus = allowed.size() > kMaxCpusTimedAlone;
  const std::vector<int> timed_alone = too_many_cpus ? std::vector<int>{} : allowed;
  if (scaling && too_many_cpus) {
    scale["note"] = "one-thread calls pinned to each CPU are timed only where the process may use at most " +
                    std::to_string(kMaxCpusTimedAlone) + " CPUs (limit it with taskset)";
  }
  Json srows = Json::array();
  for (std::size_t n : scaling ? c.scaling_at : std::vector<std::size_t>{}) {
    // The calls on every CPU at once each read their own copy of the inputs, as independent
    // jobs would: on shared inputs one call's reads could serve the other's from the shared L3.
    // Past kMaxCopiedInputBytes a copy those calls are not run (the copies and their outputs
    // would hold T times the memory).
    const std::size_t input_bytes = n * (c.q_heads + 2 * c.kv_heads) * c.dim * sizeof(float);
    const bool at_once = timed_alone.size() == c.threads && input_bytes <= kMaxCopiedInputBytes;
    const std::size_t copies = at_once ? c.threads : 1;
    std::vector<Qkv> inputs;
    inputs.reserve(copies);
    inputs.push_back(generate_qkv(GenKind::kNormal, n, c.q_heads, c.kv_heads, c.dim, c.seed, c.threads));
    while (inputs.size() < copies) inputs.push_back(inputs[0]);
    const std::string at = "N=" + std::to_string(n) + " scaling";
    Json r;
    r["seq"] = n;
    r["dense"] = nullptr;
    if (n <= c.no_dense_above) {
      stages.starting(at + " dense");
      r["dense"] = scaling_kernel_json(
          c, isa, attention_flops(attn::dense_edges_per_head(n, c.sparse.causal), c.q_heads, c.dim), peak_one, timed_alone,
          inputs, [&](unsigned t, const Qkv& x) { return attn::dense_attention(x.q, x.k, x.v, c.sparse.causal, {t, isa, true}); });
      stages.done(at + " dense");
    }
    stages.starting(at + " sparse");
    r["sparse"] = scaling_kernel_json(
        c, isa, attention_flops(attn::sparse_edges_per_head(n, c.sparse), c.q_heads, c.dim), peak_one, timed_alone,
        inputs, [&](unsigned t, const Qkv& x) { return attn::sparse_attention(x.q, x.k, x.v, c.sparse, {t, isa, true}); });
    stages.done(at + " sparse");
    std::string line = at + ": sparse " + format_double("%.2fx", r["sparse"]["speedup"].get<double>());
    if (r["dense"].is_object()) line += ", dense " + format_double("%.2fx", r["dense"]["speedup"].get<double>());
    stages.summary(line + " on " + std::to_string(c.threads) + " threads");
    srows.push_back(std::move(r));
  }
  scale["rows"] = srows;
  return scale;
}

// Decode: prefill T - steps positions, then time `steps` single-token steps, the last at
// cache length T. The dense decode (the O(T) baseline: every slot through the same row
// kernel) takes fewer steps: at large T one step costs milliseconds, and the median
// settles long before 256 of them.
Json decode_table(const BenchConfig& c, kernels::Isa isa, Stages& stages) {
  Json dec;
  dec["kv_dtype"] = stream::kv_dtype_name(c.kv_dtype);
  dec["steps_requested"] = c.decode_steps;
  dec["dense_steps_requested"] = c.dense_decode_steps;
  dec["sparse_kernel"] = kernels::isa_name(isa);
  dec["dense_kernel"] = kernels::isa_name(isa);
  Json drows = Json::array();
  double sparse0 = 0.0, dense0 = 0.0;
  for (std::size_t t_len : c.decode_at) {
    const std::string at = "T=" + std::to_string(t_len);
    const Qkv x = generate_qkv(GenKind::kNormal, t_len, c.q_heads, c.kv_heads, c.dim, c.seed ^ 0xDEC0DEull, c.threads);
    Tensor out(1, c.q_heads, c.dim);
    Json r;
    r["t"] = t_len;
    // The two decoders take turns for `rounds` rounds, each from a fresh cache filled to T -
    // steps: a step is under a microsecond, so one round of 256 lasts well under a millisecond,
    // and a slow stretch of the machine can cover a whole round (the step at T = 4096 went from
    // 676 to 1136 ns in one run of scripts/check_targets.py, 2026-11-29).
    const std::size_t sparse_prefill = t_len - std::min(c.decode_steps, t_len);
    const std::size_t dense_prefill = t_len - std::min(c.dense_decode_steps, t_len);
    auto filled_cache = [&](std::size_t prefill) {
      stream::KvCache cache(t_len, c.kv_heads, c.dim, c.sparse.block_size, c.kv_dtype);
      if (prefill) cache.append_all(x.k.first_rows(prefill), x.v.first_rows(prefill));
      return cache;
    };
    std::vector<double> sparse_ns, dense_ns;
    Json sparse_rounds = Json::array(), dense_rounds = Json::array();
    std::size_t sparse_edges = 0;
    auto add_round = [](std::vector<double>& all, Json& medians, const std::vector<double>& round) {
      medians.push_back(sample_stats(round).median);
      all.insert(all.end(), round.begin(), round.end());
    };
    for (std::size_t round = 1; round <= c.rounds; ++round) {
      const std::string label = at + " decode" + round_of(round, c.rounds);
      stages.starting(label);
      stream::SparseDecoder sparse(c.q_heads, filled_cache(sparse_prefill), c.sparse, stream::Evict::kNone, isa);
      add_round(sparse_ns, sparse_rounds, time_steps(sparse, x, sparse_prefill, t_len, out));
      sparse_edges = sparse.last_edges();
      stream::DenseDecoder dense(c.q_heads, filled_cache(dense_prefill), isa);
      add_round(dense_ns, dense_rounds, time_steps(dense, x, dense_prefill, t_len, out));
      stages.done(label);
    }
    r["sparse"] = decode_kernel_json(sparse_ns, kernels::isa_name(isa));
    r["sparse"]["prefill"] = sparse_prefill;
    r["sparse"]["edges_last_step"] = sparse_edges;
    r["sparse"]["round_medians_ns"] = sparse_rounds;
    r["dense"] = decode_kernel_json(dense_ns, kernels::isa_name(isa));
    r["dense"]["prefill"] = dense_prefill;
    r["dense"]["round_medians_ns"] = dense_rounds;
    const double s_ns = r["sparse"]["median_ns"].get<double>(), d_ns = r["dense"]["median_ns"].get<double>();
    if (drows.empty()) {
      sparse0 = s_ns;
      dense0 = d_ns;
    }
    r["speedup"] = s_ns > 0.0 ? Json(d_ns / s_ns) : Json(nullptr);
    r["sparse_vs_first"] = sparse0 > 0.0 ? Json(s_ns / sparse0) : Json(nullptr);
    r["dense_vs_first"] = dense0 > 0.0 ? Json(d_ns / dense0) : Json(nullptr);
    r["peak_rss_bytes"] = peak_rss_bytes();
    drows.push_back(std::move(r));
    stages.summary(at + ": sparse step " + format_double("%.0f ns", s_ns) + ", dense step " + format_double("%.0f ns", d_ns));
  }
  dec["rows"] = drows;
  return dec;
}

}  // namespace

Json run_bench(const BenchConfig& config_in) {
  const BenchConfig c = normalized(config_in);
  const kernels::Isa isa = kernels::resolve_isa(c.isa);
  const auto run_start = Clock::now();
  Stages stages(c);

  Json j;
  j["schema"] = kBenchSchema;
  const Json workload = workload_json(c);
  for (const auto& item : workload.items()) j[item.key()] = item.value();
  j["params"] = params_json(c);
  j["machine"] = machine_json(isa, c.threads);

  // The FMA peak first, on a machine not yet warmed by the big runs.
  stages.starting("fma peak");
  const Json pj = fma_peak_json(isa, c.threads, c.peak_seconds);
  j["fma_peak"] = pj;
  stages.done("fma peak");
  const bool peak_valid = pj["valid"].get<bool>();

  Json rows = prefill_rows(c, isa, peak_valid ? pj["reference_gflops"].get<double>() : 0.0, stages);
  const PowerFit dense_fit = fit_column(rows, "dense");  // before extrapolation: measured times only
  const PowerFit sparse_fit = fit_column(rows, "sparse");
  const PowerFit ref_fit = c.reference ? fit_column(rows, "sparse_ref") : PowerFit{};
  add_speedups(rows);
  j["prefill"] = rows;
  j["fits"] = Json{{"dense", fit_json(dense_fit)}, {"sparse", fit_json(sparse_fit)}, {"sparse_ref", fit_json(ref_fit)}};
  j["scaling"] = scaling_table(c, isa, peak_valid ? pj["single_core_gflops"].get<double>() : 0.0, stages);
  j["decode"] = decode_table(c, isa, stages);
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["wall_s"] = ms_between(run_start, Clock::now()) / 1000.0;
  return j;
}

BenchOutcome run_bench_job(const BenchRequest& req) {
  const Format format = parse_format(req.format);
  if (!(req.tolerance >= 0.0) || !std::isfinite(req.tolerance)) throw_usage("--tolerance must be a finite number >= 0");
  req.config.validate();
  Json baseline;
  if (!req.compare_path.empty()) {
    baseline = load_baseline(req.compare_path);
    check_comparable(workload_json(req.config), baseline, req.compare_path);
    check_common_sizes(baseline, req.config.seqs, req.config.decode_at, req.compare_path);
    const std::string line =
        machine_notice(machine_json(kernels::resolve_isa(req.config.isa), req.config.threads), baseline, req.compare_path);
    if (!line.empty() && req.notice) req.notice(line);
  }
  BenchOutcome out;
  out.result = run_bench(req.config);
  out.result["plot"] = nullptr;
  if (!req.plot_path.empty()) {
    try {  // a plot that fails now (a full disk) costs the plot, not the measurements
      io::write_file_atomic(req.plot_path, plot_svg(out.result));
      out.result["plot"] = req.plot_path;
    } catch (const Error& e) {
      out.code = e.code();
      out.error = e.what();
    }
  }
  if (!req.compare_path.empty()) {
    const CompareResult cmp = compare_results(out.result, baseline, req.tolerance, req.compare_path);
    out.result["compare"] = cmp.json();
    if (cmp.regressions() > 0 && out.code == ExitCode::kOk) {
      out.code = ExitCode::kCheckFailed;
      out.error = cmp.failure_message();
    } else if (cmp.regressions() > 0) {  // the plot's io failure decides the code; the regression is said too
      out.error += " (the comparison failed too: " + cmp.failure_message() + ")";
    }
  }
  switch (format) {
    case Format::kText: out.text = format_text(out.result); break;
    case Format::kMarkdown: out.text = format_markdown(out.result); break;
    case Format::kCsv: out.text = format_csv(out.result); break;
    case Format::kJson: break;
  }
  return out;
}

}  // namespace rvt::bench
