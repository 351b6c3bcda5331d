// The sparse edge set: counts against the reference values of attention-spec.md section 3
// and the fixtures' per-row counts, plus the candidate lists of hand-checked rows.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "rvt/attention/pattern.hpp"
#include "rvt/attention/tile_pattern.hpp"
#include "rvt/core/error.hpp"
#include "test_support.hpp"

using namespace rvt::attn;

namespace {

SparseConfig make_config(std::size_t window, std::size_t block) {
  SparseConfig c;
  c.window = window;
  c.block_size = block;
  return c;
}

// row_edges.npy holds '<i8'; the library reads float arrays only, so read it raw here.
std::vector<std::int64_t> read_i8_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 10);
  const auto header_len = static_cast<std::size_t>(static_cast<unsigned char>(bytes[8]) |
                                                   (static_cast<unsigned char>(bytes[9]) << 8));
  const std::string header(bytes.begin() + 10, bytes.begin() + 10 + static_cast<long>(header_len));
  REQUIRE(header.find("<i8") != std::string::npos);
  const std::size_t offset = 10 + header_len;
  std::vector<std::int64_t> values((bytes.size() - offset) / 8);
  std::memcpy(values.data(), bytes.data() + offset, values.size() * 8);
  return values;
}

std::vector<std::uint32_t> sorted(std::span<const std::uint32_t> s) {
  std::vector<std::uint32_t> v(s.begin(), s.end());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST_CASE("per-head edge counts equal the reference values", "[pattern]") {
  const SparseConfig w128 = make_config(128, 64);
  CHECK(sparse_edges_per_head(512, w128) == 59778);
  CHECK(sparse_edges_per_head(1024, w128) == 129858);
  CHECK(sparse_edges_per_head(4096, w128) == 560834);
  CHECK(sparse_edges_per_head(8192, w128) == 1146498);
  CHECK(sparse_edges_per_head(65536, w128) == 9625026);
  const SparseConfig w16 = make_config(16, 32);
  CHECK(sparse_edges_per_head(64, w16) == 1064);
  CHECK(sparse_edges_per_head(1024, w16) == 27368);
  CHECK(sparse_edges_per_head(4096, w16) == 126632);
  const SparseConfig w32 = make_config(32, 16);
  CHECK(sparse_edges_per_head(64, w32) == 1714);
  CHECK(sparse_edges_per_head(4096, w32) == 191890);
}

TEST_CASE("per-row edge counts equal the fixtures' row_edges", "[pattern]") {
  const auto c1 = read_i8_npy(rvt::test::data_path("upstream/c1/row_edges.npy"));
  const auto ours1 = row_edge_counts(1000, make_config(128, 64));
  REQUIRE(c1.size() == ours1.size());
  for (std::size_t i = 0; i < c1.size(); ++i) REQUIRE(ours1[i] == c1[i]);
  CHECK(sparse_edges_per_head(1000, make_config(128, 64)) == 126570);

  const auto c7 = read_i8_npy(rvt::test::data_path("upstream/c7/row_edges.npy"));
  const auto ours7 = row_edge_counts(777, make_config(32, 16));
  REQUIRE(c7.size() == ours7.size());
  for (std::size_t i = 0; i < c7.size(); ++i) REQUIRE(ours7[i] == c7[i]);
  CHECK(sparse_edges_per_head(777, make_config(32, 16)) == 32327);
}

TEST_CASE("non-causal edge count equals the c3 fixture", "[pattern]") {
  SparseConfig c = make_config(8, 8);
  c.causal = false;
  c.globals = {0, 5, 999};
  CHECK(sparse_edges_per_head(257, c) == 8475);
}

TEST_CASE("candidate lists of hand-checked rows", "[pattern]") {
  SECTION("causal: window, global, strides, landmarks") {
    SparseConfig c = make_config(2, 4);
    PatternBuilder p(40, c);
    p.build(20);
    // window 18..20, global 0, strides 19,18,16,12,4 -> 12, 16, 4 new
    CHECK(std::vector<std::uint32_t>(p.tokens().begin(), p.tokens().end()) ==
          std::vector<std::uint32_t>{18, 19, 20, 0, 16, 12, 4});
    // avail = 21/4 = 5, pivot 4: blocks 3, 4, then 4-1=3 (dup), 4-2=2, 4-4=0
    CHECK(std::vector<std::uint32_t>(p.blocks().begin(), p.blocks().end()) ==
          std::vector<std::uint32_t>{3, 4, 2, 0});
  }
  SECTION("the block that ends exactly at i is eligible") {
    PatternBuilder p(16, make_config(1, 4));
    p.build(3);  // block 0 = tokens 0..3 is complete at i = 3
    CHECK(sorted(p.blocks()) == std::vector<std::uint32_t>{0});
    p.build(2);
    CHECK(p.blocks().empty());
  }
  SECTION("non-causal: both sides, never the current block, partial last block") {
    SparseConfig c = make_config(1, 4);
    c.causal = false;
    c.log_stride = false;
    PatternBuilder p(10, c);  // blocks 0..3, 4..7, 8..9
    p.build(5);
    CHECK(sorted(p.tokens()) == std::vector<std::uint32_t>{0, 4, 5, 6});
    CHECK(sorted(p.blocks()) == std::vector<std::uint32_t>{0, 2});
  }
  SECTION("W = 0 and nothing else is the token itself") {
    SparseConfig c = make_config(0, 4);
    c.globals.clear();
    c.log_stride = false;
    c.landmarks = false;
    PatternBuilder p(10, c);
    for (std::size_t i = 0; i < 10; ++i) {
      p.build(i);
      REQUIRE(p.edges() == 1);
      REQUIRE(p.tokens()[0] == i);
    }
  }
  SECTION("out-of-range and future globals are ignored") {
    SparseConfig c = make_config(0, 4);
    c.globals = {3, 99};
    c.log_stride = false;
    c.landmarks = false;
    PatternBuilder p(10, c);
    p.build(1);
    CHECK(sorted(p.tokens()) == std::vector<std::uint32_t>{1});  // 3 is in the future
    p.build(5);
    CHECK(sorted(p.tokens()) == std::vector<std::uint32_t>{3, 5});
  }
  SECTION("mass mode skips blocks whose tokens are all candidates") {
    SparseConfig c = make_config(8, 4);
    c.landmark_mode = LandmarkMode::kMass;
    PatternBuilder p(64, c);
    p.build(40);  // window 32..40 covers block 8 (32..35) and 9 (36..39) fully
    for (std::uint32_t b : p.blocks()) CHECK((b != 8 && b != 9));
    SparseConfig compat = c;
    compat.landmark_mode = LandmarkMode::kMean;
    PatternBuilder q(64, compat);
    q.build(40);
    CHECK(sorted(q.blocks()).size() > sorted(p.blocks()).size());
  }
}

TEST_CASE("dense edge counts", "[pattern]") {
  CHECK(dense_edges_per_head(4, true) == 10);
  CHECK(dense_edges_per_head(4, false) == 16);
  CHECK(dense_edges_per_head(0, true) == 0);
}

TEST_CASE("block size 0 is rejected", "[pattern]") {
  REQUIRE_THROWS_AS(PatternBuilder(10, make_config(4, 0)), rvt::Error);
}

TEST_CASE("tile columns expand to exactly PatternBuilder's candidate sets", "[pattern]") {
  // Every row of every tile, for causal and bidirectional configs, with and without
  // log-stride and landmarks, both landmark modes, duplicate and out-of-range globals, windows
  // from 0 to past the sequence, and tiles that straddle the end. kMass drops the blocks a
  // row's tokens cover: those in its window, and with blocks of 1 those at a log-stride or
  // global token too.
  for (LandmarkMode mode : {LandmarkMode::kMean, LandmarkMode::kMass}) {
    for (std::size_t lanes : {8u, 16u}) {
      for (std::size_t seq : {1u, 7u, 16u, 45u, 130u, 600u}) {
        for (bool causal : {true, false}) {
          for (std::size_t window : {0u, 1u, 5u, 16u, 200u}) {
            for (int variant = 0; variant < 4; ++variant) {
              // Block 16 (a multiple of the lanes): causal tiles take the shifted grid.
              SparseConfig c = make_config(window, variant == 2 ? 1 : variant == 3 ? 16 : 7);
              c.causal = causal;
              c.log_stride = variant != 1;
              c.landmarks = variant != 1;
              c.globals = {seq / 3, 0, seq / 3, seq + 2};
              c.landmark_mode = mode;
              INFO("mode " << landmark_mode_name(mode) << " lanes " << lanes << " seq " << seq << " causal " << causal
                           << " window " << window << " variant " << variant);
              PatternBuilder rows(seq, c);
              TilePattern tiles(seq, c, lanes);
              const TileGrid grid = TileGrid::for_config(seq, c, lanes);  // as the kernel tiles the rows
              CHECK(grid.shift == (causal && c.landmarks && c.block_size % lanes == 0 ? 1u : 0u));
              for (std::size_t t = 0; t < grid.tiles(); ++t) {
                const std::size_t row0 = grid.row0(t);
                tiles.build(row0, grid.rows(t));
                const rvt::kernels::TileColumns cols = tiles.columns();
                REQUIRE(cols.relative.size() + cols.globals.size() + cols.blocks.size() <= tiles.max_columns());
                // The point of the shift: every row of the tile has every block (kMass drops some).
                if (grid.shift == 1 && mode == LandmarkMode::kMean) {
                  for (const auto& col : cols.blocks) CHECK(col.lanes == (std::uint32_t{1} << grid.rows(t)) - 1);
                }
                for (std::size_t r = 0; r < lanes; ++r) {
                  auto [tok, blk] = rvt::attn::lane_candidates(cols, row0, r);
                  if (r >= grid.rows(t)) {  // lanes past the tile's rows hold nothing
                    CHECK(tok.empty());
                    CHECK(blk.empty());
                    continue;
                  }
                  rows.build(row0 + r);
                  std::vector<std::uint32_t> want_tok(rows.tokens().begin(), rows.tokens().end());
                  std::vector<std::uint32_t> want_blk(rows.blocks().begin(), rows.blocks().end());
                  std::sort(tok.begin(), tok.end());
                  std::sort(blk.begin(), blk.end());
                  std::sort(want_tok.begin(), want_tok.end());
                  std::sort(want_blk.begin(), want_blk.end());
                  INFO("row " << row0 + r);
                  REQUIRE(tok == want_tok);  // equal as sorted lists: same set, no duplicates
                  REQUIRE(blk == want_blk);
                }
              }
            }
          }
        }
      }
    }
  }
}
