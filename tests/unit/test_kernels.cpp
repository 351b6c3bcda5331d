// Every fast path (each ISA this machine has) against the scalar reference kernels:
// dense and sparse forward over many head dims (full vectors, partial tails, the wide-head
// fallback), causal and not, GQA, mass landmarks, and f16/f32 decode steps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <vector>

#include "rvt/attention/attention.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/half.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/kernels/fast.hpp"
#include "rvt/kernels/reference.hpp"
#include "rvt/stream/decoder.hpp"
#include "rvt/tensor/generate.hpp"

#include "test_support.hpp"

using namespace rvt;
using kernels::Isa;

namespace {

std::vector<Isa> fast_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (kernels::isa_supported(isa)) out.push_back(isa);
  }
  return out;
}


}  // namespace

TEST_CASE("ISA names, parsing and support", "[kernels]") {
  CHECK(kernels::parse_isa("avx512") == Isa::kAvx512);
  CHECK_THROWS_AS(kernels::parse_isa("neon"), Error);
  CHECK(kernels::isa_supported(Isa::kScalar));
  CHECK(kernels::resolve_isa(Isa::kScalar) == Isa::kScalar);
  CHECK(kernels::kernel_table(Isa::kScalar) == nullptr);
  for (Isa isa : fast_isas()) {
    REQUIRE(kernels::kernel_table(isa) != nullptr);
    CHECK(kernels::kernel_table(isa)->isa == isa);
  }
  if (!kernels::isa_supported(Isa::kAvx512)) {
    try {
      kernels::resolve_isa(Isa::kAvx512);
      FAIL("an unsupported ISA must be refused");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::kUnsupported);
    }
  }
  WARN("fast ISAs on this machine: " << fast_isas().size());
}

TEST_CASE("to_half gives f32_to_f16's halves bit for bit", "[kernels]") {
  // Every upper 16 bits (sign, exponent, the mantissa's top 7) with low halves around the
  // rounding point (bit 12 of the mantissa: below, at and above the tie, odd and even), so
  // every exponent, the subnormal and overflow edges, infinities and NaN payloads; an odd
  // length, so that the scalar tail runs too. (All 2^32 floats agreed once, 2026-11-30.)
  std::vector<float> x;
  for (std::uint32_t hi = 0; hi < 0x10000u; ++hi) {
    for (std::uint32_t lo : {0x0000u, 0x0001u, 0x0FFFu, 0x1000u, 0x1001u, 0x2000u, 0x3000u, 0xFFFFu, 0x7A5Bu}) {
      x.push_back(std::bit_cast<float>((hi << 16) | lo));
    }
  }
  x.push_back(1.0f);
  std::vector<std::uint16_t> want(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) want[i] = f32_to_f16(x[i]);
  for (Isa isa : fast_isas()) {
    INFO("isa " << kernels::isa_name(isa));
    std::vector<std::uint16_t> got(x.size());
    kernels::kernel_table(isa)->to_half(x.data(), x.size(), got.data());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < x.size(); ++i) differ += got[i] != want[i];
    CHECK(differ == 0);
  }
}

TEST_CASE("fast dense and sparse kernels agree with the scalar reference", "[kernels]") {
  for (Isa isa : fast_isas()) {
    // Dense heads past 8 vectors (AVX-512) or 2 (AVX2) sum V in chunks; past 64 vectors
    // (1040 on AVX-512, 520 on AVX2) they take the scalar loop.
    for (std::size_t dim : {4u, 8u, 16u, 24u, 32u, 40u, 64u, 72u, 128u, 136u, 200u, 264u, 520u, 1040u}) {
      for (bool causal : {true, false}) {
        INFO("isa " << kernels::isa_name(isa) << " dim " << dim << " causal " << causal);
        const std::size_t seq = dim > 128 ? 37 : 150;
        const Qkv x = generate_qkv(GenKind::kNormal, seq, 6, 2, dim, dim * 7 + (causal ? 1 : 0));
        const attn::ExecOptions ref{1, Isa::kScalar}, fast{1, isa};
        CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, causal, fast),
                      attn::dense_attention(x.q, x.k, x.v, causal, ref)) < 2e-6);
        attn::SparseConfig c;
        c.window = 9;
        c.block_size = 8;
        c.causal = causal;
        c.globals = {0, 3};
        // The tiled kernel sums scores over dim in two chains, the reference in one: at
        // dim 128 the outputs differ by up to ~2.3e-6, and the rounding grows as sqrt(dim)
        // (dim 1040: up to 4.2e-6).
        const double tolerance = 4e-6 * std::max(1.0, std::sqrt(static_cast<double>(dim) / 128.0));
        CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast), attn::sparse_attention(x.q, x.k, x.v, c, ref)) <
              tolerance);
        c.landmark_mode = attn::LandmarkMode::kMass;
        CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast), attn::sparse_attention(x.q, x.k, x.v, c, ref)) <
              tolerance);
      }
    }
  }
}

