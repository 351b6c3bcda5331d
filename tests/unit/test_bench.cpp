// bench: sample statistics, the log-log growth fit and extrapolation, the FLOP formula,
// the result's invariants on a tiny run (edge ratios, extrapolation flags), the renderings
// and the --compare logic. No timed assertions: machines are noisy.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "rvt/attention/pattern.hpp"
#include "rvt/bench/bench.hpp"
#include "rvt/bench/compare.hpp"
#include "rvt/bench/format.hpp"
#include "rvt/bench/stats.hpp"
#include "rvt/core/error.hpp"
#include "rvt/jobs/presets.hpp"
#include "test_support.hpp"

using namespace rvt;
using namespace rvt::bench;
using report::Json;

namespace {

using test::code_of;

// One CSV line's cells, a trailing empty cell included.
std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::istringstream fields(line);
  for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

BenchConfig tiny_config() {
  BenchConfig c;
  c.preset = "bench";
  c.q_heads = 2;
  c.kv_heads = 1;
  c.dim = 16;
  c.sparse.window = 8;
  c.sparse.block_size = 16;
  c.seqs = {128, 32, 64};  // unsorted on purpose
  c.reps = 2;
  c.warmup = 0;
  c.threads = 1;
  c.decode_at = {48, 16};
  c.decode_steps = 8;
  c.dense_decode_steps = 4;
  c.peak_seconds = 0.01;
  return c;
}

// A hand-made bench result: workload of the bench preset, one prefill row and one decode row.
Json fake_result(double dense_ms, double sparse_ms, double ref_ms, double decode_ns, const std::string& preset = "bench",
                 std::size_t dim = 32) {
  Json r;
  r["schema"] = kBenchSchema;
  r["preset"] = preset;
  r["shape"] = Json{{"q_heads", 4u}, {"kv_heads", 4u}, {"head_dim", dim}};
  r["config"] = Json{{"window", 16u},   {"block_size", 32u}, {"globals", {0u}},         {"causal", true},
                     {"log_stride", true}, {"landmarks", true}, {"landmark_mode", "mean"}};
  r["prefill"] = Json::array({Json{{"seq", 1024u},
                                   {"dense", {{"attempted", true}, {"extrapolated", false}, {"median_ms", dense_ms}}},
                                   {"sparse", {{"attempted", true}, {"extrapolated", false}, {"median_ms", sparse_ms}}},
                                   {"sparse_ref", {{"attempted", true}, {"extrapolated", false}, {"median_ms", ref_ms}}}},
                              Json{{"seq", 1048576u},
                                   {"dense", {{"attempted", false}, {"extrapolated", true}, {"median_ms", dense_ms}}},
                                   {"sparse", {{"attempted", true}, {"extrapolated", false}, {"median_ms", sparse_ms}}},
                                   {"sparse_ref", nullptr}}});
  r["decode"] = Json{{"rows", Json::array({Json{{"t", 4096u},
                                                {"sparse", {{"median_ns", decode_ns}}},
                                                {"dense", {{"median_ns", decode_ns * 100}}}}})}};
  return r;
}

}  // namespace

TEST_CASE("bench stats: median, min, max, mean and sample stddev") {
  const std::vector<double> odd{3.0, 1.0, 2.0};
  CHECK(median(odd) == 2.0);
  const std::vector<double> even{4.0, 1.0, 3.0, 2.0};
  CHECK(median(even) == 2.5);
  const std::vector<double> s{2, 4, 4, 4, 5, 5, 7, 9};
  CHECK(stddev(s) == Approx(std::sqrt(32.0 / 7.0)));
  const SampleStats st = sample_stats(s);
  CHECK(st.count == 8);
  CHECK(st.min == 2.0);
  CHECK(st.max == 9.0);
  CHECK(st.mean == 5.0);
  CHECK(st.median == 4.5);
  CHECK(sample_stats(std::vector<double>{7.0}).stddev == 0.0);
  CHECK(sample_stats(std::vector<double>{}).count == 0);
}

