// The parity suites: each passes on its defaults, a tightened gate fails and names the
// worst element, gate and sweep parsing, request checks, the f64 oracles and weight maps,
// and the pictures.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include <unistd.h>

#include "rvt/attention/attention.hpp"
#include "rvt/core/error.hpp"
#include "rvt/io/npy.hpp"
#include "rvt/metrics/metrics.hpp"
#include "rvt/parity/oracle.hpp"
#include "rvt/parity/parity.hpp"
#include "rvt/parity/plots.hpp"
#include "rvt/report/svg.hpp"
#include "test_support.hpp"

using namespace rvt;
using rvt::test::TempDir;
using namespace rvt::parity;

namespace {

Request request_for(const std::string& suites, const std::string& gates = "") {
  Request r;
  r.suites = parse_suites(suites);
  r.threads = 2;
  if (!gates.empty()) r.gates = parse_gates(gates, suite_names());
  return r;
}

using test::code_of;

void check_suite_passes(const std::string& name) {
  const Request r = request_for(name);
  const SuiteResult s = run_suite(name, r);
  INFO(name);
  CHECK(s.name == name);
  REQUIRE_FALSE(s.cases.empty());
  for (const Case& c : s.cases) {
    INFO(c.name);
    if (c.gating) {  // the sweep's grid rows may fail: only its summary decides
      CHECK(c.pass);
      CHECK_FALSE(c.gates.empty());  // every gating case checks something
    }
    CHECK(c.get("nonfinite").value_or(-1.0) == 0.0);
  }
  CHECK(s.pass());
}

}  // namespace

TEST_CASE("suite saturated passes on defaults", "[parity]") { check_suite_passes("saturated"); }
TEST_CASE("suite realistic passes on defaults", "[parity]") { check_suite_passes("realistic"); }
TEST_CASE("suite stream passes on defaults", "[parity]") { check_suite_passes("stream"); }
TEST_CASE("suite gqa passes on defaults", "[parity]") { check_suite_passes("gqa"); }
TEST_CASE("suite reference passes on defaults", "[parity]") { check_suite_passes("reference"); }
TEST_CASE("suite model passes on defaults", "[parity]") { check_suite_passes("model"); }
TEST_CASE("suite landmarks passes on defaults", "[parity]") { check_suite_passes("landmarks"); }
TEST_CASE("suite sweep passes on defaults", "[parity]") { check_suite_passes("sweep"); }

TEST_CASE("the strict preset passes on defaults and is tighter", "[parity]") {
  Request strict = request_for("stream");
  strict.preset = GatePreset::kStrict;
  const SuiteResult s = run_suite("stream", strict);
  const SuiteResult d = run_suite("stream", request_for("stream"));
  CHECK(s.pass());
  REQUIRE(s.cases.size() == d.cases.size());
  bool tighter = false;
  for (std::size_t i = 0; i < s.cases.size(); ++i) {
    for (const GateResult& gs : s.cases[i].gates) {
      for (const GateResult& gd : d.cases[i].gates) {
        if (gs.metric == gd.metric && gs.bound < gd.bound) tighter = true;
      }
    }
  }
  CHECK(tighter);
}

TEST_CASE("a tightened gate fails and names the worst element", "[parity]") {
  const Request r = request_for("realistic", "max_abs=1e-12");
  const Report rep = run_parity(r);
  CHECK_FALSE(rep.pass());
  CHECK(rep.failed_count() == 1);
  const Case& c = rep.suites.at(0).cases.at(0);
  CHECK_FALSE(c.pass);
  REQUIRE(c.worst.valid);
  // The worst element is the largest |sparse - dense| of the same computation done here.
  const Qkv x = generate_qkv(GenKind::kStructured, 512, 4, 4, 32, 0x5EED);
  attn::SparseConfig cfg;
  cfg.window = 32;
  cfg.block_size = 16;
  const metrics::Comparison want = metrics::compare(attn::sparse_attention(x.q, x.k, x.v, cfg),
                                                    attn::dense_attention(x.q, x.k, x.v, true));
  CHECK(c.worst.pos == want.worst.pos);
  CHECK(c.worst.head == want.worst.head);
  CHECK(c.worst.dim == want.worst.dim);
  CHECK(c.worst.abs_err == Approx(want.max_abs_err).epsilon(1e-6));
  const std::string line = rep.failure_line();
  CHECK(line.find("realistic/sparse_vs_dense") != std::string::npos);
  CHECK(line.find("max_abs") != std::string::npos);
  CHECK(line.find("> 1e-12") != std::string::npos);
  CHECK(line.find("worst element " + metrics::element_text(want.worst)) != std::string::npos);
  const Json j = rep.json();
  CHECK(j["pass"] == false);
  REQUIRE(j["failures"].size() == 1);
  CHECK(j["failures"][0]["suite"] == "realistic");
  CHECK(j["failures"][0]["metric"] == "max_abs");
  CHECK(j["failures"][0]["source"] == "user");
  CHECK(j["failures"][0]["worst"]["pos"] == want.worst.pos);
  CHECK(rep.markdown().find("**FAIL**") != std::string::npos);
}