TEST_CASE("fast dense kernel: keys in several ranges, odd row counts", "[kernels]") {
  // The dense kernel feeds keys to a work item's row groups in ranges of 32 KiB of K and V
  // (64 keys at dim 64 on both ISAs; at dim 200 one softmax step, 16 or 32 keys): 1100 keys
  // make 18 ranges (35 or 69 at dim 200, its V sums in chunks), the last one partial, and
  // rows whose causal extent ends inside each of them.
  for (Isa isa : fast_isas()) {
    for (std::size_t dim : {64u, 200u}) {
      for (bool causal : {true, false}) {
        INFO("isa " << kernels::isa_name(isa) << " dim " << dim << " causal " << causal);
        const Qkv x = generate_qkv(GenKind::kNormal, 1100, 2, 1, dim, causal ? 5 : 6);
        const attn::ExecOptions ref{1, Isa::kScalar}, fast{2, isa};
        CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, causal, fast),
                                 attn::dense_attention(x.q, x.k, x.v, causal, ref)) < 2e-6);
      }
    }
  }
}

TEST_CASE("tiled sparse kernel: short, odd and tile-straddling sequences, wide windows, mass or no landmarks",
          "[kernels]") {
  for (Isa isa : fast_isas()) {
    for (std::size_t seq : {1u, 2u, 15u, 16u, 17u, 33u, 100u, 257u}) {
      for (bool causal : {true, false}) {
        for (std::size_t window : {0u, 3u, 16u, 40u, 300u}) {
          // Block 16, a multiple of the lanes: causal tiles on the shifted grid (TileGrid).
          for (std::size_t block : {5u, 16u}) {
            INFO("isa " << kernels::isa_name(isa) << " seq " << seq << " causal " << causal << " window " << window
                        << " block " << block);
            const Qkv x = generate_qkv(GenKind::kNormal, seq, 4, 2, 20, seq * 31 + window);
            const attn::ExecOptions ref{1, Isa::kScalar}, fast{2, isa};
            attn::SparseConfig c;
            c.window = window;  // 300: columns built tile by tile (attention.cpp, TileColumnSet)
            c.block_size = block;
            c.causal = causal;
            c.globals = {seq / 2, 0, seq / 2, seq + 4};  // a duplicate and one out of range
            CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast),
                                     attn::sparse_attention(x.q, x.k, x.v, c, ref)) < 4e-6);
            c.landmark_mode = attn::LandmarkMode::kMass;  // + log2(count) per block, covered blocks dropped
            CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast),
                                     attn::sparse_attention(x.q, x.k, x.v, c, ref)) < 4e-6);
            c.landmark_mode = attn::LandmarkMode::kMean;
            c.landmarks = false;
            c.log_stride = window != 3;
            CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast),
                                     attn::sparse_attention(x.q, x.k, x.v, c, ref)) < 4e-6);
          }
        }
      }
    }
  }
}

TEST_CASE("tiled sparse kernel: windows past 256, their columns built tile by tile, match the reference",
          "[kernels]") {
  // Past TileColumnSet::kMaxBuiltWindow each worker builds a tile's columns as it runs it;
  // sequences longer than the window, so that most tiles hold the whole window. One and two
  // workers: with GQA 4:2 each takes a kv head, with MQA 4:1 they split the head's tiles.
  for (Isa isa : fast_isas()) {
    for (std::size_t window : {257u, 300u, 520u}) {
      for (bool causal : {true, false}) {
        for (attn::LandmarkMode mode : {attn::LandmarkMode::kMean, attn::LandmarkMode::kMass}) {
          const std::size_t kv_heads = mode == attn::LandmarkMode::kMean ? 2 : 1;
          INFO("isa " << kernels::isa_name(isa) << " window " << window << " causal " << causal << " mode "
                      << attn::landmark_mode_name(mode) << " kv heads " << kv_heads);
          const Qkv x = generate_qkv(GenKind::kNormal, 1100, 4, kv_heads, 20, window + causal);
          attn::SparseConfig c;
          c.window = window;
          c.block_size = 48;
          c.causal = causal;
          c.landmark_mode = mode;
          c.globals = {0, 700};
          const Tensor want = attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{1, Isa::kScalar});
          for (unsigned threads : {1u, 2u}) {
            CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{threads, isa}), want) <
                  4e-6);
          }
        }
      }
    }
  }
}