TEST_CASE("bench fit: log-log least squares recovers exponents and skips bad points") {
  const std::vector<double> n{64, 128, 256, 512, 1024};
  std::vector<double> quad, lin;
  for (double x : n) {
    quad.push_back(3e-6 * x * x);
    lin.push_back(0.01 * x);
  }
  const PowerFit q = fit_loglog(n, quad);
  REQUIRE(q.valid);
  CHECK(q.exponent == Approx(2.0).epsilon(1e-12));
  CHECK(q.coefficient == Approx(3e-6).epsilon(1e-9));
  CHECK(q.r2 == Approx(1.0));
  CHECK(q.points == 5);
  CHECK(q.at(2048) == Approx(3e-6 * 2048 * 2048));
  const PowerFit l = fit_loglog(n, lin);
  CHECK(l.exponent == Approx(1.0).epsilon(1e-12));

  // Noisy quadratic: exponent near 2, r2 below 1.
  std::vector<double> noisy = quad;
  noisy[1] *= 1.1;
  noisy[3] *= 0.9;
  const PowerFit nq = fit_loglog(n, noisy);
  CHECK(nq.exponent == Approx(2.0).margin(0.1));
  CHECK(nq.r2 < 1.0);
  CHECK(nq.r2 > 0.99);

  // Zero / negative / NaN values are skipped; one point or one x is no fit.
  const std::vector<double> xs{0, 10, 100, 1000}, ys{5, 1, -1, 100};
  const PowerFit skip = fit_loglog(xs, ys);
  CHECK(skip.points == 2);
  CHECK(skip.exponent == Approx(1.0));
  CHECK_FALSE(fit_loglog(std::vector<double>{10}, std::vector<double>{1}).valid);
  CHECK_FALSE(fit_loglog(std::vector<double>{10, 10}, std::vector<double>{1, 2}).valid);
  CHECK_FALSE(fit_loglog(std::vector<double>{10, 20}, std::vector<double>{NAN, 2}).valid);
}

TEST_CASE("bench flops: 4 * dim * edges * heads, GFLOP/s") {
  const std::uint64_t dense = attn::dense_edges_per_head(1024, true);
  CHECK(dense == 1024u * 1025u / 2u);
  CHECK(attention_flops(dense, 4, 32) == 4.0 * 32 * 524800.0 * 4);
  CHECK(attention_flops(0, 4, 32) == 0.0);
  CHECK(gflops(2e9, 1000.0) == Approx(2.0));
  CHECK(gflops(1e9, 0.0) == 0.0);
  CHECK(peak_rss_bytes() > 0);
}

