// Where jobs read their inputs: the non-finite scan (first_nonfinite) and the refusal of
// NaN/inf in user files by load_inputs / load_frames unless allow_nonfinite is set.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <span>
#include <stdexcept>
#include <limits>
#include <string>
#include <vector>

#include "rvt/blob/blob.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/io/npy.hpp"
#include "rvt/jobs/forward.hpp"
#include "rvt/jobs/inputs.hpp"
#include "rvt/model/temporal_head.hpp"
#include "test_support.hpp"

using namespace rvt;
using rvt::test::TempDir;

namespace {

namespace fs = std::filesystem;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// The error a callable throws (code and message); fails the test if it throws none.
Error error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  FAIL("no rvt::Error thrown");
  return Error(ExitCode::kInternal, "");
}

}  // namespace

TEST_CASE("first_nonfinite finds the first NaN or inf, any_nonfinite agrees", "[stats]") {
  // Lengths around typical vector widths, a bad value at every position, each kind.
  for (std::size_t n : {1u, 7u, 8u, 15u, 16u, 17u, 33u, 64u, 100u}) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
    REQUIRE_FALSE(first_nonfinite(v).has_value());
    REQUIRE_FALSE(any_nonfinite(v));
    for (float bad : {kNan, -kNan, kInf, -kInf}) {
      for (std::size_t at = 0; at < n; ++at) {
        std::vector<float> w = v;
        w[at] = bad;
        if (at + 2 < n) w[n - 1] = kNan;  // a later one must not win
        REQUIRE(any_nonfinite(w));
        const auto got = first_nonfinite(w);
        REQUIRE(got.has_value());
        REQUIRE(*got == at);
      }
    }
  }
  REQUIRE_FALSE(first_nonfinite(std::span<const float>{}).has_value());
  // Largest finite values and subnormals are finite.
  const std::vector<float> edge = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                   std::numeric_limits<float>::denorm_min(), -0.0f};
  REQUIRE_FALSE(first_nonfinite(edge).has_value());
}

TEST_CASE("require_finite names the file, the value and its position", "[inputs]") {
  std::vector<float> v(4 * 2 * 3, 1.0f);
  jobs::require_finite(v, {4, 2, 3}, "q.npy");  // all finite: no error

  v[1 * 6 + 1 * 3 + 2] = kNan;  // [1, 1, 2], element 11
  v[20] = kInf;                 // later: not reported
  Error e = error_of([&] { jobs::require_finite(v, {4, 2, 3}, "q.npy"); });
  REQUIRE(e.code() == ExitCode::kBadInput);
  REQUIRE(std::string(e.what()) ==
          "q.npy: non-finite value nan at [1, 1, 2] (element 11 of 24); pass --allow-nonfinite to propagate it");

  std::vector<float> f(3 * 5, 0.0f);
  f[2 * 5 + 4] = -kInf;
  e = error_of([&] { jobs::require_finite(f, {3, 5}, "x.npy"); });
  REQUIRE(std::string(e.what()) ==
          "x.npy: non-finite value -inf at [2, 4] (element 14 of 15); pass --allow-nonfinite to propagate it");
  f[2 * 5 + 4] = kInf;
  e = error_of([&] { jobs::require_finite(f, {3, 5}, "x.npy", "<f8"); });
  REQUIRE(std::string(e.what()) ==
          "x.npy: non-finite value inf at [2, 4] (element 14 of 15, a float64 inf or beyond the f32 range); "
          "pass --allow-nonfinite to propagate it");
}

TEST_CASE("load_inputs refuses non-finite Q/K/V files unless allowed, generated inputs are finite", "[inputs]") {
  TempDir dir;
  Tensor q(5, 2, 4), k(5, 1, 4), v(5, 1, 4);
  for (std::size_t i = 0; i < q.size(); ++i) q.data()[i] = 0.01f * static_cast<float>(i);
  for (std::size_t i = 0; i < k.size(); ++i) k.data()[i] = -0.02f * static_cast<float>(i);
  for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = 0.5f;
  v.at(3, 0, 1) = kInf;
  io::write_npy(dir.file("q.npy"), q);
  io::write_npy(dir.file("k.npy"), k);
  io::write_npy(dir.file("v.npy"), v);

  jobs::InputSpec spec;
  spec.q_path = dir.file("q.npy");
  spec.k_path = dir.file("k.npy");
  spec.v_path = dir.file("v.npy");
  const Error e = error_of([&] { (void)jobs::load_inputs(spec); });
  REQUIRE(e.code() == ExitCode::kBadInput);
  REQUIRE(std::string(e.what()) == spec.v_path +
                                       ": non-finite value inf at [3, 0, 1] (element 13 of 20); pass "
                                       "--allow-nonfinite to propagate it");

  spec.allow_nonfinite = true;
  const Qkv x = jobs::load_inputs(spec);
  REQUIRE(std::isinf(x.v.at(3, 0, 1)));
  REQUIRE(x.q.at(4, 1, 3) == q.at(4, 1, 3));

  // The default generator at any seed gives finite values, so the check is not needed there.
  jobs::InputSpec gen;
  gen.seq = 64;
  for (GenKind kind : {GenKind::kNormal, GenKind::kUniform, GenKind::kSincos, GenKind::kStructured}) {
    gen.gen = kind;
    const Qkv g = jobs::load_inputs(gen);
    REQUIRE_FALSE(any_nonfinite(g.q.values()));
    REQUIRE_FALSE(any_nonfinite(g.k.values()));
    REQUIRE_FALSE(any_nonfinite(g.v.values()));
  }
}