namespace {
// The bench preset's pattern: window 16, blocks of 32.
attn::SparseConfig bench_pattern() {
  attn::SparseConfig c;
  c.window = 16;
  c.block_size = 32;
  return c;
}

// The tiled kernel on x with the bench preset's pattern against the scalar reference, on every
// fast ISA with each thread count.
void check_bench_pattern_against_reference(const Qkv& x, std::initializer_list<unsigned> thread_counts) {
  const attn::SparseConfig c = bench_pattern();
  const Tensor want = attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{1, Isa::kScalar});
  for (Isa isa : fast_isas()) {
    for (unsigned threads : thread_counts) {
      INFO("isa " << kernels::isa_name(isa) << " threads " << threads);
      CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{threads, isa}), want) < 4e-6);
    }
  }
}
}  // namespace

TEST_CASE("tiled sparse kernel: outputs past 256 KiB, written with streaming stores, match the reference", "[kernels]") {
  // 1100 x 4 x 32 floats (563 KB): the tiles stream whole output lines on AVX-512, one
  // thread and with the heads split between two and three workers.
  check_bench_pattern_against_reference(generate_qkv(GenKind::kNormal, 1100, 4, 4, 32, 59), {1u, 2u, 3u});
}

TEST_CASE("tiled sparse kernel: past 2 MiB of V rows a kv head, the values come from a copy and match the reference",
          "[kernels]") {
  // 16500 x 32 floats of V per kv head (2.1 MB): each worker copies its head's V rows into
  // one contiguous run before the tiles (attention.cpp, copy_values). GQA 2:1, a sequence that
  // ends inside a tile, one and two workers.
  const Qkv x = generate_qkv(GenKind::kNormal, 16500, 4, 2, 32, 61);
  check_bench_pattern_against_reference(x, {1u, 2u});
  // At this size the workers' shares of the kv heads turn from call to call (attention.cpp,
  // share_turn): consecutive calls, each with the heads on other workers, give the one-thread
  // output bit for bit; two workers with a head each, and three with three heads (every turn).
  const attn::SparseConfig c = bench_pattern();
  const Qkv three = generate_qkv(GenKind::kNormal, 16500, 3, 3, 32, 62);
  for (Isa isa : fast_isas()) {
    for (const auto& [in, threads] : {std::pair<const Qkv&, unsigned>{x, 2u}, {three, 3u}}) {
      const Tensor one = attn::sparse_attention(in.q, in.k, in.v, c, attn::ExecOptions{1, isa});
      for (int call = 0; call < 3; ++call) {
        INFO("isa " << kernels::isa_name(isa) << " threads " << threads << " call " << call);
        CHECK(test::max_abs_diff(attn::sparse_attention(in.q, in.k, in.v, c, attn::ExecOptions{threads, isa}), one) ==
              0.0f);
      }
    }
  }
}

TEST_CASE("tiled sparse kernel: a masked lane weighs exactly 0, even against a huge value row", "[kernels]") {
  // Global token 40 is in the future of rows 0 - 39, so their lanes of its column are masked.
  // Its V row is 1e38: a masked lane weighing anything but 0 (2^-126 would do) shows up in
  // rows 32 - 39, which share a tile with the rows that do see it. The softmax relies on
  // vexp2(-inf) being exactly 0 (vec.hpp).
  constexpr std::size_t kSeq = 64, kGlobal = 40;
  Qkv x = generate_qkv(GenKind::kNormal, kSeq, 2, 2, 32, 67);
  for (std::size_t h = 0; h < 2; ++h) std::fill_n(x.v.row(kGlobal, h), 32, 1e38f);
  attn::SparseConfig c;
  c.window = 4;
  c.block_size = 16;
  c.globals = {kGlobal};
  // Rows kGlobal on do see the huge row: compare the rows before it, the rest zeroed.
  auto rows_before_global = [&](Tensor t) {
    std::fill(t.values().begin() + kGlobal * 2 * 32, t.values().end(), 0.0f);
    return t;
  };
  const Tensor want = rows_before_global(attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{1, Isa::kScalar}));
  for (Isa isa : fast_isas()) {
    INFO("isa " << kernels::isa_name(isa));
    CHECK(test::max_abs_diff(rows_before_global(attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{1, isa})),
                             want) < 4e-6);
  }
}

