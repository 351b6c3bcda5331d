// Streaming decode: every streamed row equals forward(), the c7 reference stream, f16
// cache accuracy and size, running block means, H2O eviction, and step errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "rvt/attention/attention.hpp"
#include "rvt/core/error.hpp"
#include "rvt/io/npy.hpp"
#include "rvt/jobs/stream.hpp"
#include "rvt/stream/decoder.hpp"
#include "rvt/tensor/generate.hpp"
#include "test_support.hpp"

using namespace rvt;
using namespace rvt::stream;

namespace {

attn::SparseConfig config(std::size_t window, std::size_t block) {
  attn::SparseConfig c;
  c.window = window;
  c.block_size = block;
  return c;
}

// Streams every token of x through a sparse decoder; returns [seq][q_heads][dim].
Tensor stream_all(const Qkv& x, const attn::SparseConfig& c, KvDType dtype = KvDType::kF32,
                  std::size_t capacity = 0, Evict evict = Evict::kNone) {
  const std::size_t n = x.q.seq();
  SparseDecoder dec(x.q.heads(), KvCache(capacity ? capacity : n, x.k.heads(), x.k.dim(), c.block_size, dtype), c, evict);
  Tensor out(n, x.q.heads(), x.q.dim());
  for (std::size_t t = 0; t < n; ++t) dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.row(t, 0));
  return out;
}


double rel_l1(const Tensor& a, const Tensor& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += std::fabs(double(a.data()[i]) - ref.data()[i]);
    den += std::fabs(double(ref.data()[i]));
  }
  return num / den;
}

}  // namespace

TEST_CASE("streaming every token reproduces forward row by row", "[stream]") {
  struct Case { std::size_t hq, hk, dim, seq, window, block; };
  for (const Case c : {Case{4, 4, 32, 300, 16, 32}, Case{4, 1, 32, 300, 32, 16}, Case{28, 4, 32, 130, 8, 16}}) {
    const Qkv x = generate_qkv(GenKind::kNormal, c.seq, c.hq, c.hk, c.dim, 21);
    const attn::SparseConfig cfg = config(c.window, c.block);
    CHECK(test::max_abs_diff(stream_all(x, cfg), attn::sparse_attention(x.q, x.k, x.v, cfg)) < 1e-5);
  }
}

TEST_CASE("streaming reproduces forward on randomly drawn shapes and patterns", "[stream]") {
  test::RandomDraws draws(20261129);
  for (int draw = 0; draw < 40; ++draw) {
    const test::RandomDraws::Draw d = draws.next(300, 48, false);
    INFO("draw " << draw << " " << d.describe());
    CHECK(test::max_abs_diff(stream_all(d.x, d.config), attn::sparse_attention(d.x.q, d.x.k, d.x.v, d.config)) < 1e-5);
  }
}

TEST_CASE("long streams, where the decoder prefetches far rows, still reproduce forward", "[stream]") {
  // 4500 tokens of 8 kv heads x 64: past 16 MiB of K/V (as f32) the decoder prefetches
  // each step's log-stride rows for the next step, from the f32 or the f16 rows.
  const Qkv x = generate_qkv(GenKind::kNormal, 4500, 8, 8, 64, 23);
  const attn::SparseConfig cfg = config(16, 32);
  const Tensor forward = attn::sparse_attention(x.q, x.k, x.v, cfg);
  CHECK(test::max_abs_diff(stream_all(x, cfg), forward) < 1e-5);
  CHECK(rel_l1(stream_all(x, cfg, KvDType::kF16), forward) < 1e-3);
}

TEST_CASE("non-causal streaming equals the last row of forward at each length", "[stream]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 40, 2, 2, 8, 4);
  attn::SparseConfig cfg = config(4, 8);
  cfg.causal = false;
  cfg.globals = {0, 30};
  const Tensor streamed = stream_all(x, cfg);
  for (std::size_t n : {1u, 9u, 17u, 31u, 40u}) {
    const Qkv prefix{x.q.first_rows(n), x.k.first_rows(n), x.v.first_rows(n)};
    const Tensor f = attn::sparse_attention(prefix.q, prefix.k, prefix.v, cfg);
    for (std::size_t i = 0; i < 16; ++i) REQUIRE(std::fabs(f.row(n - 1, 0)[i] - streamed.row(n - 1, 0)[i]) < 1e-5);
  }
}

