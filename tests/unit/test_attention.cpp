// Dense and sparse attention: reference properties, the fixtures of the Rust toolchain,
// an f64 dense reference, GQA head mapping, and bad inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "rvt/attention/attention.hpp"
#include "rvt/core/error.hpp"
#include "rvt/io/npy.hpp"
#include "rvt/tensor/generate.hpp"
#include "test_support.hpp"

using namespace rvt;
using namespace rvt::attn;

namespace {

struct Diff {
  double max_abs = 0.0, mean_abs = 0.0;
};

Diff diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  Diff d;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]);
    d.max_abs = std::max(d.max_abs, e);
    d.mean_abs += e;
  }
  if (a.size() > 0) d.mean_abs /= static_cast<double>(a.size());
  return d;
}

SparseConfig only_window(std::size_t window) {
  SparseConfig c;
  c.window = window;
  c.block_size = 32;
  c.globals.clear();
  c.log_stride = false;
  c.landmarks = false;
  return c;
}

// Dense attention in f64, straight from the definition.
Tensor dense_f64(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const std::size_t n = q.seq(), hq = q.heads(), hk = k.heads(), dim = q.dim(), group = hq / hk;
  Tensor out(n, hq, dim);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t h = 0; h < hq; ++h) {
      const std::size_t count = causal ? i + 1 : n;
      std::vector<double> s(count);
      double mx = -1e300;
      for (std::size_t j = 0; j < count; ++j) {
        double acc = 0.0;
        for (std::size_t d = 0; d < dim; ++d) acc += double(q.at(i, h, d)) * k.at(j, h / group, d);
        s[j] = acc * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0.0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (std::size_t d = 0; d < dim; ++d) {
        double acc = 0.0;
        for (std::size_t j = 0; j < count; ++j) acc += s[j] * v.at(j, h / group, d);
        out.at(i, h, d) = static_cast<float>(acc / sum);
      }
    }
  }
  return out;
}

// K/V with each kv head repeated `group` times: the MHA equivalent of a GQA call.
Tensor repeat_heads(const Tensor& t, std::size_t group) {
  Tensor out(t.seq(), t.heads() * group, t.dim());
  for (std::size_t s = 0; s < t.seq(); ++s)
    for (std::size_t h = 0; h < out.heads(); ++h)
      for (std::size_t d = 0; d < t.dim(); ++d) out.at(s, h, d) = t.at(s, h / group, d);
  return out;
}

Tensor load(const std::string& rel) { return io::read_npy_tensor(test::data_path(rel)); }

}  // namespace

TEST_CASE("sparse with a pattern covering everything equals dense", "[attention]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 48, 4, 4, 16, 7);
  const Tensor dense = dense_attention(x.q, x.k, x.v, true);
  CHECK(diff(sparse_attention(x.q, x.k, x.v, only_window(48)), dense).max_abs < 1e-6);
  SparseConfig nc = only_window(48);
  nc.causal = false;
  CHECK(diff(sparse_attention(x.q, x.k, x.v, nc), dense_attention(x.q, x.k, x.v, false)).max_abs < 1e-6);
}

TEST_CASE("saturated case with landmarks on stays close to dense", "[attention]") {
  // N 32, 4 heads, dim 16, W 32, B 32: landmarks add one mean entry per row once a block
  // completes; the reference reports about 1.5e-5.
  const Qkv x = generate_qkv(GenKind::kSincos, 32, 4, 4, 16, 0);
  SparseConfig c;
  c.window = 32;
  c.block_size = 32;
  const Diff d = diff(sparse_attention(x.q, x.k, x.v, c), dense_attention(x.q, x.k, x.v, true));
  CHECK(d.max_abs < 1e-4);
  CHECK(d.max_abs > 0.0);  // the landmark does count
}

TEST_CASE("sincos N 256: sparse vs dense error matches the reference", "[attention]") {
  const Qkv x = generate_qkv(GenKind::kSincos, 256, 4, 4, 16, 0);
  SparseConfig c;
  c.window = 16;
  c.block_size = 32;
  const Diff d = diff(sparse_attention(x.q, x.k, x.v, c), dense_attention(x.q, x.k, x.v, true));
  CHECK(d.max_abs == Approx(5.22e-3).epsilon(0.01));
  CHECK(d.mean_abs == Approx(1.79e-3).epsilon(0.01));
}

TEST_CASE("degenerate patterns give V", "[attention]") {
  SECTION("a single token attends to itself") {
    const Qkv x = generate_qkv(GenKind::kNormal, 1, 2, 2, 8, 3);
    CHECK(diff(sparse_attention(x.q, x.k, x.v, SparseConfig{}), x.v).max_abs == 0.0);
    CHECK(diff(dense_attention(x.q, x.k, x.v, true), x.v).max_abs == 0.0);
  }
  SECTION("W = 0 with no other primitive") {
    const Qkv x = generate_qkv(GenKind::kNormal, 20, 2, 2, 8, 3);
    CHECK(diff(sparse_attention(x.q, x.k, x.v, only_window(0)), x.v).max_abs == 0.0);
  }
  SECTION("an out-of-range global changes nothing") {
    const Qkv x = generate_qkv(GenKind::kNormal, 40, 2, 2, 8, 3);
    SparseConfig a;
    a.window = 4;
    a.block_size = 8;
    SparseConfig b = a;
    b.globals = {0, 40, 1000};
    CHECK(diff(sparse_attention(x.q, x.k, x.v, a), sparse_attention(x.q, x.k, x.v, b)).max_abs == 0.0);
  }
  SECTION("an empty sequence gives an empty output") {
    const Qkv x = generate_qkv(GenKind::kNormal, 0, 2, 2, 8, 3);
    CHECK(sparse_attention(x.q, x.k, x.v, SparseConfig{}).size() == 0);
    CHECK(dense_attention(x.q, x.k, x.v, true).size() == 0);
  }
}