TEST_CASE("tiled sparse kernel: several workers give the single-worker result exactly", "[kernels]") {
  const attn::SparseConfig c = bench_pattern();
  // Each way of sharing the work: one head long enough that its tiles are split (one worker
  // per 2048 rows times query heads); GQA with three kv heads, workers taking whole kv heads
  // (2 workers: 2 + 1 heads; 3: one each); five kv heads, where a worker done with its heads
  // helps run the tiles of another's (OwnedWork); MQA, one kv head whose tiles (three query
  // heads each) are split between workers.
  const std::vector<Qkv> inputs{generate_qkv(GenKind::kNormal, 5000, 1, 1, 16, 41),
                                generate_qkv(GenKind::kNormal, 700, 6, 3, 32, 43),
                                generate_qkv(GenKind::kNormal, 3000, 5, 5, 32, 53),
                                generate_qkv(GenKind::kNormal, 2100, 3, 1, 32, 47)};
  for (Isa isa : fast_isas()) {
    for (const Qkv& x : inputs) {
      INFO("isa " << kernels::isa_name(isa) << " seq " << x.q.seq() << " heads " << x.q.heads() << ":" << x.k.heads());
      const Tensor one = attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{1, isa});
      for (unsigned threads : {2u, 3u}) {
        CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{threads, isa}), one) == 0.0);
      }
    }
  }
}

TEST_CASE("SIMD transposes write exactly the scalar layouts", "[kernels]") {
  for (Isa isa : fast_isas()) {
    const kernels::KernelTable& table = *kernels::kernel_table(isa);
    for (std::size_t n : {1u, 7u, 16u, 17u, 40u, 300u}) {
      for (std::size_t dim : {1u, 8u, 16u, 20u, 33u}) {
        INFO("isa " << kernels::isa_name(isa) << " n " << n << " dim " << dim);
        const std::size_t stride = dim + 3;  // rows of a wider tensor, as a kv head's are
        std::vector<float> x(n * stride);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f - 7.0f;
        // Key tiles: against transpose_key_tiles, in two calls split at a tile
        // boundary, as the threads split it; rows at their own positions and one on (the
        // sparse kernel's causal grid, attention/tile_pattern.hpp).
        for (std::size_t shift : {0u, 1u}) {
          INFO("shift " << shift);
          const std::size_t positions = n + shift;
          const std::size_t floats = kernels::tile_floats(positions, dim, table.lanes);
          std::vector<float> want(floats), got(floats, -1.0f);  // padding lanes: the kernel writes 0
          kernels::transpose_key_tiles(x.data(), stride, n, shift, dim, table.lanes, want.data());
          const std::size_t split = std::min(positions, table.lanes * 2);
          table.transpose_tiles(x.data(), stride, shift, 0, split, dim, got.data());
          table.transpose_tiles(x.data(), stride, shift, split, positions, dim, got.data());
          CHECK(got == want);
        }
      }
    }
  }
}

TEST_CASE("SIMD block means are bit-identical to the scalar loop", "[kernels]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 203, 2, 3, 36, 5);  // 3 x 36 = 108 floats per row: a partial piece
  for (Isa isa : fast_isas()) {
    for (std::size_t block : {1u, 7u, 64u, 500u}) {
      const attn::BlockMeans scalar = attn::block_means(x.k, x.v, block, 1);
      const attn::BlockMeans fast = attn::block_means(x.k, x.v, block, 2, kernels::kernel_table(isa));
      CHECK(fast.counts == scalar.counts);
      CHECK(std::equal(fast.k.begin(), fast.k.end(), scalar.k.begin(), scalar.k.end()));
      CHECK(std::equal(fast.v.begin(), fast.v.end(), scalar.v.begin(), scalar.v.end()));
    }
  }
}