TEST_CASE("bench config: validation names the option") {
  BenchConfig c = tiny_config();
  CHECK(code_of([&] { c.validate(); }) == ExitCode::kOk);
  auto bad = [&](auto mutate, const char* what) {
    BenchConfig b = tiny_config();
    mutate(b);
    try {
      b.validate();
      FAIL("no error for " << what);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kUsage);
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  bad([](BenchConfig& b) { b.seqs.clear(); }, "--seq");
  bad([](BenchConfig& b) { b.seqs = {0}; }, "--seq");
  bad([](BenchConfig& b) { b.reps = 0; }, "--reps");
  bad([](BenchConfig& b) { b.threads = 0; }, "--threads");
  bad([](BenchConfig& b) { b.decode_at = {0}; }, "--decode-at");
  bad([](BenchConfig& b) { b.dense_decode_steps = 0; }, "--dense-decode-steps");
  bad([](BenchConfig& b) { b.scaling_at = {64, 0}; }, "--scaling-at");
  bad([](BenchConfig& b) { b.scaling_rounds = 0; }, "--scaling-rounds");
  bad([](BenchConfig& b) { b.rounds = 0; }, "--rounds");
  bad([](BenchConfig& b) { b.q_heads = 3; b.kv_heads = 2; }, "GQA");
}

TEST_CASE("bench presets: llama8x64 is MHA 8 x 64, window 128, block 64") {
  const jobs::Preset& p = jobs::find_preset("llama8x64");
  CHECK(p.q_heads == 8);
  CHECK(p.kv_heads == 8);
  CHECK(p.head_dim == 64);
  CHECK(p.window == 128);
  CHECK(p.block_size == 64);
}

TEST_CASE("bench peak: FMA probe per ISA, none for scalar") {
  const FmaPeak s = measure_fma_peak(kernels::Isa::kScalar, 0.01);
  CHECK_FALSE(s.valid);
  CHECK_FALSE(s.note.empty());
  const kernels::Isa best = kernels::best_isa();
  if (best != kernels::Isa::kScalar) {
    const FmaPeak p = measure_fma_peak(best, 0.02);
    CHECK(p.valid);
    CHECK(p.gflops > 0.0);
    CHECK(p.iterations > 0);
    // Every CPU busy at once: one entry per CPU this process may use, each pinned to a
    // different CPU, each with a rate.
    const std::vector<CpuPeak> cpus = measure_fma_per_cpu(best, p.iterations / 4 + 1, 2);
    REQUIRE_FALSE(cpus.empty());
    std::set<int> seen;
    for (const CpuPeak& c : cpus) {
      CHECK(c.gflops > 0.0);
      if (c.cpu >= 0) CHECK(seen.insert(c.cpu).second);
    }
  }
  CHECK(measure_fma_per_cpu(kernels::Isa::kScalar, 1000).empty());
}

TEST_CASE("bench run: structure, edge ratios, extrapolation and decode rows") {
  BenchConfig c = tiny_config();
  c.no_dense_above = 64;
  std::vector<std::string> progress;
  std::size_t last_done = 0, total = 0;
  c.progress = [&](const Progress& p) {
    CHECK(p.done >= last_done);
    last_done = p.done;
    total = p.total;
    if (p.n_done) progress.push_back(p.label);
  };
  const Json r = run_bench(c);
  CHECK(r["schema"] == kBenchSchema);
  CHECK(last_done == total);
  CHECK(progress.size() == 5);  // 3 N + 2 T
  REQUIRE(r["prefill"].size() == 3);
  const std::vector<std::size_t> want{32, 64, 128};
  for (std::size_t i = 0; i < 3; ++i) {
    const Json& row = r["prefill"][i];
    const std::size_t n = want[i];
    CHECK(row["seq"] == n);
    const std::uint64_t dense = attn::dense_edges_per_head(n, true);
    const std::uint64_t sparse = attn::sparse_edges_per_head(n, c.sparse);
    CHECK(row["edges"]["dense_per_head"] == dense);
    CHECK(row["edges"]["sparse_per_head"] == sparse);
    CHECK(row["edges"]["ratio"].get<double>() == Approx(static_cast<double>(dense) / static_cast<double>(sparse)));
    CHECK(row["speedup"]["ideal"] == row["edges"]["ratio"]);
    CHECK(row["sparse"]["samples_ms"].size() == 2);
    CHECK(row["sparse"]["min_ms"].get<double>() <= row["sparse"]["median_ms"].get<double>());
    CHECK(row["sparse"]["flops"].get<double>() == attention_flops(sparse, 2, 16));
    CHECK(row["sparse_ref"]["isa"] == "scalar");
    CHECK(row["fast_vs_ref"].is_number());
    const bool over = n > 64;
    CHECK(row["dense"]["attempted"] == !over);
    CHECK(row["dense"]["extrapolated"] == over);
    CHECK(row["speedup"]["extrapolated"] == over);
    CHECK(row["dense"]["median_ms"].is_number());
    if (!over) CHECK(row["dense"]["flops"].get<double>() == attention_flops(dense, 2, 16));
  }
  // Extrapolated = anchor (N=64) * dense edges(128) / dense edges(64): time per edge, whatever the fit says.
  const double edges_ratio = r["prefill"][2]["edges"]["dense_per_head"].get<double>() /
                             r["prefill"][1]["edges"]["dense_per_head"].get<double>();
  CHECK(r["fits"]["dense"]["points"] == 2);
  CHECK(r["prefill"][2]["dense"]["median_ms"].get<double>() ==
        Approx(r["prefill"][1]["dense"]["median_ms"].get<double>() * edges_ratio));
  CHECK(r["prefill"][2]["dense"]["extrapolated_from"]["seq"] == 64);
  CHECK(r["prefill"][2]["dense"]["extrapolated_from"]["edges_ratio"].get<double>() == Approx(edges_ratio));
  CHECK(r["fits"]["sparse"]["points"] == 3);

  REQUIRE(r["decode"]["rows"].size() == 2);
  CHECK(r["decode"]["rows"][0]["t"] == 16);
  CHECK(r["decode"]["rows"][0]["sparse"]["prefill"] == 8);
  CHECK(r["decode"]["rows"][1]["sparse"]["prefill"] == 40);
  CHECK(r["decode"]["rows"][1]["dense"]["prefill"] == 44);
  CHECK(r["decode"]["rows"][0]["sparse"]["samples_ns"].size() == 8);
  CHECK(r["decode"]["rows"][0]["dense"]["samples_ns"].size() == 4);
  CHECK(r["decode"]["rows"][0]["sparse_vs_first"].get<double>() == 1.0);
  for (const char* key : {"cpu_model", "logical_cpus", "loadavg", "isa", "threads", "compiler", "build_type",
                          "git_commit", "timestamp_utc"}) {
    CHECK(r["machine"].contains(key));
  }
  CHECK(r["peak_rss_bytes"].get<std::uint64_t>() > 0);
}

TEST_CASE("bench run: one measured dense size is enough to extrapolate from, none is not") {
  BenchConfig c = tiny_config();
  c.seqs = {32, 64};
  c.no_dense_above = 32;
  c.decode_at = {};
  c.reference = false;
  const Json one = run_bench(c);
  CHECK_FALSE(one["fits"]["dense"]["valid"].get<bool>());  // no fit from one point, but its time per edge
  CHECK(one["prefill"][1]["dense"]["extrapolated"] == true);
  CHECK(one["prefill"][1]["dense"]["median_ms"].get<double>() > one["prefill"][0]["dense"]["median_ms"].get<double>());
  CHECK(one["prefill"][0]["sparse_ref"].is_null());
  CHECK(one["decode"]["rows"].empty());

  c.no_dense_above = 16;
  const Json none = run_bench(c);
  const Json& d = none["prefill"][1]["dense"];
  CHECK(d["attempted"] == false);
  CHECK(d["extrapolated"] == false);
  CHECK(d["median_ms"].is_null());
  CHECK(none["prefill"][1]["speedup"]["measured"].is_null());
}

TEST_CASE("bench run: prefill kernels take turns over --rounds, samples pooled, each round's ratios kept") {
  BenchConfig c = tiny_config();
  c.seqs = {32, 128};
  c.decode_at = {};
  c.no_dense_above = 64;
  c.rounds = 3;
  std::vector<std::string> labels;
  std::size_t last_done = 0, total = 0;
  c.progress = [&](const Progress& p) {
    labels.push_back(p.label);
    last_done = p.done;
    total = p.total;
  };
  const Json r = run_bench(c);
  CHECK(last_done == total);
  CHECK(r["params"]["rounds"] == 3);
  // Round by round: dense, sparse, reference, then the next round.
  std::vector<std::string> order;
  for (const std::string& l : labels) {
    if (l.rfind("N=32 ", 0) == 0 && l.find("(round") != std::string::npos && order.size() < 4 &&
        (order.empty() || order.back() != l)) {
      order.push_back(l);
    }
  }
  CHECK(order == std::vector<std::string>{"N=32 dense (round 1 of 3)", "N=32 sparse (round 1 of 3)",
                                          "N=32 sparse reference (round 1 of 3)", "N=32 dense (round 2 of 3)"});
  for (const Json& row : r["prefill"]) {
    const bool dense = row["seq"] == 32;
    CHECK(row["sparse"]["samples_ms"].size() == 6);  // rounds x reps
    CHECK(row["sparse_ref"]["samples_ms"].size() == 6);
    CHECK(row["round_fast_vs_ref"].size() == 3);
    CHECK(row["round_speedups"].size() == (dense ? 3u : 0u));  // 128: dense extrapolated, never run
    if (dense) CHECK(row["dense"]["samples_ms"].size() == 6);
    for (const Json& v : row["round_fast_vs_ref"]) CHECK(v.get<double>() > 0.0);
  }
  const std::string text = format_text(r);
  CHECK(text.find("3 rounds taking turns") != std::string::npos);
  CHECK(text.find("speedup rounds") != std::string::npos);
  CHECK(format_markdown(r).find("| fast/ref | speedup rounds | fast/ref rounds |") != std::string::npos);
  // CSV: the rounds on every row that ran, and on the sparse row the rounds' ranges.
  std::map<std::string, std::vector<std::string>> csv_rows;  // "n,kernel" -> its cells
  std::istringstream csv(format_csv(r));
  for (std::string line; std::getline(csv, line);) {
    const std::vector<std::string> cells = csv_cells(line);
    REQUIRE(cells.size() == 25);
    csv_rows[cells[1] + "," + cells[2]] = cells;
  }
  auto range_in_order = [](const std::vector<std::string>& row, std::size_t first) {
    return std::stod(row[first]) <= std::stod(row[first + 1]);
  };
  const std::vector<std::string>& sparse32 = csv_rows.at("32,sparse");
  CHECK(sparse32[17] == "3");
  CHECK((range_in_order(sparse32, 18) && range_in_order(sparse32, 20)));
  const std::vector<std::string>& sparse128 = csv_rows.at("128,sparse");
  CHECK((sparse128[18].empty() && sparse128[19].empty()));  // dense never ran at 128
  CHECK(range_in_order(sparse128, 20));
  CHECK(csv_rows.at("128,dense")[17].empty());
  CHECK(csv_rows.at("32,dense")[17] == "3");
  CHECK(csv_rows.at("32,dense")[18].empty());  // the ranges are on the sparse row only
  c.rounds = 1;  // one round: the table as before
  CHECK(format_text(run_bench(c)).find("rounds") == std::string::npos);
  c.rounds = 2;  // sparse alone: its rounds take turns with nothing
  c.reference = false;
  c.seqs = {128};
  const std::string alone = format_text(run_bench(c));
  CHECK(alone.find(", 2 rounds\n") != std::string::npos);
  CHECK(alone.find("taking turns") == std::string::npos);
}

TEST_CASE("bench run: thread scaling alternates one thread and --threads, round by round") {
  BenchConfig c = tiny_config();
  c.seqs = {32};
  c.decode_at = {};
  c.threads = 2;
  c.no_dense_above = 64;
  c.scaling_at = {128, 64, 64};  // unsorted, a duplicate
  c.scaling_rounds = 3;
  std::size_t last_done = 0, total = 0;
  c.progress = [&](const Progress& p) {
    last_done = p.done;
    total = p.total;
  };
  const Json r = run_bench(c);
  CHECK(last_done == total);
  const Json& sc = r["scaling"];
  CHECK(sc["threads"] == 2);
  CHECK(sc["rounds"] == 3);
  CHECK(sc["reps_per_round"] == 2);
  CHECK(sc["note"].is_null());
  REQUIRE(sc["rows"].size() == 2);
  CHECK(sc["rows"][0]["seq"] == 64);
  CHECK(sc["rows"][1]["seq"] == 128);
  CHECK(sc["rows"][1]["dense"].is_null());  // above no_dense_above: never run
  for (const Json& row : sc["rows"]) {
    for (const char* kernel : {"dense", "sparse"}) {
      const Json& k = row[kernel];
      if (!k.is_object()) continue;
      CHECK(k["one_thread"]["samples_ms"].size() == 6);  // rounds x reps on each side
      CHECK(k["threads"]["samples_ms"].size() == 6);
      CHECK(k["speedup"].get<double>() ==
            Approx(k["one_thread"]["median_ms"].get<double>() / k["threads"]["median_ms"].get<double>()));
      CHECK(k["round_speedups"].size() == 3);
      if (!k["one_thread"]["pct_of_peak"].is_number()) continue;  // no FMA probe for this ISA
      CHECK(k["threads"]["pct_of_peak"].get<double>() ==
            Approx(k["one_thread"]["pct_of_peak"].get<double>() * k["one_thread"]["median_ms"].get<double>() /
                   k["threads"]["median_ms"].get<double>() / 2.0));  // of two cores' peak
    }
  }
  CHECK(format_text(r).find("thread scaling, 1 against 2 threads") != std::string::npos);
  CHECK(format_markdown(r).find("| N | dense 1 thread ms | dense 2 threads ms |") != std::string::npos);
  const std::string csv = format_csv(r);
  CHECK(csv.find("scaling,64,dense@1,") != std::string::npos);
  CHECK(csv.find("scaling,128,sparse@2,") != std::string::npos);
  CHECK(csv.find("scaling,128,dense@") == std::string::npos);
  // The @2 row ends in the speedup over one thread and the rounds' range; the @1 row leaves them empty.
  auto row_cells = [&](const std::string& prefix) {
    const std::size_t at = csv.find(prefix);
    REQUIRE(at != std::string::npos);
    return csv_cells(csv.substr(at, csv.find('\n', at) - at));
  };
  const Json& sparse128 = sc["rows"][1]["sparse"];
  const auto [lo, hi] = std::minmax_element(sparse128["round_speedups"].begin(), sparse128["round_speedups"].end(),
                                            [](const Json& x, const Json& y) { return x.get<double>() < y.get<double>(); });
  const std::vector<std::string> at2 = row_cells("scaling,128,sparse@2,");
  REQUIRE(at2.size() == 25);
  CHECK(std::stod(at2[22]) == Approx(sparse128["speedup"].get<double>()));
  CHECK(std::stod(at2[23]) == Approx(lo->get<double>()));
  CHECK(std::stod(at2[24]) == Approx(hi->get<double>()));
  const std::vector<std::string> at1 = row_cells("scaling,128,sparse@1,");
  REQUIRE(at1.size() == 25);
  CHECK((at1[22].empty() && at1[23].empty() && at1[24].empty()));

  c.threads = 1;  // nothing to compare: a note, no rows
  const Json one = run_bench(c);
  CHECK(one["scaling"]["rows"].empty());
  CHECK(one["scaling"]["note"].get<std::string>().find("--threads 2") != std::string::npos);
  CHECK(format_text(one).find("--threads 2") != std::string::npos);
}

TEST_CASE("bench format: csv columns, markdown tables, text, svg") {
  BenchConfig c = tiny_config();
  c.no_dense_above = 64;
  const Json r = run_bench(c);
  const std::string csv = format_csv(r);
  const std::string header =
      "table,n,kernel,isa,extrapolated,median,min,max,stddev,unit,samples,gflops,pct_of_peak,edges_per_head,"
      "edge_ratio,speedup_vs_dense,fast_vs_ref,rounds,speedup_rounds_min,speedup_rounds_max,fast_vs_ref_rounds_min,"
      "fast_vs_ref_rounds_max,threads_speedup,threads_speedup_rounds_min,threads_speedup_rounds_max";
  CHECK(csv.rfind(header + "\n", 0) == 0);
  std::size_t lines = 0;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);) {
    ++lines;
    CHECK(std::count(line.begin(), line.end(), ',') == 24);
  }
  CHECK(lines == 1 + 3 * 3 + 2 * 2);
  CHECK(csv.find("prefill,128,dense,") != std::string::npos);
  CHECK(csv.find(",true,") != std::string::npos);  // the extrapolated dense row

  const std::string md = format_markdown(r);
  CHECK(md.find("| N | dense ms |") != std::string::npos);
  CHECK(md.find("| T | steps sparse/dense |") != std::string::npos);
  CHECK(md.find("extrapolated") != std::string::npos);
  const std::string text = format_text(r);
  CHECK(text.find("fma peak") != std::string::npos);
  CHECK(text.find("growth") != std::string::npos);

  const std::string svg = plot_svg(r);
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("stroke-dasharray=\"6 4\"") != std::string::npos);  // the extrapolated dense segment
  CHECK(svg.find("speedup vs N") != std::string::npos);
  // A non-finite value is left out of the plot, not drawn on an axis stretched to infinity
  // (whose decade loop never ended).
  Json odd = r;
  odd["prefill"][0]["sparse"]["median_ms"] = std::numeric_limits<double>::infinity();
  odd["prefill"][0]["speedup"]["measured"] = std::numeric_limits<double>::infinity();
  const std::string odd_svg = plot_svg(odd);
  CHECK(odd_svg.find("speedup vs N") != std::string::npos);
  CHECK(odd_svg.find("inf") == std::string::npos);
  CHECK(odd_svg.find("nan") == std::string::npos);

  CHECK(parse_format("md") == Format::kMarkdown);
  CHECK(code_of([] { parse_format("xml"); }) == ExitCode::kUsage);
}

