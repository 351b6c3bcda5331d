// Accuracy metrics on hand-computed cases, their degenerate inputs, the worst element,
// per-head breakdowns, ranks/Spearman, and the structured generator's concentration.
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "rvt/attention/attention.hpp"
#include "rvt/core/error.hpp"
#include "rvt/metrics/metrics.hpp"
#include "rvt/tensor/generate.hpp"

using namespace rvt;
using namespace rvt::metrics;

namespace {

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInfF = std::numeric_limits<float>::infinity();

Tensor tensor(std::size_t seq, std::size_t heads, std::size_t dim, const std::vector<float>& values) {
  Tensor t(seq, heads, dim);
  REQUIRE(values.size() == t.size());
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

}  // namespace

TEST_CASE("metrics on a hand-computed pair", "[metrics]") {
  // got - want = (1, -2, 0, 3); |want| = (1, 2, 3, 4)
  const std::vector<float> got{2, 0, 3, 7}, want{1, 2, 3, 4};
  CHECK(max_abs_err(got, want) == 3.0);
  CHECK(mean_abs_err(got, want) == Approx(6.0 / 4.0));
  CHECK(rmse(got, want) == Approx(std::sqrt(14.0 / 4.0)));
  CHECK(rel_l1(got, want) == Approx(6.0 / 10.0));
  CHECK(nmse(got, want) == Approx(14.0 / 30.0));
  // dot = 2 + 0 + 9 + 28 = 39; |got| = sqrt(62), |want| = sqrt(30)
  CHECK(cosine(got, want) == Approx(39.0 / std::sqrt(62.0 * 30.0)));
}

TEST_CASE("identical inputs score perfectly", "[metrics]") {
  const std::vector<float> a{0.5f, -1.25f, 3.0f, 1e-3f};
  CHECK(max_abs_err(a, a) == 0.0);
  CHECK(rmse(a, a) == 0.0);
  CHECK(rel_l1(a, a) == 0.0);
  CHECK(nmse(a, a) == 0.0);
  CHECK(cosine(a, a) == 1.0);  // exactly: a cosine=1 gate passes bit-identical outputs
  const std::vector<float> neg{-0.5f, 1.25f, -3.0f, -1e-3f};
  CHECK(cosine(neg, a) == -1.0);
  // Many sizes and magnitudes, each exactly 1 (two square roots multiplied missed by an ulp).
  std::uint64_t state = 12345;
  for (std::size_t n = 1; n <= 4096; n = n * 3 + 1) {
    for (const float scale : {1e-30f, 1e-3f, 1.0f, 7.5f, 1e30f}) {
      std::vector<float> x(n);
      for (float& v : x) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        v = scale * (static_cast<float>(state >> 40) / static_cast<float>(1u << 24) - 0.5f);
      }
      CHECK(cosine(x, x) == 1.0);
    }
  }
}

TEST_CASE("degenerate inputs have documented values", "[metrics]") {
  SECTION("empty") {
    const std::vector<float> e;
    CHECK(max_abs_err(e, e) == 0.0);
    CHECK(mean_abs_err(e, e) == 0.0);
    CHECK(rmse(e, e) == 0.0);
    CHECK(rel_l1(e, e) == 0.0);
    CHECK(nmse(e, e) == 0.0);
    CHECK(cosine(e, e) == 1.0);
    const Comparison c = compare(Tensor(0, 2, 3), Tensor(0, 2, 3));
    CHECK(c.count == 0);
    CHECK_FALSE(c.worst.valid);
    CHECK(c.per_head.size() == 2);
  }
  SECTION("zero reference") {
    const std::vector<float> zero{0, 0, 0}, some{0, 1, 0};
    CHECK(rel_l1(zero, zero) == 0.0);
    CHECK(nmse(zero, zero) == 0.0);
    CHECK(std::isinf(rel_l1(some, zero)));
    CHECK(std::isinf(nmse(some, zero)));
    CHECK(cosine(zero, zero) == 1.0);
    CHECK(cosine(some, zero) == 0.0);
    CHECK(cosine(zero, some) == 0.0);
    CHECK(number_json(rel_l1(some, zero)).is_null());
  }
  SECTION("lengths must agree") {
    const std::vector<float> a{1, 2}, b{1};
    CHECK_THROWS_AS(max_abs_err(a, b), Error);
    CHECK_THROWS_AS(compare(Tensor(2, 1, 1), Tensor(1, 2, 1)), Error);
  }
}