TEST_CASE("KernelTable::block_means: every element run and block count, bit-identical to block_means_ref",
          "[kernels]") {
  // Element runs of 1 - 5 vectors and a remainder (one kv head's dim 32 is two vectors on
  // AVX-512: two blocks per pass), blocks of 1 - 33 rows, a partial last block, and rows
  // read with a stride and an offset (one kv head of a wider row, as the sparse pass reads).
  const std::size_t stride = 103, offset = 5;
  std::vector<float> x(260 * stride);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i))) * 3.0f;
  for (Isa isa : fast_isas()) {
    const kernels::KernelTable& table = *kernels::kernel_table(isa);
    for (std::size_t len : {3u, 16u, 32u, 40u, 48u, 64u, 72u, 98u}) {
      for (std::size_t block : {1u, 5u, 32u, 33u}) {
        for (std::size_t rows : {1u, 32u, 33u, 200u, 257u}) {
          INFO("isa " << kernels::isa_name(isa) << " len " << len << " block " << block << " rows " << rows);
          const std::size_t blocks = (rows + block - 1) / block, out_stride = len + 7;
          std::vector<float> want(blocks * out_stride, -1.0f), got(want);
          kernels::block_means_ref(x.data() + offset, stride, block, rows, len, want.data(), out_stride);
          table.block_means(x.data() + offset, stride, block, rows, len, got.data(), out_stride);
          CHECK(got == want);  // the gaps between blocks' outputs untouched (-1) in both
        }
      }
    }
  }
}

TEST_CASE("block means over many work items: every block, partial last one", "[kernels]") {
  // 1000 tokens in blocks of 24: 42 blocks, the last of 16 tokens; workers take runs of
  // blocks, so several runs and a short last run. Checked against sums written out here.
  const Qkv x = generate_qkv(GenKind::kNormal, 1000, 2, 2, 16, 9);
  const std::size_t block = 24, row = 2 * 16;
  std::vector<const kernels::KernelTable*> tables{nullptr};
  for (Isa isa : fast_isas()) tables.push_back(kernels::kernel_table(isa));
  for (const kernels::KernelTable* table : tables) {
    for (unsigned threads : {1u, 3u}) {
      const attn::BlockMeans m = attn::block_means(x.k, x.v, block, threads, table);
      REQUIRE(m.n_blocks == 42);
      bool all = true;
      for (std::size_t b = 0; b < m.n_blocks; ++b) {
        const std::size_t count = std::min<std::size_t>(block, 1000 - b * block);
        all &= m.counts[b] == count;
        for (std::size_t e = 0; e < row; ++e) {
          float k = 0.0f, v = 0.0f;  // token order
          for (std::size_t t = b * block; t < b * block + count; ++t) {
            k += x.k.data()[t * row + e];
            v += x.v.data()[t * row + e];
          }
          all &= m.k[b * row + e] == k / static_cast<float>(count) && m.v[b * row + e] == v / static_cast<float>(count);
        }
      }
      CHECK(all);
    }
  }
}

TEST_CASE("fast kernels agree with the scalar reference on randomly drawn shapes and patterns", "[kernels]") {
  test::RandomDraws draws(20261129);
  for (int draw = 0; draw < 60; ++draw) {
    const test::RandomDraws::Draw d = draws.next(700, 72, true);
    const Qkv& x = d.x;
    const attn::SparseConfig& c = d.config;
    const Tensor dense_ref = attn::dense_attention(x.q, x.k, x.v, c.causal, attn::ExecOptions{1, Isa::kScalar});
    const Tensor sparse_ref = attn::sparse_attention(x.q, x.k, x.v, c, attn::ExecOptions{1, Isa::kScalar});
    const auto threads = static_cast<unsigned>(draws.pick(1, 3));  // before the ISA loop: the draws are the same on every host
    for (Isa isa : fast_isas()) {
      const attn::ExecOptions fast{threads, isa};
      INFO("draw " << draw << " isa " << kernels::isa_name(isa) << " threads " << fast.threads << " " << d.describe());
      CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, c.causal, fast), dense_ref) < 4e-6);
      CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast), sparse_ref) < 4e-6);
    }
  }
}

TEST_CASE("fast kernels: large scores and threads", "[kernels]") {
  for (Isa isa : fast_isas()) {
    Qkv x = generate_qkv(GenKind::kNormal, 300, 4, 4, 32, 17);
    // Peaked softmax: exercises the max subtraction. Scores reach ~50, where one f32 ulp of a
    // score is ~4e-6, so any two summation orders differ by ~1e-5 in the output.
    for (float& f : x.q.values()) f *= 30.0f;
    const attn::ExecOptions ref{1, Isa::kScalar};
    for (unsigned threads : {1u, 2u, 5u}) {
      const attn::ExecOptions fast{threads, isa};
      CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, true, fast), attn::dense_attention(x.q, x.k, x.v, true, ref)) <
            1e-4);
      CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, fast),
                    attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, ref)) < 1e-4);
    }
    const attn::ExecOptions one{1, isa}, three{3, isa};
    CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, true, one), attn::dense_attention(x.q, x.k, x.v, true, three)) ==
          0.0);
    CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, one),
                             attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, three)) == 0.0);
  }
}