TEST_CASE("the c7 reference stream", "[stream][fixtures]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 777, 4, 1, 32, 0x5EED0007);
  const Tensor ref = io::read_npy_tensor(test::data_path("upstream/c7/out_stream.npy"));
  CHECK(test::max_abs_diff(stream_all(x, config(32, 16)), ref) < 1e-5);
}

TEST_CASE("f16 cache: close to f32 and half the K/V bytes", "[stream]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 400, 4, 1, 32, 8);
  const attn::SparseConfig cfg = config(32, 16);
  const Tensor f32 = stream_all(x, cfg, KvDType::kF32);
  const Tensor f16 = stream_all(x, cfg, KvDType::kF16);
  CHECK(rel_l1(f16, f32) < 1e-3);
  CHECK(test::max_abs_diff(f16, f32) > 0.0);
  const KvCache a(4096, 1, 32, 16, KvDType::kF32), b(4096, 1, 32, 16, KvDType::kF16);
  const std::size_t kv32 = 2 * 4096 * 32 * 4, kv16 = 2 * 4096 * 32 * 2;
  CHECK(a.bytes() - b.bytes() == kv32 - kv16);
}

TEST_CASE("running block means: whole blocks are the forward's bit for bit, the open one within an ulp", "[stream]") {
  // 100 rows in blocks of 12 (not a power of two: 1 / 12 is inexact): eight whole blocks and
  // a partial one, at every seventh prefix length.
  const Qkv x = generate_qkv(GenKind::kNormal, 100, 2, 2, 16, 6);
  KvCache cache(100, 2, 16, 12);
  const auto within_an_ulp = [](float got, float want) {
    return got == want || got == std::nextafter(want, -INFINITY) || got == std::nextafter(want, INFINITY);
  };
  for (std::size_t len = 1; len <= 100; ++len) {
    cache.append(x.k.row(len - 1, 0), x.v.row(len - 1, 0));
    if (len % 7 != 0 && len != 100) continue;
    const attn::BlockMeans ref = attn::block_means(x.k.first_rows(len), x.v.first_rows(len), 12);
    for (std::size_t b = 0; b < ref.n_blocks; ++b) {
      REQUIRE(cache.block_counts()[b] == ref.counts[b]);
      const bool whole = ref.counts[b] == 12;
      for (std::size_t h = 0; h < 2; ++h)
        for (std::size_t d = 0; d < 16; ++d) {
          INFO("len " << len << " block " << b << " head " << h << " dim " << d);
          if (whole) {
            REQUIRE(cache.mean_k(b, h)[d] == ref.k_row(b, h)[d]);
            REQUIRE(cache.mean_v(b, h)[d] == ref.v_row(b, h)[d]);
          } else {
            REQUIRE(within_an_ulp(cache.mean_k(b, h)[d], ref.k_row(b, h)[d]));
            REQUIRE(within_an_ulp(cache.mean_v(b, h)[d], ref.v_row(b, h)[d]));
          }
        }
    }
  }
}

TEST_CASE("an inf in a block stays an inf in its mean, as in the forward pass", "[stream]") {
  Qkv x = generate_qkv(GenKind::kNormal, 12, 1, 1, 4, 3);
  x.k.at(4, 0, 1) = std::numeric_limits<float>::infinity();  // block 1 (rows 4 - 7), dim 1
  KvCache cache(12, 1, 4, 4);
  cache.append_all(x.k, x.v);
  const attn::BlockMeans ref = attn::block_means(x.k, x.v, 4);
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t d = 0; d < 4; ++d) REQUIRE(cache.mean_k(b, 0)[d] == ref.k_row(b, 0)[d]);
  CHECK(cache.mean_k(1, 0)[1] == std::numeric_limits<float>::infinity());  // the old running mean: NaN
  CHECK(std::isfinite(cache.mean_k(2, 0)[1]));
}