TEST_CASE("non-finite pairs are counted and left out of the sums", "[metrics]") {
  const std::vector<float> got{1, kNan, 3, 4}, want{1, 2, kInfF, 5};
  CHECK(max_abs_err(got, want) == 1.0);  // only pairs 0 and 3 count
  CHECK(mean_abs_err(got, want) == 0.5);
  const Comparison c = compare(tensor(4, 1, 1, got), tensor(4, 1, 1, want));
  CHECK(c.count == 2);
  CHECK(c.nonfinite_got == 1);
  CHECK(c.nonfinite_want == 1);
  CHECK(c.nonfinite() == 2);
  REQUIRE(c.worst.valid);
  CHECK(c.worst.pos == 1);  // the first non-finite pair beats any finite error
  CHECK(std::isnan(c.worst.got));
  CHECK(std::isinf(c.worst.abs_err));
  const report::Json j = element_json(c.worst);
  CHECK(j["got"].is_null());
  CHECK(j["finite"] == false);
  CHECK(element_text(c.worst) == "pos 1 head 0 dim 0: got nan want 2 (non-finite)");
  const std::vector<float> nan_both{kNan};
  CHECK(element_text(compare(tensor(1, 1, 1, nan_both), tensor(1, 1, 1, nan_both)).worst) ==
        "pos 0 head 0 dim 0: got nan want nan (non-finite)");
}

TEST_CASE("non-finite pairs and those whose two sides differ", "[metrics]") {
  const float inf = std::numeric_limits<float>::infinity();
  Accumulator a;
  const std::vector<std::pair<float, float>> pairs{
      {1, 1}, {kNan, kNan}, {inf, inf}, {-inf, -inf}, {kNan, 2}, {3, inf}, {kNan, inf}, {inf, -inf}};
  for (std::size_t i = 0; i < pairs.size(); ++i) a.add(i, pairs[i].first, pairs[i].second);
  CHECK(a.count == 1);
  CHECK(a.nonfinite_pairs == 7);
  CHECK(a.nonfinite_mismatches == 4);  // the last four
}

TEST_CASE("the worst element and the per-head breakdown", "[metrics]") {
  // [seq 2][heads 2][dim 3]; element (t, h, d) at (t*2 + h)*3 + d.
  Tensor want(2, 2, 3), got(2, 2, 3);
  for (std::size_t i = 0; i < want.size(); ++i) want.data()[i] = got.data()[i] = static_cast<float>(i) + 1.0f;
  got.at(1, 0, 2) += 0.5f;   // head 0
  got.at(0, 1, 1) -= 0.25f;  // head 1
  got.at(1, 1, 0) += 0.25f;  // head 1, a tie with the one above: the first stays
  const Comparison c = compare(got, want);
  CHECK(c.count == 12);
  CHECK(c.max_abs_err == 0.5);
  REQUIRE(c.worst.valid);
  CHECK((c.worst.pos == 1 && c.worst.head == 0 && c.worst.dim == 2));
  CHECK(c.worst.index == 8);
  CHECK(c.worst.got == Approx(9.5));
  CHECK(c.worst.want == Approx(9.0));
  REQUIRE(c.per_head.size() == 2);
  CHECK(c.per_head[0].max_abs_err == 0.5);
  CHECK(c.per_head[1].max_abs_err == 0.25);
  CHECK((c.per_head[1].worst.pos == 0 && c.per_head[1].worst.head == 1 && c.per_head[1].worst.dim == 1));
  // head 0 holds values 1..3 and 7..9 (sum 30), head 1 4..6 and 10..12 (sum 48)
  CHECK(c.per_head[0].rel_l1 == Approx(0.5 / 30.0));
  CHECK(c.per_head[1].rel_l1 == Approx(0.5 / 48.0));
  CHECK(c.rel_l1 == Approx(1.0 / 78.0));
  CHECK(element_text(c.worst) == "pos 1 head 0 dim 2: got 9.5 want 9 (|err| 0.5)");
  const std::vector<double> map = max_abs_err_map(got, want);
  CHECK(map == std::vector<double>{0.0, 0.25, 0.5, 0.25});
}