TEST_CASE("fast decode steps agree with the scalar reference, f32 and f16 caches", "[kernels][stream]") {
  // The row kernel sums the output in chunks of 8 vectors: dim 40 is one chunk on both ISAs,
  // 200 two or four, 520 three or nine (its q scaled after the dot products, past 16 vectors).
  attn::SparseConfig c;
  c.window = 16;
  c.block_size = 16;
  for (std::size_t dim : {40u, 200u, 520u}) {
    const std::size_t steps = dim > 40 ? 80 : 200;
    const Qkv x = generate_qkv(GenKind::kNormal, steps, 4, 1, dim, 23 + dim);
    const double tolerance = 2e-6 * std::max(1.0, std::sqrt(static_cast<double>(dim) / 128.0));
    for (Isa isa : fast_isas()) {
      for (auto dtype : {stream::KvDType::kF32, stream::KvDType::kF16}) {
        stream::SparseDecoder fast(4, stream::KvCache(steps, 1, dim, 16, dtype), c, stream::Evict::kNone, isa);
        stream::SparseDecoder ref(4, stream::KvCache(steps, 1, dim, 16, dtype), c, stream::Evict::kNone, Isa::kScalar);
        Tensor a(1, 4, dim), b(1, 4, dim);
        double worst = 0;
        for (std::size_t t = 0; t < steps; ++t) {
          fast.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), a.data());
          ref.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), b.data());
          worst = std::max(worst, test::max_abs_diff(a, b));
        }
        INFO("isa " << kernels::isa_name(isa) << " dtype " << stream::kv_dtype_name(dtype) << " dim " << dim);
        CHECK(worst < tolerance);
        // The dense baseline decode runs the same row kernel over every slot.
        stream::DenseDecoder dense_fast(4, stream::KvCache(steps, 1, dim, 16, dtype), isa);
        stream::DenseDecoder dense_ref(4, stream::KvCache(steps, 1, dim, 16, dtype), Isa::kScalar);
        double worst_dense = 0;
        for (std::size_t t = 0; t < steps; ++t) {
          dense_fast.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), a.data());
          dense_ref.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), b.data());
          worst_dense = std::max(worst_dense, test::max_abs_diff(a, b));
        }
        CHECK(worst_dense < tolerance);
      }
    }
  }
}