TEST_CASE("bench compare: tiny baseline regresses, huge baseline passes") {
  const Json current = fake_result(100.0, 2.0, 30.0, 800.0);
  const CompareResult slow = compare_results(current, fake_result(1e-6, 1e-6, 1e-6, 1e-3), 0.15, "base.json");
  // dense and sparse at 1024, sparse at 1048576 (extrapolated dense skipped), ref, decode x2
  CHECK(slow.entries.size() == 6);
  CHECK(slow.regressions() == 6);
  const std::string msg = slow.failure_message();
  CHECK(msg.find("check failed") == 0);
  CHECK(msg.find("N=") != std::string::npos);
  CHECK(msg.find("5 more") != std::string::npos);
  CHECK(msg.find('\n') == std::string::npos);

  const CompareResult fast = compare_results(current, fake_result(1e6, 1e6, 1e6, 1e9), 0.15);
  CHECK(fast.regressions() == 0);
  CHECK(fast.failure_message().empty());
  CHECK(fast.json()["ok"] == true);

  // Within tolerance: 10% slower passes at 0.15, fails at 0.05.
  const Json base = fake_result(100.0 / 1.1, 2.0 / 1.1, 30.0 / 1.1, 800.0 / 1.1);
  CHECK(compare_results(current, base, 0.15).regressions() == 0);
  CHECK(compare_results(current, base, 0.05).regressions() == 6);

  // One regressed kernel: the message names N and the kernel.
  Json one = fake_result(100.0, 2.0, 30.0, 800.0);
  one["prefill"][0]["sparse"]["median_ms"] = 1.0;
  const CompareResult r1 = compare_results(current, one, 0.15);
  REQUIRE(r1.regressions() == 1);
  CHECK(r1.failure_message().find("N=1024 sparse") != std::string::npos);
  CHECK(r1.json()["entries"].size() == 6);
}

