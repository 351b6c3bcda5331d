// rvt_tile_costs: where the tiled sparse kernel's time goes, per tile of one head. A tool
// for performance work (docs/performance.md, "What limits each kernel"), not a test of
// speed: ctest only checks that it runs.
//
// The kernel (KernelTable::sparse_tile) runs over every tile of head 0 with subsets of each
// tile's own columns (TilePattern): the globals alone (what a tile costs whatever its
// columns: the queries' and outputs' transposes, the softmax, one column), then with the
// window run added, then the log-stride columns, then the landmark blocks (the whole tile).
// The subsets alternate round by round, so a machine that slows down slows them alike; the
// differences of their medians give the cost of one column of each kind. Outputs go through
// the caches (an attention call streams them past the caches from 256 KiB of output).
//
//   rvt_tile_costs [--preset bench] [--seq 1024] [--isa auto|avx2|avx512] [--rounds 15] [--passes 20]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "rvt/attention/attention.hpp"
#include "rvt/attention/tile_pattern.hpp"
#include "rvt/bench/stats.hpp"
#include "rvt/core/error.hpp"
#include "rvt/jobs/presets.hpp"
#include "rvt/kernels/fast.hpp"
#include "rvt/kernels/isa.hpp"
#include "rvt/tensor/generate.hpp"

namespace {

using namespace rvt;
using kernels::TileColumn;

struct Tile {
  std::size_t row0 = 0, rows = 0;
  std::vector<TileColumn> relative, globals, blocks;
  std::size_t window = 0;  // relative[0, window) are the window's (TilePattern puts them first), the rest strides
};

// The subsets measured, each adding one kind of column to the one before.
enum Subset { kGlobals, kWindow, kStrides, kWhole, kSubsets };
const char* const kSubsetNames[kSubsets] = {"globals only", "+ window run", "+ log-stride columns", "whole tile"};

int run(const std::string& preset_name, std::size_t seq, const std::string& isa_name, std::size_t rounds,
        std::size_t passes) {
  const jobs::Preset& preset = jobs::find_preset(preset_name);
  const kernels::Isa requested = kernels::parse_isa(isa_name);
  if (requested == kernels::Isa::kScalar) throw_usage("--isa scalar: the tiled kernel is AVX2 or AVX-512 only");
  const kernels::KernelTable* table = kernels::kernel_table(kernels::resolve_isa(requested));
  if (!table) {
    std::printf("rvt_tile_costs: this CPU runs the scalar kernels only; the tiled kernel needs AVX2 or AVX-512\n");
    return 0;
  }
  attn::SparseConfig config;
  config.window = preset.window;
  config.block_size = preset.block_size;
  const std::size_t dim = preset.head_dim, lanes = table->lanes, kv_stride = preset.kv_heads * dim;
  const Qkv x = generate_qkv(GenKind::kNormal, seq, preset.q_heads, preset.kv_heads, dim, 0x5EED);
  const attn::BlockMeans means = attn::block_means(x.k, x.v, config.block_size, 1, table);

  // Head 0's keys in key tiles, a zero tile before the first and two past the last (the kernel
  // reads the values row-major).
  const attn::TileGrid grid = attn::TileGrid::for_config(seq, config, lanes);
  const std::size_t positions = seq + grid.shift, tile_floats = dim * lanes;
  AlignedFloats kt(kernels::tile_floats(positions, dim, lanes) + 3 * tile_floats);
  table->transpose_tiles(x.k.row(0, 0), kv_stride, grid.shift, 0, positions, dim, kt.data() + tile_floats);

  attn::TilePattern pattern(seq, config, lanes);
  std::vector<Tile> tiles;
  for (std::size_t t = 0; t < grid.tiles(); ++t) {
    if (grid.rows(t) == 1) continue;  // attention runs one-row tiles through the row kernel
    pattern.build(grid.row0(t), grid.rows(t));
    const kernels::TileColumns cols = pattern.columns();
    Tile tile{grid.row0(t), grid.rows(t), {cols.relative.begin(), cols.relative.end()},
              {cols.globals.begin(), cols.globals.end()}, {cols.blocks.begin(), cols.blocks.end()}, 0};
    auto in_window = [&](const TileColumn& c) { return static_cast<std::size_t>(std::abs(c.at)) <= config.window; };
    tile.window = static_cast<std::size_t>(std::find_if_not(tile.relative.begin(), tile.relative.end(), in_window) -
                                           tile.relative.begin());
    if (std::any_of(tile.relative.begin() + static_cast<std::ptrdiff_t>(tile.window), tile.relative.end(), in_window)) {
      throw std::logic_error("TilePattern no longer puts the window's columns first");
    }
    tiles.push_back(std::move(tile));
  }
  if (tiles.empty()) throw_usage("--seq " + std::to_string(seq) + " makes no tile of two rows or more");

  Tensor out(seq, preset.q_heads, dim);
  kernels::SparseTileArgs a;
  a.q = x.q.row(0, 0);
  a.q_stride = preset.q_heads * dim;
  a.seq = seq;
  a.kt = kt.data() + tile_floats;
  a.key_shift = grid.shift;
  a.k = x.k.row(0, 0);
  a.v = x.v.row(0, 0);
  a.values = a.v;
  a.values_stride = kv_stride;
  a.kv_stride = kv_stride;
  a.mean_k = means.k_row(0, 0);
  a.mean_v = means.v_row(0, 0);
  a.mean_stride = kv_stride;
  a.out = out.row(0, 0);
  a.out_stride = preset.q_heads * dim;
  a.dim = dim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(dim));
  AlignedFloats scratch(lanes * pattern.max_columns());