TEST_CASE("scores that overflow to inf give the reference's NaN rows on every ISA", "[kernels]") {
  // Finite inputs, so no scan sends them to the reference: one key row so large that every
  // score against it is +inf in any summation order (all terms positive). exp(inf - inf) is
  // NaN there; the SIMD exps once clamped that NaN to a weight of ~0 and gave a finite, wrong
  // row. Landmarks of one-token blocks, so that their means overflow as robustly.
  auto same_nans_close = [](const Tensor& got, const Tensor& want) {
    double worst = 0;
    std::size_t nans = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const float g = got.data()[i], w = want.data()[i];
      if (std::isnan(g) != std::isnan(w)) return -1.0;
      nans += std::isnan(w) ? 1 : 0;
      if (!std::isnan(w)) worst = std::max(worst, std::abs(static_cast<double>(g) - w));
    }
    return nans > 0 ? worst : -2.0;  // -2: the test lost its NaNs
  };
  for (std::size_t dim : {7u, 32u}) {
    Qkv x = generate_qkv(GenKind::kNormal, 300, 4, 2, dim, 41);
    for (float& f : x.q.values()) f = std::abs(f) + 0.5f;
    for (std::size_t h = 0; h < 2; ++h) {
      for (std::size_t d = 0; d < dim; ++d) x.k.at(150, h, d) = 3e38f;
    }
    attn::SparseConfig c;
    c.window = 16;
    c.block_size = 1;
    attn::SparseConfig no_landmarks = c;
    no_landmarks.landmarks = false;
    attn::ExecOptions ref{1, Isa::kScalar};
    ref.inputs_finite = true;
    const Tensor dense_ref = attn::dense_attention(x.q, x.k, x.v, true, ref);
    REQUIRE(std::isnan(dense_ref.row(150, 0)[0]));
    REQUIRE(!std::isnan(dense_ref.row(149, 0)[0]));
    for (Isa isa : fast_isas()) {
      for (unsigned threads : {1u, 2u}) {
        INFO("isa " << kernels::isa_name(isa) << " dim " << dim << " threads " << threads);
        attn::ExecOptions fast{threads, isa};
        fast.inputs_finite = true;
        const double dense = same_nans_close(attn::dense_attention(x.q, x.k, x.v, true, fast), dense_ref);
        CHECK((dense >= 0 && dense < 1e-5));
        for (const attn::SparseConfig& config : {c, no_landmarks}) {
          const double sparse = same_nans_close(attn::sparse_attention(x.q, x.k, x.v, config, fast),
                                                attn::sparse_attention(x.q, x.k, x.v, config, ref));
          CHECK((sparse >= 0 && sparse < 1e-5));
        }
      }
    }
  }
  // A value past 65504 is finite in f32 and +inf in an f16 cache.
  Qkv x = generate_qkv(GenKind::kNormal, 40, 2, 1, 8, 43);
  for (float& f : x.q.values()) f = std::abs(f) + 0.5f;
  x.k.at(20, 0, 3) = 7e4f;
  attn::SparseConfig c;
  c.window = 4;
  c.block_size = 8;
  for (Isa isa : fast_isas()) {
    INFO("decode, isa " << kernels::isa_name(isa));
    stream::SparseDecoder fast(2, stream::KvCache(40, 1, 8, 8, stream::KvDType::kF16), c, stream::Evict::kNone, isa);
    stream::SparseDecoder ref(2, stream::KvCache(40, 1, 8, 8, stream::KvDType::kF16), c, stream::Evict::kNone,
                              Isa::kScalar);
    Tensor a(40, 2, 8), b(40, 2, 8);
    for (std::size_t t = 0; t < 40; ++t) {
      fast.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), a.row(t, 0));
      ref.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), b.row(t, 0));
    }
    const double decode = same_nans_close(a, b);
    CHECK((decode >= 0 && decode < 1e-5));
  }
}

TEST_CASE("a key scoring -inf weighs 0, and a row whose keys all do is a zero row, on every ISA", "[kernels]") {
  // Finite inputs whose scores overflow to -inf: keys 0 - 9 point against every query. The
  // reference once gave exp(-inf - -inf) = NaN there (dense: the whole row, from key 0 alone)
  // where the SIMD kernels, which mask such lanes, gave 0 or the other keys' softmax.
  for (std::size_t dim : {4u, 32u}) {
    Qkv x = generate_qkv(GenKind::kNormal, 64, 2, 1, dim, 47);
    for (float& f : x.q.values()) f = 1e20f;
    for (std::size_t j = 0; j < 64; ++j) {
      for (std::size_t d = 0; d < dim; ++d) x.k.at(j, 0, d) = j < 10 ? -1e20f : x.k.at(j, 0, d) * 1e-3f;
    }
    attn::SparseConfig c;
    c.window = 4;
    c.block_size = 4;
    attn::ExecOptions ref{1, Isa::kScalar};
    ref.inputs_finite = true;
    const Tensor dense_ref = attn::dense_attention(x.q, x.k, x.v, true, ref);
    const Tensor sparse_ref = attn::sparse_attention(x.q, x.k, x.v, c, ref);
    for (std::size_t i = 0; i < 64; ++i) {
      INFO("row " << i << " dim " << dim);
      for (const Tensor* t : {&dense_ref, &sparse_ref}) {
        REQUIRE(std::isfinite(t->row(i, 1)[0]));
        if (i < 10) REQUIRE(t->row(i, 1)[0] == 0.0f);
      }
    }
    for (Isa isa : fast_isas()) {
      INFO("isa " << kernels::isa_name(isa) << " dim " << dim);
      attn::ExecOptions fast{2, isa};
      fast.inputs_finite = true;
      CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, true, fast), dense_ref) < 1e-5);
      CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, c, fast), sparse_ref) < 1e-5);
      stream::SparseDecoder a(2, stream::KvCache(64, 1, dim, 4), c, stream::Evict::kNone, isa);
      stream::SparseDecoder b(2, stream::KvCache(64, 1, dim, 4), c, stream::Evict::kNone, Isa::kScalar);
      Tensor oa(64, 2, dim), ob(64, 2, dim);
      for (std::size_t t = 0; t < 64; ++t) {
        a.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), oa.row(t, 0));
        b.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), ob.row(t, 0));
      }
      CHECK(test::max_abs_diff(oa, ob) < 1e-5);
      CHECK(test::max_abs_diff(ob, sparse_ref) < 1e-5);  // causal streaming is the forward, row by row
    }
  }
}