TEST_CASE("h2o eviction", "[stream][evict]") {
  const attn::SparseConfig cfg = config(8, 8);
  SECTION("protected positions stay, the cache never exceeds capacity, memory is bounded") {
    const std::size_t capacity = 48, n = 10 * capacity;
    const Qkv x = generate_qkv(GenKind::kNormal, n, 2, 1, 16, 9);
    SparseDecoder dec(2, KvCache(capacity, 1, 16, 8), cfg, Evict::kH2O);
    const std::size_t bytes = dec.cache().bytes();
    Tensor out(1, 2, 16);
    for (std::size_t t = 0; t < n; ++t) {
      dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.data());
      const auto pos = dec.cache().positions();
      REQUIRE(dec.cache().len() <= capacity);
      REQUIRE(pos[0] == 0);  // the global token
      const std::size_t keep = std::min<std::size_t>(cfg.window, t + 1);
      for (std::size_t w = 0; w < keep; ++w) REQUIRE(pos[pos.size() - 1 - w] == t - w);  // the newest W
      REQUIRE(std::is_sorted(pos.begin(), pos.end()));
      for (float o : out.values()) REQUIRE(std::isfinite(o));
    }
    CHECK(dec.cache().evicted() == n - capacity);
    CHECK(dec.cache().bytes() == bytes);
  }
  SECTION("globals other than 0 stay protected and attended after evictions move them") {
    attn::SparseConfig c = cfg;
    c.globals = {0, 20};
    const std::size_t capacity = 48, n = 480;
    const Qkv x = generate_qkv(GenKind::kNormal, n, 2, 1, 16, 13);
    SparseDecoder dec(2, KvCache(capacity, 1, 16, 8), c, Evict::kH2O);
    Tensor out(1, 2, 16);
    for (std::size_t t = 0; t < n; ++t) {
      dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.data());
      if (t < 20) continue;
      const auto pos = dec.cache().positions();
      const auto slot = static_cast<std::uint32_t>(std::find(pos.begin(), pos.end(), 20u) - pos.begin());
      REQUIRE(slot < pos.size());  // position 20 is never evicted
      const auto tokens = dec.last_tokens();
      REQUIRE(std::find(tokens.begin(), tokens.end(), slot) != tokens.end());  // and is attended where it now is
    }
    CHECK(dec.cache().evicted() == n - capacity);
  }
  SECTION("a head whose row is NaN credits nothing; the scores stay finite") {
    // Head 1's query is NaN at step 30: its weights are NaN, and crediting them would make
    // every attended slot's score NaN, so that no victim compares lowest any more.
    const std::size_t capacity = 24, n = 60;
    Qkv x = generate_qkv(GenKind::kNormal, n, 2, 1, 16, 17);
    x.q.at(30, 1, 0) = std::numeric_limits<float>::quiet_NaN();
    SparseDecoder dec(2, KvCache(capacity, 1, 16, 8), cfg, Evict::kH2O);
    Tensor out(1, 2, 16);
    for (std::size_t t = 0; t < n; ++t) {
      dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.data());
      REQUIRE(std::isnan(out.row(0, 1)[0]) == (t == 30));
      REQUIRE(std::isfinite(out.row(0, 0)[0]));
      for (float score : dec.cache().scores()) REQUIRE(std::isfinite(score));
    }
    CHECK(dec.cache().evicted() == n - capacity);
  }
  SECTION("the victim is the lowest score, first on ties") {
    KvCache cache(6, 1, 2, 2);
    const float row[2] = {1, 2};
    for (int i = 0; i < 6; ++i) cache.append(row, row);
    for (std::size_t s = 0; s < 6; ++s) cache.add_score(s, 1.0f);
    cache.add_score(1, -0.5f);
    cache.add_score(3, -0.5f);
    const std::vector<std::size_t> globals{0};
    CHECK(cache.h2o_victim(2, globals) == 1);
    cache.evict(1);
    CHECK(std::vector<std::uint64_t>(cache.positions().begin(), cache.positions().end()) ==
          std::vector<std::uint64_t>{0, 2, 3, 4, 5});
    CHECK(cache.h2o_victim(2, globals) == 2);  // position 3 now sits in slot 2
  }
  SECTION("eviction rebuilds block means consistently") {
    const Qkv x = generate_qkv(GenKind::kNormal, 12, 1, 1, 4, 2);
    KvCache cache(12, 1, 4, 4);
    cache.append_all(x.k, x.v);
    cache.evict(2);
    // Recompute the means of slots [4, 8) = positions 5..8 directly.
    for (std::size_t d = 0; d < 4; ++d) {
      float m = 0;
      for (std::size_t p = 5; p < 9; ++p) m += x.k.at(p, 0, d);
      REQUIRE(std::fabs(cache.mean_k(1, 0)[d] - m / 4) < 1e-6);
    }
    CHECK(cache.block_counts()[2] == 3);
  }
  SECTION("with capacity >= stream length eviction changes nothing") {
    const Qkv x = generate_qkv(GenKind::kNormal, 200, 2, 2, 8, 5);
    CHECK(test::max_abs_diff(stream_all(x, cfg, KvDType::kF32, 200, Evict::kH2O), stream_all(x, cfg)) == 0.0);
  }
}