TEST_CASE("a lower-bound gate fails below its bound", "[parity]") {
  const Report rep = run_parity(request_for("model", "top1=1.01"));  // unreachable
  CHECK_FALSE(rep.pass());
  CHECK(rep.failure_line().find("top1") != std::string::npos);
  CHECK(rep.failure_line().find(" < 1.01") != std::string::npos);
}

TEST_CASE("non-finite inputs are refused, or with allow_nonfinite fail the always-on nonfinite gate", "[parity]") {
  TempDir dir;
  Qkv x = generate_qkv(GenKind::kNormal, 40, 2, 2, 8, 1);
  x.v.at(7, 1, 3) = std::numeric_limits<float>::quiet_NaN();
  const std::string q = (dir.path / "q.npy").string(), k = (dir.path / "k.npy").string(),
                    v = (dir.path / "v.npy").string();
  io::write_npy(q, x.q);
  io::write_npy(k, x.k);
  io::write_npy(v, x.v);
  Request r = request_for("realistic");
  r.q_path = q;
  r.k_path = k;
  r.v_path = v;
  // By default the file is refused where it is read, naming the first bad element.
  try {
    (void)run_parity(r);
    FAIL("non-finite input accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kBadInput);
    CHECK(std::string(e.what()).find(v + ": non-finite value nan at [7, 1, 3]") == 0);
  }
  r.allow_nonfinite = true;
  const Report rep = run_parity(r);
  CHECK_FALSE(rep.pass());
  const Case& c = rep.suites[0].cases[0];
  CHECK(c.get("nonfinite").value() > 0.0);
  REQUIRE(c.worst.valid);
  // The first non-finite pair is the worst element (sparse or dense side: both are NaN from
  // position 7 on in head 1, and a kernel may also spread it to earlier rows).
  CHECK_FALSE((std::isfinite(c.worst.got) && std::isfinite(c.worst.want)));
  CHECK(c.worst.head == 1);
  CHECK(c.worst.pos <= 7);
  CHECK(rep.failure_line().find("nonfinite") != std::string::npos);
}

TEST_CASE("gate parsing", "[parity][gates]") {
  const auto g = parse_gates("max_abs=1e-4, cosine=0.98,stream.rel_l1=off", suite_names());
  REQUIRE(g.size() == 3);
  CHECK((g[0].metric == "max_abs" && g[0].suite.empty() && *g[0].bound == 1e-4));
  CHECK((g[1].metric == "cosine" && *g[1].bound == 0.98));
  CHECK((g[2].suite == "stream" && g[2].metric == "rel_l1" && !g[2].bound));
  CHECK(find_metric("max_abs")->bound == Bound::kUpper);
  CHECK(find_metric("cosine")->bound == Bound::kLower);
  CHECK(find_metric("spearman")->bound == Bound::kLower);
  CHECK(find_metric("top1")->bound == Bound::kLower);
  CHECK(find_metric("nmse")->bound == Bound::kUpper);
  CHECK(find_metric("rmse")->bound == Bound::kUpper);
  CHECK(find_metric("bogus") == nullptr);
  for (const char* bad : {"max_abs", "max_abs=", "=1", "bogus=1", "max_abs=abc", "max_abs=1e-4x", "max_abs=1,",
                          "nosuite.max_abs=1", "max_abs=inf", "max_abs=nan", ""}) {
    INFO(bad);
    CHECK(code_of([&] { parse_gates(bad, suite_names()); }) == ExitCode::kUsage);
  }
  CHECK(gate_passes(Bound::kUpper, 1.0, 1.0));
  CHECK_FALSE(gate_passes(Bound::kUpper, 1.5, 1.0));
  CHECK(gate_passes(Bound::kLower, 1.0, 1.0));
  CHECK_FALSE(gate_passes(Bound::kLower, 0.5, 1.0));
  CHECK_FALSE(gate_passes(Bound::kUpper, std::numeric_limits<double>::infinity(), 1e300));
  CHECK_FALSE(gate_passes(Bound::kLower, std::numeric_limits<double>::quiet_NaN(), -1.0));
}

TEST_CASE("user gates replace, add, drop and scope", "[parity][gates]") {
  // Drop the built-in max_abs gate of the stream suite only; add rmse everywhere.
  const SuiteResult s = run_suite("stream", request_for("stream", "stream.max_abs=off,rmse=1"));
  for (const Case& c : s.cases) {
    bool has_max = false, has_rmse = false;
    for (const GateResult& g : c.gates) {
      has_max = has_max || g.metric == "max_abs";
      has_rmse = has_rmse || (g.metric == "rmse" && g.user);
    }
    CHECK_FALSE(has_max);
    CHECK(has_rmse);
  }
  // A gate scoped to another suite leaves this one alone.
  const SuiteResult t = run_suite("saturated", request_for("saturated,stream", "stream.max_abs=1e-30"));
  CHECK(t.pass());
  // A later item wins.
  const SuiteResult u = run_suite("saturated", request_for("saturated", "max_abs=1e-30,max_abs=1"));
  CHECK(u.pass());
}

TEST_CASE("request checks", "[parity]") {
  CHECK(code_of([] { parse_suites("nope"); }) == ExitCode::kUsage);
  CHECK(code_of([] { parse_suites(""); }) == ExitCode::kUsage);
  CHECK(parse_suites("all") == suite_names());
  CHECK(parse_suites("sweep,gqa") == std::vector<std::string>{"gqa", "sweep"});
  CHECK(parse_suites("all,stream") == suite_names());  // "all" in a list: every suite (was "unknown suite 'all'")
  CHECK(code_of([] { validate(request_for("realistic", "top1=0.9")); }) == ExitCode::kUsage);
  CHECK(code_of([] { validate(request_for("realistic", "stream.max_abs=1")); }) == ExitCode::kUsage);
  CHECK(code_of([] { validate(request_for("model", "model.mapping_errors=0")); }) == ExitCode::kUsage);
  CHECK(code_of([] { validate(request_for("model,gqa", "mapping_errors=0")); }) == ExitCode::kOk);
  Request r = request_for("realistic");
  r.sweep = parse_sweep({"window=8"});
  CHECK(code_of([&] { validate(r); }) == ExitCode::kUsage);
  r = request_for("gqa");
  r.plot_dir = "/tmp";
  CHECK(code_of([&] { validate(r); }) == ExitCode::kUsage);
  r = request_for("realistic");
  r.q_path = "q.npy";
  CHECK(code_of([&] { validate(r); }) == ExitCode::kUsage);
  r = request_for("model");
  r.blob_path = "/nonexistent/blob.rvne";
  CHECK(code_of([&] { run_parity(r); }) == ExitCode::kIo);
  r = request_for("realistic");
  r.q_heads = 3;
  r.kv_heads = 2;
  CHECK(code_of([&] { run_parity(r); }) == ExitCode::kUsage);
}

TEST_CASE("sweep parsing and the best setting", "[parity][sweep]") {
  const auto axes = parse_sweep({"window=8,16 block=8;landmarks=mean,mass,off", "log_stride=on,off"});
  REQUIRE(axes.size() == 4);
  CHECK(axes[0].values == std::vector<std::string>{"8", "16"});
  CHECK(axes[2].values == std::vector<std::string>{"mean", "mass", "off"});
  for (std::vector<std::string> bad : {std::vector<std::string>{"window"}, {"speed=1"}, {"window=8", "window=16"},
                                       {"block=0"}, {"window=-1"}, {"landmarks=maybe"}, {"log_stride=1"},
                                       {"window=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "block=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"}}) {
    CHECK(code_of([&] { parse_sweep(bad); }) == ExitCode::kUsage);
  }
  // Every setting passes: the best is the sparsest.
  Request r = request_for("sweep", "cosine=off,rel_l1=off");
  r.seq = 128;
  r.sweep = parse_sweep({"window=4,16", "block=8,32"});
  SuiteResult s = run_suite("sweep", r);
  REQUIRE(s.cases.size() == 5);
  REQUIRE(s.table.size() == 4);
  double best_sparsity = -1;
  std::string best_name;
  for (const Case& c : s.cases) {
    if (c.gating) continue;
    CHECK(c.pass);
    if (*c.get("sparsity") > best_sparsity) {
      best_sparsity = *c.get("sparsity");
      best_name = c.name;
    }
  }
  CHECK(best_name == "window4_block32");
  CHECK(s.cases.back().name == "best");
  CHECK(s.cases.back().config["chosen"] == best_name);
  CHECK(s.pass());
  // Nothing passes: the sweep fails and its summary names the closest setting.
  r.gates = parse_gates("cosine=0.999999", suite_names());
  s = run_suite("sweep", r);
  CHECK_FALSE(s.pass());
  CHECK_FALSE(s.cases.back().pass);
  for (const Json& row : s.table) CHECK(row["best"] == false);
}

TEST_CASE("f64 oracles agree with the kernels", "[parity][oracle]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 80, 4, 2, 16, 3);
  attn::SparseConfig c;
  c.window = 8;
  c.block_size = 8;
  for (bool causal : {true, false}) {
    c.causal = causal;
    CHECK(metrics::max_abs_err(dense_f64(x.q, x.k, x.v, causal).values(),
                               attn::dense_attention(x.q, x.k, x.v, causal).values()) < 2e-6);
    CHECK(metrics::max_abs_err(sparse_f64(x.q, x.k, x.v, c).values(), attn::sparse_attention(x.q, x.k, x.v, c).values()) <
          2e-6);
  }
  c.causal = true;
  c.landmark_mode = attn::LandmarkMode::kMass;
  CHECK(metrics::max_abs_err(sparse_f64(x.q, x.k, x.v, c).values(), attn::sparse_attention(x.q, x.k, x.v, c).values()) <
        2e-6);
}

TEST_CASE("weight maps reproduce the outputs", "[parity][oracle]") {
  // Effective sparse weights (landmarks spread over their blocks) times V must give the
  // sparse output; dense weights times V the dense output; every row sums to 1.
  const Qkv x = generate_qkv(GenKind::kStructured, 70, 4, 2, 16, 5);
  attn::SparseConfig c;
  c.window = 6;
  c.block_size = 8;
  for (attn::LandmarkMode mode : {attn::LandmarkMode::kMean, attn::LandmarkMode::kMass}) {
    c.landmark_mode = mode;
    const Tensor sparse = attn::sparse_attention(x.q, x.k, x.v, c);
    const Tensor dense = attn::dense_attention(x.q, x.k, x.v, true);
    for (std::size_t h : {0u, 3u}) {
      const WeightMap ws = sparse_weights(x.q, x.k, h, c, 70), wd = dense_weights(x.q, x.k, h, true, 70);
      double worst_s = 0, worst_d = 0, worst_sum = 0;
      for (std::size_t i = 0; i < 70; ++i) {
        double sum = 0;
        for (std::size_t j = 0; j < 70; ++j) sum += ws.at(i, j);
        worst_sum = std::max(worst_sum, std::fabs(sum - 1.0));
        CHECK(wd.at(i, std::min<std::size_t>(i + 1, 69)) == (i == 69 ? wd.at(i, 69) : 0.0));  // causal
        for (std::size_t d = 0; d < 16; ++d) {
          double acc_s = 0, acc_d = 0;
          for (std::size_t j = 0; j < 70; ++j) {
            acc_s += ws.at(i, j) * x.v.at(j, h / 2, d);
            acc_d += wd.at(i, j) * x.v.at(j, h / 2, d);
          }
          worst_s = std::max(worst_s, std::fabs(acc_s - sparse.at(i, h, d)));
          worst_d = std::max(worst_d, std::fabs(acc_d - dense.at(i, h, d)));
        }
      }
      CHECK(worst_s < 1e-5);
      CHECK(worst_d < 1e-5);
      CHECK(worst_sum < 1e-12);
    }
  }
}

TEST_CASE("pictures", "[parity][plots]") {
  attn::SparseConfig c;
  c.window = 4;
  c.block_size = 8;
  c.globals = {0, 5};
  const std::string p = pattern_svg(64, c, 0, "caption & <escaped>");
  CHECK(p.rfind("<?xml", 0) == 0);
  CHECK(p.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  for (const char* label : {"local window", "global token", "log-stride token", "landmark block", "key position j",
                            "query position i", "caption &amp; &lt;escaped&gt;"}) {
    CHECK(p.find(label) != std::string::npos);
  }
  // Row 20 sees the window 16..20 (one run of 5 cells), the globals 0 and 5, and the
  // strides 12 and 4 (20-8, 20-16; 1, 2 and 4 back fall in the window): all in the path data.
  CHECK(p.find("M16 20h5v1h-5z") != std::string::npos);
  CHECK(p.find("M5 20h1v1h-1z") != std::string::npos);
  CHECK(p.find("M12 20h1v1h-1z") != std::string::npos);
  // A long sequence is cut to the first 512 rows, not refused.
  CHECK(pattern_svg(2000, attn::SparseConfig{}, 0, "").find("first 512 shown") != std::string::npos);
  const Qkv x = generate_qkv(GenKind::kStructured, 40, 2, 2, 8, 1);
  const std::string m = attention_maps_svg(dense_weights(x.q, x.k, 1, true, 40), sparse_weights(x.q, x.k, 1, c, 40),
                                           1, "");
  CHECK(m.find("dense (exact softmax)") != std::string::npos);
  CHECK(m.find("1e-4") != std::string::npos);
  const std::vector<double> err{0.0, 1e-3, std::numeric_limits<double>::infinity(), 2e-5};
  const std::string e = error_heatmap_svg(err, 2, 2, "");
  CHECK(e.find("#e53e3e") != std::string::npos);  // the non-finite cell is red
  CHECK(e.find("query position") != std::string::npos);
  CHECK(report::nice_ticks(0, 512, 6) == std::vector<double>{0, 100, 200, 300, 400, 500});
  const std::vector<double> fifths = report::nice_ticks(0.2, 0.8, 6);  // 0.2, 0.4, 0.6, 0.8: the end counts
  REQUIRE(fifths.size() == 4);
  CHECK(fifths.back() == Approx(0.8));
  // A step finer than the doubles near lo: the ticks once looped forever there (t += step
  // did not move); now they are at most 1000, or lo alone.
  CHECK(report::nice_ticks(1e16, 1e16 + 4, 6).size() <= 1000);
  CHECK(report::nice_ticks(1.0, std::numeric_limits<double>::infinity(), 6) == std::vector<double>{1.0});
  CHECK(report::num(0.125) == "0.125");
  CHECK(report::num(12.0) == "12");
  CHECK(report::viridis(0.0).hex() == "#440154");
  CHECK(report::viridis(1.0).hex() == "#fde725");
}

TEST_CASE("plot files are written atomically into plot_dir", "[parity][plots]") {
  TempDir dir;
  Request r = request_for("realistic,sweep");
  r.seq = 96;
  r.plot_dir = (dir.path / "plots").string();  // created: its parent exists
  const Report rep = run_parity(r);
  REQUIRE(rep.plots.size() == 4);
  for (const std::string& f : rep.plots) {
    CHECK(std::filesystem::file_size(f) > 1000);
    CHECK(std::filesystem::path(f).parent_path() == dir.path / "plots");
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.path / "plots")) {
    CHECK(entry.path().string().find(".tmp.") == std::string::npos);
  }
  r.plot_dir = (dir.path / "missing" / "plots").string();
  CHECK(code_of([&] { run_parity(r); }) == ExitCode::kIo);
}