TEST_CASE("load_frames refuses non-finite frames unless allowed", "[inputs]") {
  TempDir dir;
  std::vector<float> x(6 * 3, 0.25f);
  x[4 * 3 + 0] = kNan;
  io::write_npy(dir.file("x.npy"), x, {6, 3});
  jobs::FrameSpec spec;
  spec.path = dir.file("x.npy");
  const Error e = error_of([&] { (void)jobs::load_frames(spec, 3); });
  REQUIRE(e.code() == ExitCode::kBadInput);
  REQUIRE(std::string(e.what()) == spec.path +
                                       ": non-finite value nan at [4, 0] (element 12 of 18); pass "
                                       "--allow-nonfinite to propagate it");
  // Shape errors come first: a wrong input_dim is reported as such.
  REQUIRE(std::string(error_of([&] { (void)jobs::load_frames(spec, 4); }).what()).find("input_dim 3") !=
          std::string::npos);
  spec.allow_nonfinite = true;
  const Tensor t = jobs::load_frames(spec, 3);
  REQUIRE(std::isnan(t.at(4, 0, 0)));
  REQUIRE(t.at(5, 0, 2) == 0.25f);
}

TEST_CASE("long_dense_notice announces dense jobs from kLongDenseFlops on", "[forward]") {
  attn::SparseConfig config;  // the defaults (causal)
  auto notice = [&](std::size_t seq, std::size_t heads, std::size_t dim, unsigned passes = 1) {
    return jobs::long_dense_notice("dense attention", {seq, heads, heads, dim}, config, passes);
  };
  // One head at dim 1: 2 N (N + 1) float operations, 1e13 between N = 2236067 and 2236068.
  CHECK(notice(2236067, 1, 1).empty());
  const std::string line = notice(2236068, 1, 1);
  CHECK(line.rfind("dense attention over 2236068 tokens: 1e+13 float operations (the sparse backend's: ", 0) == 0);
  CHECK(line.find("nothing more is printed until it ends") != std::string::npos);
  // The bench preset's shape at 1M tokens: 4 * 32 * 4 * N (N + 1) / 2 = 2.81e14.
  CHECK(notice(1048576, 4, 32).find("1048576 tokens: 2.81e+14 float operations") != std::string::npos);
  // Two passes (a dense decode and the forward it is checked against): 4 N (N + 1).
  CHECK(notice(1581139, 1, 1, 2).find("1581139 tokens: 1e+13") != std::string::npos);
  CHECK(notice(1581138, 1, 1, 2).empty());
  config.causal = false;  // every pair: twice the work
  CHECK(notice(1581139, 1, 1).find("1581139 tokens: 1e+13") != std::string::npos);
  CHECK(notice(1581138, 1, 1).empty());
}

TEST_CASE("long_dense_head_notice counts every layer, the causal decode and the check", "[forward]") {
  const blob::Blob b = blob::parse(blob::init_random_blob(blob::Shape{}, blob::kDefaultSeed, blob::DType::kF32));
  model::HeadConfig hc;  // 4 query heads, dim 32, 2 layers in the default blob: 2 * 4 * 32 * 4 = 1024 per edge
  hc.backend = model::Backend::kDense;
  const model::TemporalHead head = model::TemporalHead::from_blob(b, hc);
  REQUIRE(head.n_layers() == 2);
  using jobs::HeadJob;
  auto notice = [&](const model::TemporalHead& h, std::size_t n, HeadJob job) {
    return jobs::long_dense_head_notice("dense attention", h, n, job);
  };
  // Forward (causal): 1024 * N (N + 1) / 2 = 1e13 between N = 139753 and 139754.
  CHECK(notice(head, 139753, HeadJob::kForward).empty());
  const std::string line = notice(head, 139754, HeadJob::kForward);
  CHECK(line.rfind("temporal head (2 layers), dense attention over 139754 tokens: 1e+13 float operations (the "
                   "sparse backend's: ", 0) == 0);
  // A stream decodes causally; checked, it runs the forward too: twice the work.
  CHECK(notice(head, 139754, HeadJob::kStream).find("1e+13") != std::string::npos);
  CHECK(notice(head, 98821, HeadJob::kCheckedStream).find("98821 tokens: 1e+13") != std::string::npos);
  CHECK(notice(head, 98820, HeadJob::kCheckedStream).empty());

  hc.causal = false;
  const model::TemporalHead bidirectional = model::TemporalHead::from_blob(b, hc);
  CHECK(notice(bidirectional, 98822, HeadJob::kForward).find("1e+13") != std::string::npos);  // N^2 edges
  CHECK(notice(bidirectional, 98821, HeadJob::kForward).empty());
  CHECK(notice(bidirectional, 139753, HeadJob::kStream).empty());  // the decode stays causal
  CHECK(!notice(bidirectional, 139754, HeadJob::kStream).empty());
  // Checked against a forward over each prefix: 1024 * (N (N + 1) / 2 + N (N + 1) (2 N + 1) / 6),
  // past 1e13 from N = 3082; no sparse count.
  CHECK(notice(bidirectional, 3081, HeadJob::kCheckedStream).empty());
  const std::string prefixes = notice(bidirectional, 3082, HeadJob::kCheckedStream);
  CHECK(prefixes == "temporal head (2 layers), dense attention over 3082 tokens: 1e+13 float operations; nothing "
                    "more is printed until it ends");
}