TEST_CASE("bench compare: the machines each side ran on") {
  auto machine = [](int family, const char* isa, unsigned threads) {
    return Json{{"cpu_model", "AMD EPYC"},
                {"cpu_id", {{"vendor", "AuthenticAMD"}, {"family", family}, {"model", 17}, {"stepping", 1}}},
                {"isa", isa},
                {"threads", threads}};
  };
  auto with = [](Json r, const Json& m, double peak) {
    r["machine"] = m;
    r["fma_peak"] = Json{{"single_core_gflops", peak}};
    return r;
  };
  const Json here = machine(25, "avx512", 2);
  const Json current = with(fake_result(100.0, 2.0, 30.0, 800.0), here, 117.0);

  const CompareResult same = compare_results(current, with(fake_result(1e6, 1e6, 1e6, 1e9), here, 117.0), 0.15);
  CHECK(same.same_machine == true);
  CHECK(same.machine == "AMD EPYC (AuthenticAMD family 25 model 17 stepping 1), avx512, 2 threads");
  CHECK(same.fma_peak_ratio == Approx(1.0));
  CHECK(machine_notice(here, with(fake_result(1, 1, 1, 1), here, 117.0), "b.json").empty());

  const Json other = with(fake_result(1e6, 1e6, 1e6, 1e9), machine(26, "avx512", 2), 234.0);
  const CompareResult diff = compare_results(current, other, 0.15, "b.json");
  CHECK(diff.same_machine == false);
  CHECK(diff.regressions() == 0);  // a warning, not a failure
  CHECK(diff.fma_peak_ratio == Approx(0.5));
  const Json j = diff.json();
  CHECK(j["same_machine"] == false);
  CHECK(j["baseline_machine"] == "AMD EPYC (AuthenticAMD family 26 model 17 stepping 1), avx512, 2 threads");
  const std::string notice = machine_notice(here, other, "b.json");
  CHECK(notice.find("baseline b.json ran on AMD EPYC (AuthenticAMD family 26") != std::string::npos);
  CHECK(notice.find("this run on AMD EPYC (AuthenticAMD family 25") != std::string::npos);
  CHECK(notice.find('\n') == std::string::npos);

  // Another ISA or thread count is another setting; a baseline without a machine block, or
  // one without cpu_id that otherwise matches, cannot tell.
  CHECK(same_machine(here, with(fake_result(1, 1, 1, 1), machine(25, "avx2", 2), 1.0)) == false);
  CHECK(same_machine(here, with(fake_result(1, 1, 1, 1), machine(25, "avx512", 1), 1.0)) == false);
  CHECK(!same_machine(here, fake_result(1, 1, 1, 1)).has_value());
  Json old = with(fake_result(1, 1, 1, 1), here, 1.0);
  old["machine"].erase("cpu_id");
  CHECK(!same_machine(here, old).has_value());
  CHECK(machine_notice(here, old, "old.json").empty());
  old["machine"]["cpu_model"] = "Intel Xeon";
  CHECK(same_machine(here, old) == false);
  Json odd = fake_result(1e6, 1e6, 1e6, 1e9);  // a hand-edited baseline: no machine to describe
  odd["machine"] = 5;
  const CompareResult unknown = compare_results(current, odd, 0.15);
  CHECK(unknown.baseline_machine.empty());
  CHECK(!unknown.same_machine.has_value());
  const CompareResult none = compare_results(fake_result(100.0, 2.0, 30.0, 800.0), fake_result(1e6, 1e6, 1e6, 1e9), 0.15);
  CHECK(none.json()["machine"].is_null());
  CHECK(none.json()["same_machine"].is_null());
  CHECK(none.json()["fma_peak_ratio"].is_null());
}