TEST_CASE("dense decode reproduces dense forward", "[stream]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 120, 4, 2, 16, 3);
  DenseDecoder dec(4, KvCache(120, 2, 16, 16));
  Tensor out(120, 4, 16);
  for (std::size_t t = 0; t < 120; ++t) dec.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.row(t, 0));
  CHECK(test::max_abs_diff(out, attn::dense_attention(x.q, x.k, x.v, true)) < 1e-5);
}

TEST_CASE("decode step errors", "[stream]") {
  using test::code_of;
  const attn::SparseConfig cfg = config(4, 8);
  SparseDecoder dec(4, KvCache(2, 2, 8, 8), cfg);
  CHECK(code_of([&] { dec.step(Tensor(2, 4, 8), Tensor(2, 2, 8), Tensor(2, 2, 8)); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { dec.step(Tensor(1, 4, 8), Tensor(1, 1, 8), Tensor(1, 1, 8)); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { dec.step(Tensor(1, 4, 4), Tensor(1, 2, 4), Tensor(1, 2, 4)); }) == ExitCode::kBadInput);
  CHECK(code_of([&] { dec.step(Tensor(1, 4, 8), Tensor(1, 2, 8), Tensor(1, 2, 8)); }) == ExitCode::kOk);
  CHECK(code_of([&] { dec.step(Tensor(1, 4, 8), Tensor(1, 2, 8), Tensor(1, 2, 8)); }) == ExitCode::kOk);
  CHECK(code_of([&] { dec.step(Tensor(1, 4, 8), Tensor(1, 2, 8), Tensor(1, 2, 8)); }) == ExitCode::kUsage);  // full
  CHECK(code_of([&] { SparseDecoder(4, KvCache(8, 2, 8, 16), cfg); }) == ExitCode::kUsage);  // block mismatch
  CHECK(code_of([&] { SparseDecoder(3, KvCache(8, 2, 8, 8), cfg); }) == ExitCode::kUsage);   // GQA
  CHECK(code_of([&] { SparseDecoder(4, KvCache(5, 2, 8, 8), cfg, Evict::kH2O); }) == ExitCode::kUsage);
}

// The stream job's parity used to compare a non-causal stream with the full forward, whose
// row t also sees tokens after t: a correct stream reported errors of order 1.
TEST_CASE("stream job: non-causal parity is against the last row of each prefix's forward", "[stream]") {
  jobs::AttentionStreamRequest req;
  req.input.seq = 70;
  req.input.q_heads = 4;
  req.input.kv_heads = 2;
  req.input.dim = 8;
  req.input.seed = 11;
  req.sparse = config(4, 8);
  req.sparse.globals = {0, 30};
  SECTION("non-causal") {
    req.sparse.causal = false;
    const jobs::JobResult r = jobs::run_attention_stream(req);
    CHECK(r.result["parity"]["max_abs_err"].get<double>() < 1e-5);
    CHECK(r.result["parity"]["against"].get<std::string>().find("prefix") != std::string::npos);
    // The same rows, from forward() over each prefix.
    const Qkv x = generate_qkv(GenKind::kNormal, 70, 4, 2, 8, 11);
    const Tensor streamed = stream_all(x, req.sparse);
    for (std::size_t n : {1u, 8u, 9u, 33u, 70u}) {
      const Qkv prefix{x.q.first_rows(n), x.k.first_rows(n), x.v.first_rows(n)};
      const Tensor f = attn::sparse_attention(prefix.q, prefix.k, prefix.v, req.sparse);
      for (std::size_t i = 0; i < 32; ++i) REQUIRE(std::fabs(f.row(n - 1, 0)[i] - streamed.row(n - 1, 0)[i]) < 1e-5);
    }
  }
  SECTION("landmark mass mode, non-causal") {
    req.sparse.causal = false;
    req.sparse.landmark_mode = attn::LandmarkMode::kMass;
    CHECK(jobs::run_attention_stream(req).result["parity"]["max_abs_err"].get<double>() < 1e-5);
  }
  SECTION("causal: against the full forward") {
    const jobs::JobResult r = jobs::run_attention_stream(req);
    CHECK(r.result["parity"]["max_abs_err"].get<double>() < 1e-5);
    CHECK(r.result["parity"]["against"] == "forward");
  }
}