TEST_CASE("GQA and MQA equal MHA with repeated K/V heads", "[attention][gqa]") {
  struct Case { std::size_t hq, hk, dim, seq; };
  for (const Case c : {Case{28, 4, 128, 70}, Case{32, 4, 64, 70}, Case{4, 1, 32, 90}, Case{4, 4, 16, 50}}) {
    const Qkv x = generate_qkv(GenKind::kNormal, c.seq, c.hq, c.hk, c.dim, 11);
    const std::size_t group = c.hq / c.hk;
    const Tensor k_rep = repeat_heads(x.k, group), v_rep = repeat_heads(x.v, group);
    SparseConfig cfg;
    cfg.window = 8;
    cfg.block_size = 8;
    CHECK(diff(sparse_attention(x.q, x.k, x.v, cfg), sparse_attention(x.q, k_rep, v_rep, cfg)).max_abs == 0.0);
    CHECK(diff(dense_attention(x.q, x.k, x.v, true), dense_attention(x.q, k_rep, v_rep, true)).max_abs == 0.0);
  }
}

TEST_CASE("dense agrees with an f64 computation", "[attention]") {
  for (bool causal : {true, false}) {
    const Qkv x = generate_qkv(GenKind::kNormal, 97, 6, 2, 24, 5);
    CHECK(diff(dense_attention(x.q, x.k, x.v, causal), dense_f64(x.q, x.k, x.v, causal)).max_abs < 2e-6);
  }
}

TEST_CASE("results do not depend on the thread count", "[attention]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 301, 4, 2, 16, 9);
  SparseConfig c;
  c.window = 16;
  c.block_size = 16;
  const Tensor one = sparse_attention(x.q, x.k, x.v, c, {1});
  for (unsigned t : {2u, 3u, 8u}) CHECK(diff(one, sparse_attention(x.q, x.k, x.v, c, {t})).max_abs == 0.0);
  const Tensor d1 = dense_attention(x.q, x.k, x.v, true, {1});
  CHECK(diff(d1, dense_attention(x.q, x.k, x.v, true, {3})).max_abs == 0.0);
}

TEST_CASE("the normal generator reproduces the fixture inputs bit for bit", "[attention][fixtures]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 257, 2, 2, 16, 0x5EED0003);
  CHECK(diff(x.q, load("upstream/c3/q.npy")).max_abs == 0.0);
  CHECK(diff(x.k, load("upstream/c3/k.npy")).max_abs == 0.0);
  CHECK(diff(x.v, load("upstream/c3/v.npy")).max_abs == 0.0);
}

TEST_CASE("reference outputs of the Rust toolchain", "[attention][fixtures]") {
  SECTION("c1: MHA, default config, causal") {
    const Qkv x = generate_qkv(GenKind::kNormal, 1000, 3, 3, 24, 0x5EED0001);
    SparseConfig c;  // window 128, block 64, globals [0]
    CHECK(diff(sparse_attention(x.q, x.k, x.v, c), load("upstream/c1/out_sparse.npy")).max_abs < 1e-5);
    CHECK(diff(dense_attention(x.q, x.k, x.v, true), load("upstream/c1/out_dense.npy")).max_abs < 1e-5);
  }
  SECTION("c3: non-causal, globals [0, 5, 999]") {
    const Tensor q = load("upstream/c3/q.npy"), k = load("upstream/c3/k.npy"), v = load("upstream/c3/v.npy");
    SparseConfig c;
    c.window = 8;
    c.block_size = 8;
    c.causal = false;
    c.globals = {0, 5, 999};
    CHECK(diff(sparse_attention(q, k, v, c), load("upstream/c3/out_sparse.npy")).max_abs < 1e-5);
    CHECK(diff(dense_attention(q, k, v, false), load("upstream/c3/out_dense.npy")).max_abs < 1e-5);
  }
  SECTION("c7: AETHER MQA 4:1") {
    const Qkv x = generate_qkv(GenKind::kNormal, 777, 4, 1, 32, 0x5EED0007);
    SparseConfig c;
    c.window = 32;
    c.block_size = 16;
    CHECK(diff(sparse_attention(x.q, x.k, x.v, c), load("upstream/c7/out_sparse.npy")).max_abs < 1e-5);
  }
}

TEST_CASE("bad inputs are rejected with bad-input errors", "[attention]") {
  using test::code_of;
  const Tensor q(10, 4, 8), k(10, 2, 8), v(10, 2, 8);
  CHECK(code_of([&] { dense_attention(q, Tensor(9, 2, 8), Tensor(9, 2, 8), true); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { dense_attention(q, Tensor(10, 2, 4), Tensor(10, 2, 4), true); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { dense_attention(q, k, Tensor(10, 2, 4), true); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { dense_attention(q, Tensor(10, 3, 8), Tensor(10, 3, 8), true); }) == ExitCode::kBadInput);
  SparseConfig zero_block;
  zero_block.block_size = 0;
  CHECK(code_of([&] { sparse_attention(q, k, v, zero_block); }) == ExitCode::kUsage);
  CHECK(code_of([&] { sparse_attention(q, k, v, SparseConfig{}); }) == ExitCode::kOk);
}