TEST_CASE("sparsity", "[metrics]") {
  CHECK(sparsity(25, 100) == 0.75);
  CHECK(sparsity(100, 100) == 0.0);
  CHECK(sparsity(0, 0) == 0.0);
}

TEST_CASE("ranks, Spearman and argmax", "[metrics]") {
  const std::vector<float> v{10, 30, 20, 20};
  CHECK(ranks(v) == std::vector<double>{1.0, 4.0, 2.5, 2.5});
  const std::vector<float> a{1, 2, 3, 4}, b{10, 20, 30, 40}, r{4, 3, 2, 1}, swap{1, 3, 2, 4};
  CHECK(spearman(a, b) == Approx(1.0));
  CHECK(spearman(a, r) == Approx(-1.0));
  // one adjacent swap of 4: rho = 1 - 6 * 2 / (4 * 15) = 0.8
  CHECK(spearman(a, swap) == Approx(0.8));
  const std::vector<float> flat{2, 2, 2, 2};
  CHECK(spearman(flat, flat) == 1.0);
  CHECK(spearman(flat, a) == 0.0);
  CHECK(spearman(std::vector<float>{5}, std::vector<float>{1}) == 1.0);
  CHECK(argmax(v) == 1);
  CHECK(argmax(std::vector<float>{kNan, 1, 3, 3}) == 2);
  CHECK(argmax(std::vector<float>{}) == 0);
}

TEST_CASE("structured inputs concentrate attention, normal inputs do not", "[metrics][generate]") {
  // Sparse attention over window + globals that include the generator's sinks and a window
  // that reaches the recall distance (36) should be close to dense on structured inputs and
  // far from it on normal inputs of the same shape.
  attn::SparseConfig c;
  c.window = 40;
  c.block_size = 16;
  c.globals = structured_sinks(384, 0x5EED);
  REQUIRE(c.globals.size() == 3);
  CHECK(c.globals[0] == 0);
  const Qkv s = generate_qkv(GenKind::kStructured, 384, 6, 2, 32, 0x5EED);
  const Qkv n = generate_qkv(GenKind::kNormal, 384, 6, 2, 32, 0x5EED);
  const double rel_structured = compare(attn::sparse_attention(s.q, s.k, s.v, c),
                                        attn::dense_attention(s.q, s.k, s.v, true)).rel_l1;
  const double rel_normal = compare(attn::sparse_attention(n.q, n.k, n.v, c),
                                    attn::dense_attention(n.q, n.k, n.v, true)).rel_l1;
  CHECK(rel_structured < 0.05);
  CHECK(rel_normal > 0.5);
}

TEST_CASE("the structured generator is seeded and deterministic", "[generate]") {
  const Qkv a = generate_qkv(GenKind::kStructured, 100, 4, 2, 16, 7);
  const Qkv b = generate_qkv(GenKind::kStructured, 100, 4, 2, 16, 7);
  const Qkv c = generate_qkv(GenKind::kStructured, 100, 4, 2, 16, 8);
  CHECK(max_abs_err(a.q.values(), b.q.values()) == 0.0);
  CHECK(max_abs_err(a.v.values(), b.v.values()) == 0.0);
  CHECK(max_abs_err(a.k.values(), c.k.values()) > 0.0);
  for (float x : a.k.values()) CHECK(std::fabs(x) < 1.2f);  // fits an f16 cache comfortably
  CHECK(parse_gen_kind("structured") == GenKind::kStructured);
  CHECK(std::string(gen_kind_name(GenKind::kStructured)) == "structured");
  CHECK_THROWS_AS(parse_gen_kind("structure"), Error);
  for (std::size_t dim : {1u, 2u, 3u, 5u}) {  // small dims keep what fits, never crash
    const Qkv t = generate_qkv(GenKind::kStructured, 20, 2, 1, dim, 1);
    for (float x : t.q.values()) CHECK(std::isfinite(x));
  }
  const Tensor frames = generate_frames(GenKind::kStructured, 50, 16, 3);
  CHECK((frames.seq() == 50 && frames.heads() == 1 && frames.dim() == 16));
  const std::vector<std::size_t> sinks = structured_sinks(1, 3);
  CHECK(sinks == std::vector<std::size_t>{0});
}