  // One subset's time per tile: `passes` passes over every tile. Its relative columns are a
  // prefix of the tile's (none, the window's, all).
  auto time_subset = [&](Subset subset) {
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t p = 0; p < passes; ++p) {
      for (const Tile& tile : tiles) {
        const std::size_t relative = subset == kGlobals ? 0 : subset == kWindow ? tile.window : tile.relative.size();
        const kernels::TileColumns cols{std::span<const TileColumn>(tile.relative).first(relative), tile.globals,
                                        subset == kWhole ? std::span<const TileColumn>(tile.blocks)
                                                         : std::span<const TileColumn>()};
        table->sparse_tile(a, tile.row0, tile.rows, cols, scratch.data());
      }
    }
    const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
    return elapsed.count() / static_cast<double>(passes * tiles.size());
  };
  std::vector<double> samples[kSubsets];
  for (std::size_t r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < kSubsets; ++i) {
      const auto subset = static_cast<Subset>((r + i) % kSubsets);
      samples[subset].push_back(time_subset(subset));
    }
  }

  auto mean_count = [&](auto count) {
    double n = 0;
    for (const Tile& tile : tiles) n += static_cast<double>(count(tile));
    return n / static_cast<double>(tiles.size());
  };
  const double added[kSubsets] = {mean_count([](const Tile& t) { return t.globals.size(); }),
                                  mean_count([](const Tile& t) { return t.window; }),
                                  mean_count([](const Tile& t) { return t.relative.size() - t.window; }),
                                  mean_count([](const Tile& t) { return t.blocks.size(); })};
  const char* const kinds[kSubsets] = {"global", "window", "log-stride", "block"};
  std::printf("tile costs: preset %s, seq %zu, isa %s (%zu lanes), head 0 of %zu, %zu tiles, median of %zu rounds x %zu passes\n",
              preset.name.c_str(), seq, kernels::isa_name(table->isa), lanes, preset.q_heads, tiles.size(), rounds,
              passes);
  std::printf("%-22s %10s %16s %14s\n", "columns", "ns/tile", "columns added", "ns per column");
  double before = 0;
  for (std::size_t s = 0; s < kSubsets; ++s) {
    const double ns = bench::median(samples[s]);
    if (s == 0) {
      std::printf("%-22s %10.1f %9.2f %-6s %14s\n", kSubsetNames[s], ns, added[s], kinds[s], "(fixed)");
    } else {
      std::printf("%-22s %10.1f %9.2f %-6s %14.1f\n", kSubsetNames[s], ns, added[s], kinds[s],
                  added[s] > 0 ? (ns - before) / added[s] : 0.0);
    }
    before = ns;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Where the tiled sparse kernel's time goes, per tile (a development tool)"};
  std::string preset = "bench", isa = "auto";
  std::size_t seq = 1024, rounds = 15, passes = 20;
  app.add_option("--preset", preset, "bench | aether | default | llama8x64");
  app.add_option("--seq", seq, "sequence length")->check(CLI::Range(std::size_t{2}, std::size_t{1} << 22));
  app.add_option("--isa", isa, "auto | avx2 | avx512");
  app.add_option("--rounds", rounds, "rounds, each timing every subset once")->check(CLI::Range(1, 1000));
  app.add_option("--passes", passes, "passes over the tiles per timing")->check(CLI::Range(1, 100000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : to_int(ExitCode::kUsage);  // --help, or the house exit code for usage
  }
  try {
    return run(preset, seq, isa, rounds, passes);
  } catch (const Error& e) {
    std::fprintf(stderr, "rvt_tile_costs: %s\n", e.what());
    return to_int(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rvt_tile_costs: internal error: %s\n", e.what());
    return to_int(ExitCode::kInternal);
  }
}