TEST_CASE("bench compare: another workload, nothing matched, bad tolerance, bad files") {
  const Json current = fake_result(100.0, 2.0, 30.0, 800.0);
  CHECK(code_of([&] { compare_results(current, fake_result(1, 1, 1, 1, "aether"), 0.15); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { compare_results(current, fake_result(1, 1, 1, 1, "bench", 64), 0.15); }) ==
        ExitCode::kBadInput);
  try {
    compare_results(current, fake_result(1, 1, 1, 1, "aether"), 0.15, "old.json");
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find("old.json") != std::string::npos);
    CHECK(m.find("aether") != std::string::npos);
    CHECK(m.find("not comparable") != std::string::npos);
  }
  Json other = fake_result(1, 1, 1, 1);
  other["prefill"][0]["seq"] = 77u;
  other["prefill"][1]["seq"] = 78u;
  other["decode"]["rows"][0]["t"] = 79u;
  CHECK(code_of([&] { compare_results(current, other, 0.15); }) == ExitCode::kBadInput);
  // The same before any timing, from the sizes a run will measure.
  CHECK(code_of([&] { check_common_sizes(other, {64, 128}, {1024}, "b.json"); }) == ExitCode::kBadInput);
  CHECK_NOTHROW(check_common_sizes(other, {64, 78}, {}, "b.json"));
  CHECK_NOTHROW(check_common_sizes(other, {}, {79}, "b.json"));
  CHECK(code_of([&] { check_common_sizes(other, {79}, {77}, "b.json"); }) == ExitCode::kBadInput);  // tables apart
  CHECK(code_of([&] { compare_results(current, current, -0.1); }) == ExitCode::kUsage);

  // Files: missing -> kIo, not JSON / not a bench report -> kBadInput, an envelope is unwrapped.
  CHECK(code_of([] { load_baseline("/nonexistent/dir/base.json"); }) == ExitCode::kIo);
  const std::string path = "test_bench_baseline.json";
  {
    std::ofstream(path) << "{ not json";
  }
  CHECK(code_of([&] { load_baseline(path); }) == ExitCode::kBadInput);
  {
    std::ofstream(path) << Json{{"command", "forward"}, {"result", {{"x", 1}}}}.dump();
  }
  CHECK(code_of([&] { load_baseline(path); }) == ExitCode::kBadInput);
  {
    std::ofstream(path) << Json{{"schema", "rvtemporal.report/1"}, {"command", "bench"}, {"result", current}}.dump();
  }
  CHECK(load_baseline(path)["preset"] == "bench");
  std::remove(path.c_str());
}