TEST_CASE("KernelTable::any_nonfinite agrees with the scalar any_nonfinite", "[kernels]") {
  // Every length through four vectors' main loop and the partial tail, each kind of value at
  // every position, on a finite background that includes the largest and the tiniest floats.
  const float kinds[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                         std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::max(), -std::numeric_limits<float>::denorm_min()};
  for (Isa isa : fast_isas()) {
    const kernels::KernelTable& table = *kernels::kernel_table(isa);
    for (std::size_t n = 0; n <= 70; ++n) {
      std::vector<float> x(n);
      for (std::size_t i = 0; i < n; ++i) x[i] = i % 3 == 0 ? std::numeric_limits<float>::max() : -1e-40f * static_cast<float>(i);
      INFO("isa " << kernels::isa_name(isa) << " n " << n);
      REQUIRE(table.any_nonfinite(x.data(), n) == any_nonfinite(x));
      for (std::size_t at = 0; at < n; ++at) {
        for (float bad : kinds) {
          std::vector<float> y = x;
          y[at] = bad;
          REQUIRE(table.any_nonfinite(y.data(), n) == any_nonfinite(y));
        }
      }
    }
  }
}

TEST_CASE("inputs_finite skips the scan and changes no result on finite inputs", "[kernels]") {
  const Qkv x = generate_qkv(GenKind::kNormal, 200, 4, 2, 32, 9);
  for (Isa isa : fast_isas()) {
    attn::ExecOptions scanned{2, isa}, trusted{2, isa};
    trusted.inputs_finite = true;
    CHECK(test::max_abs_diff(attn::dense_attention(x.q, x.k, x.v, true, trusted),
                             attn::dense_attention(x.q, x.k, x.v, true, scanned)) == 0.0);
    CHECK(test::max_abs_diff(attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, trusted),
                             attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, scanned)) == 0.0);
  }
}

TEST_CASE("non-finite inputs give the reference's NaN pattern on every ISA", "[kernels]") {
  for (Isa isa : fast_isas()) {
    for (int where = 0; where < 3; ++where) {  // NaN in Q, K or V at position 7
      Qkv x = generate_qkv(GenKind::kNormal, 20, 6, 2, 8, 31);
      Tensor& t = where == 0 ? x.q : (where == 1 ? x.k : x.v);
      t.at(7, 1, 3) = std::numeric_limits<float>::quiet_NaN();
      const attn::ExecOptions ref{1, Isa::kScalar}, fast{1, isa};
      auto same_nans = [](const Tensor& a, const Tensor& b) {
        for (std::size_t i = 0; i < a.size(); ++i) {
          if (std::isnan(a.data()[i]) != std::isnan(b.data()[i])) return false;
        }
        return true;
      };
      INFO("isa " << kernels::isa_name(isa) << " NaN in " << "QKV"[where]);
      const Tensor dense_ref = attn::dense_attention(x.q, x.k, x.v, true, ref);
      CHECK(same_nans(attn::dense_attention(x.q, x.k, x.v, true, fast), dense_ref));
      CHECK(std::isnan(dense_ref.row(7, where == 0 ? 1 : 3)[3]));  // kv head 1 is read by q heads 3..5
      CHECK(!std::isnan(dense_ref.row(6, 3)[3]));  // a causal row before it is not
      CHECK(same_nans(attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, fast),
                      attn::sparse_attention(x.q, x.k, x.v, attn::SparseConfig{}, ref)));
      stream::SparseDecoder a(6, stream::KvCache(20, 2, 8, 64), attn::SparseConfig{}, stream::Evict::kNone, isa);
      stream::SparseDecoder b(6, stream::KvCache(20, 2, 8, 64), attn::SparseConfig{}, stream::Evict::kNone, Isa::kScalar);
      Tensor oa(20, 6, 8), ob(20, 6, 8);
      for (std::size_t s = 0; s < 20; ++s) {
        a.step(x.q.row(s, 0), x.k.row(s, 0), x.v.row(s, 0), oa.row(s, 0));
        b.step(x.q.row(s, 0), x.k.row(s, 0), x.v.row(s, 0), ob.row(s, 0));
      }
      CHECK(same_nans(oa, ob));
    }
  }
}
