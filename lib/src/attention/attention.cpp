#include "rvt/attention/attention.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>

#include "rvt/attention/tile_pattern.hpp"
#include "rvt/core/owned_work.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/kernels/fast.hpp"
#include "rvt/kernels/reference.hpp"

namespace rvt::attn {
namespace {

constexpr std::size_t kDenseRowsPerItem = 64;  // work item of the dense kernel: one head, 64 rows

void dense_reference(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const AttentionShape& s,
                     unsigned threads, Tensor& out) {
  const float scale = s.scale();
  const std::size_t kv_stride = s.kv_heads * s.dim;
  parallel_for(s.seq, threads, [&](std::size_t begin, std::size_t end, unsigned) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t count = causal ? i + 1 : s.seq;
      for (std::size_t h = 0; h < s.q_heads; ++h) {
        const std::size_t kvh = h / s.group();
        const kernels::RowSource src{k.row(0, kvh), v.row(0, kvh), kv_stride};
        kernels::dense_row_ref(q.row(i, h), s.dim, scale, src, count, out.row(i, h));
      }
    }
  });
}

// Scratch floats for one call. Up to kCachedFloats they are this thread's, kept from
// call to call: at small N a call is short enough that fresh pages (a fault and a clear
// each) cost more than the kernel. Larger requests, and a second workspace while the
// thread's own is in use, are the call's own.
class Workspace {
 public:
  explicit Workspace(std::size_t n) {
    static constexpr std::size_t kCachedFloats = std::size_t{16} << 20;  // 64 MiB
    thread_local UninitFloats cached;
    thread_local bool cached_in_use = false;
    const bool use_cached = n <= kCachedFloats && !cached_in_use;
    auto& buffer = use_cached ? cached : own_;
    if (buffer.size() < n) {
      buffer.clear();
      buffer.shrink_to_fit();
      buffer.resize(n);
    }
    data_ = buffer.data();
    if (use_cached) in_use_ = &cached_in_use;
    if (in_use_) *in_use_ = true;
  }
  ~Workspace() {
    if (in_use_) *in_use_ = false;
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  float* data() const { return data_; }

 private:
  UninitFloats own_;
  float* data_ = nullptr;
  bool* in_use_ = nullptr;
};

// One kv head's K in key tiles of `lanes` key positions (KernelTable::transpose_tiles),
// with one zero tile before position 0 and two past the last tile, so the kernel's columns
// (which reach up to a tile before and two past the keys they use) read zeros there. The
// tiles in between are written by the transpose before they are read, so they are never
// cleared. positions: the keys plus the grid's shift.
class PaddedTiles {
 public:
  static std::size_t floats(std::size_t dim, std::size_t positions, std::size_t lanes) {
    return (kernels::tile_floats(positions, dim, lanes) / (dim * lanes) + 3) * dim * lanes;
  }
  PaddedTiles(float* memory, std::size_t dim, std::size_t positions, std::size_t lanes)
      : tile0_(memory + dim * lanes) {
    const std::size_t tile = dim * lanes, used = kernels::tile_floats(positions, dim, lanes);
    std::fill(memory, tile0_, 0.0f);
    std::fill(tile0_ + used, tile0_ + used + 2 * tile, 0.0f);
  }
  float* tile0() const { return tile0_; }  // the tile of positions 0 .. lanes - 1

 private:
  float* tile0_;
};

// Whether the tiles' value sums read a contiguous copy of each kv head's V rows instead of the
// input's rows, which the other heads' rows interleave. Past the caches, a far column's 16 rows
// are then one 2 KiB run instead of 16 rows 512 bytes apart (bench preset, two threads,
// alternating: N = 32768 10.6 - 12.4 ms against 13.7, 262144 147 - 150 against 177; one thread
// at 32768 19.8 - 20.5 against 20.9 - 21.1). Within the caches the copy costs more than it saves
// (one thread: N = 4096 1.34 - 1.39 ms against 1.26 - 1.28, 8192 3.25 - 3.34 against 2.79 - 3.11).
bool copy_values(const AttentionShape& s) {
  constexpr std::size_t kCopyValuesBytes = std::size_t{2} << 20;  // a head's V rows: twice this host's L2
  return s.kv_heads > 1 && s.seq * s.dim * sizeof(float) >= kCopyValuesBytes;
}

// Asks for a row of `bytes` into L2. Always inlined: GCC 12 drops calls to a function that only
// prefetches (sparse_tile.cpp, prefetch_rows). Not shared with that prefetch_rows: that file is
// compiled once per ISA, and an inline function common to it and this file could be linked in
// from an AVX-512 build of it.
[[gnu::always_inline]] inline void prefetch_row_into_l2(const float* row, std::size_t bytes) {
  constexpr std::size_t kLineBytes = 64;
  const char* p = reinterpret_cast<const char*>(row);
  for (std::size_t b = 0; b < bytes; b += kLineBytes) __builtin_prefetch(p + b, 0, 2);
}

// Rows [begin, end) of kv head kvh's V into `values`, contiguous (row r at values + r * dim),
// in the setup's chunks of `chunk` rows. Each V row is asked for into L2 kAhead rows before it
// is copied, and each K row a chunk before the transposes read it: both had waited on memory,
// where the hardware prefetchers did not run ahead of rows 512 bytes apart. Bench preset, one
// thread, N = 16384, a call's copies took 1.10 - 1.19 ms against 0.48 - 0.55 with the V
// prefetch, and its transposes 1.00 - 1.01 against 0.38 with the K one (whose own prefetch
// reaches two tiles ahead inside a chunk). Taking turns call by call, the V prefetch alone made
// a call 7 - 9% faster from N = 16384 to 131072 on one thread, 14% at 16384 on two, 5 - 7% at
// 32768, level from 65536 where both cores wait on memory; the K one then 6 - 10% more on one
// thread at 16384 - 32768 (1 - 7% at 131072), 1 - 4% on two at 16384 - 65536.
void copy_value_rows(const Tensor& k, const Tensor& v, std::size_t kvh, std::size_t begin, std::size_t end,
                     std::size_t chunk, float* values) {
  constexpr std::size_t kAhead = 32;
  const std::size_t bytes = v.dim() * sizeof(float);
  for (std::size_t r = begin; r < end; ++r) {
    if (r + kAhead < v.seq()) prefetch_row_into_l2(v.row(r + kAhead, kvh), bytes);
    if (r + chunk < k.seq()) prefetch_row_into_l2(k.row(r + chunk, kvh), bytes);
    std::copy_n(v.row(r, kvh), v.dim(), values + r * v.dim());
  }
}

// A worker's memory for one kv head's K tiles on `grid` and, where copy_values, its V rows.
std::size_t head_tile_floats(const AttentionShape& s, const TileGrid& grid, std::size_t lanes) {
  return PaddedTiles::floats(s.dim, s.seq + grid.shift, lanes) + (copy_values(s) ? s.seq * s.dim : 0);
}

// Calls fn(begin, end) for rows [0, seq) in chunks of about 256 rows, a multiple of
// `multiple_of` (the lanes, and where block means are taken the block size, so that no
// block straddles two chunks), over the threads: the transposes' and block means' work
// split. One chunk per call even on one thread, so the rows the transposes read are still
// in L1/L2 when the block means read them again (a whole head at once, N = 8192: the means
// re-read them from L3).
template <typename Fn>
void for_row_chunks(std::size_t seq, std::size_t multiple_of, unsigned threads, Fn&& fn) {
  constexpr std::size_t kTransposeRows = 256;
  parallel_runs(seq, (kTransposeRows + multiple_of - 1) / multiple_of * multiple_of, threads, fn);
}

// Tokens in landmark block b of a sequence of seq (the last block may be short).
std::uint32_t block_tokens(std::size_t b, std::size_t seq, std::size_t block_size) {
  return static_cast<std::uint32_t>(std::min((b + 1) * block_size, seq) - b * block_size);
}

// BlockMeans for k's shape with the counts set; the means are left for fill_block_means.
BlockMeans unfilled_block_means(const Tensor& k, std::size_t block_size) {
  BlockMeans m;
  m.block_size = block_size;
  m.n_blocks = block_count(k.seq(), block_size);
  m.kv_heads = k.heads();
  m.dim = k.dim();
  m.k.resize(m.n_blocks * m.kv_heads * m.dim);
  m.v.resize(m.k.size());
  m.counts.reserve(m.n_blocks);
  for (std::size_t b = 0; b < m.n_blocks; ++b) {
    m.counts.push_back(block_tokens(b, k.seq(), block_size));
  }
  return m;
}

using BlockMeansFn = decltype(kernels::KernelTable::block_means);

// The means of the blocks starting in rows [begin, end) (begin a multiple of the block size),
// kv heads [h0, h0 + heads), of k into m.k and of v into m.v: each element's sum is the same
// whichever heads and rows a call covers.
void fill_block_means(BlockMeansFn means, const Tensor& k, const Tensor& v, std::size_t begin, std::size_t end,
                      std::size_t h0, std::size_t heads, BlockMeans& m) {
  const std::size_t row = m.kv_heads * m.dim, first = begin / m.block_size;
  means(k.row(begin, h0), row, m.block_size, end - begin, heads * m.dim, m.k.data() + first * row + h0 * m.dim, row);
  means(v.row(begin, h0), row, m.block_size, end - begin, heads * m.dim, m.v.data() + first * row + h0 * m.dim, row);
}

// Every tile's columns, built once per call (in parallel) and shared by all heads: about
// 40 columns of 16 bytes per tile of 16 rows. A window past kMaxBuiltWindow adds a column per
// key of the window to every tile (at 1M rows, window 1024: 1 GiB): there each worker builds
// the columns tile by tile instead, into its own TilePattern (worker_pattern). With kMass
// landmarks the set also holds each block's token count and its log2, the block columns'
// score bias (SparseTileArgs::block_bias): like the columns, they depend on seq and config only.
class TileColumnSet {
 public:
  static constexpr std::size_t kMaxBuiltWindow = 256;

  TileColumnSet(std::size_t seq, const SparseConfig& config, std::size_t lanes, unsigned threads)
      : grid_(TileGrid::for_config(seq, config, lanes)),
        tiles_(grid_.tiles()),
        seq_(seq),
        lanes_(lanes),
        config_(config),
        built_(config.window <= kMaxBuiltWindow),
        chunks_(built_ ? (tiles_ + kTilesPerChunk - 1) / kTilesPerChunk : 0),
        where_(built_ ? tiles_ : 0) {
    TilePattern own(seq, config, lanes);  // the bound, and the one-row tiles where the set is not built
    if (!built_) max_columns_ = own.max_columns();
    if (config.landmarks && config.landmark_mode == LandmarkMode::kMass) {
      for (std::size_t b = 0; b < block_count(seq, config.block_size); ++b) {
        block_counts_.push_back(block_tokens(b, seq, config.block_size));
        block_bias_.push_back(std::log2(static_cast<float>(block_counts_.back())));
      }
    }
    parallel_for(chunks_.size(), threads, [&](std::size_t first, std::size_t last, unsigned) {
      TilePattern pattern(seq, config, lanes);
      for (std::size_t c = first; c < last; ++c) {
        for (std::size_t t = c * kTilesPerChunk; t < std::min(tiles_, (c + 1) * kTilesPerChunk); ++t) {
          pattern.build(grid_.row0(t), grid_.rows(t));
          const kernels::TileColumns cols = pattern.columns();
          where_[t] = {static_cast<std::uint32_t>(chunks_[c].size()), static_cast<std::uint32_t>(cols.relative.size()),
                       static_cast<std::uint32_t>(cols.globals.size()), static_cast<std::uint32_t>(cols.blocks.size())};
          for (auto group : {cols.relative, cols.globals, cols.blocks}) chunks_[c].insert(chunks_[c].end(), group.begin(), group.end());
        }
      }
    });
    for (const Where& w : where_) max_columns_ = std::max<std::size_t>(max_columns_, w.relative + w.globals + w.blocks);
    for (std::size_t t = 0; t < tiles_; ++t) {  // the first and last tiles at most
      if (grid_.rows(t) == 1) single_rows_.push_back({t, lane_candidates(columns(t, &own), grid_.row0(t), 0)});
    }
  }
  const TileGrid& grid() const { return grid_; }
  std::size_t tiles() const { return tiles_; }
  std::size_t bytes() const {
    std::size_t columns = 0;
    for (const auto& chunk : chunks_) columns += chunk.size();
    return columns * sizeof(kernels::TileColumn) + where_.size() * sizeof(Where);
  }
  // What a worker passes to columns(): a pattern of its own where the set is built tile by tile.
  std::optional<TilePattern> worker_pattern() const {
    return built_ ? std::nullopt : std::optional<TilePattern>(std::in_place, seq_, config_, lanes_);
  }
  // Tile t's columns, valid until `own` (from worker_pattern) builds another tile's.
  kernels::TileColumns columns(std::size_t t, TilePattern* own) const {
    if (!built_) {
      own->build(grid_.row0(t), grid_.rows(t));
      return own->columns();
    }
    const Where& w = where_[t];
    const kernels::TileColumn* base = chunks_[t / kTilesPerChunk].data() + w.start;
    return {{base, w.relative}, {base + w.relative, w.globals}, {base + w.relative + w.globals, w.blocks}};
  }
  std::size_t max_columns() const { return max_columns_; }
  // kMass: each block's log2 token count (the tiles' score bias), null otherwise.
  const float* block_bias() const { return block_bias_.empty() ? nullptr : block_bias_.data(); }
  // The landmarks of a one-row tile's row kernel (which adds ln(count) itself under kMass).
  kernels::LandmarkSource landmarks(const kernels::SparseTileArgs& a) const {
    kernels::LandmarkSource lm;
    lm.rows = {a.mean_k, a.mean_v, a.mean_stride};
    lm.counts = block_counts_.empty() ? nullptr : block_counts_.data();
    lm.mass_bias = !block_counts_.empty();
    return lm;
  }
  // The candidates of tile t's row, where the tile holds one row (grid().rows(t) == 1: the
  // grid's last when the sequence plus the shift is one past a multiple of the lanes, N =
  // 1024 in the bench preset). Such a tile costs what a full one does; the row kernel takes
  // it for a fraction of that (one of 65 tiles at N = 1024: ~2% of a call).
  const LaneCandidates& single_row(std::size_t t) const {
    return std::find_if(single_rows_.begin(), single_rows_.end(), [t](const auto& s) { return s.first == t; })->second;
  }

 private:
  static constexpr std::size_t kTilesPerChunk = 64;
  struct Where {
    std::uint32_t start, relative, globals, blocks;
  };
  TileGrid grid_;
  std::size_t tiles_, seq_, lanes_;
  SparseConfig config_;
  bool built_;
  std::vector<std::vector<kernels::TileColumn>> chunks_;
  std::vector<std::pair<std::size_t, LaneCandidates>> single_rows_;  // (tile, its row's candidates)
  std::vector<Where> where_;
  std::vector<std::uint32_t> block_counts_;  // kMass only
  std::vector<float> block_bias_;
  std::size_t max_columns_ = 0;
};

// The column set for (seq, config, lanes), kept from call to call for the last few shapes
// asked: a model's layers and bench's repetitions call again with the same shape, and
// building the set (a TilePattern per tile) took 10-16 us of a 150 us call (N = 1024, bench
// preset, 2 threads). Sets over kKeptBytes (N past ~80K at window 16) are not kept.
std::shared_ptr<const TileColumnSet> tile_columns(std::size_t seq, const SparseConfig& config, std::size_t lanes,
                                                  unsigned threads) {
  struct Entry {
    std::size_t seq, lanes;
    SparseConfig config;
    std::shared_ptr<const TileColumnSet> set;
  };
  static constexpr std::size_t kKept = 4, kKeptBytes = std::size_t{4} << 20;
  static std::mutex mutex;
  static std::vector<Entry> kept;  // newest last
  {
    std::lock_guard lock(mutex);
    for (auto it = kept.begin(); it != kept.end(); ++it) {
      if (it->seq == seq && it->lanes == lanes && it->config == config) {
        std::rotate(it, it + 1, kept.end());
        return kept.back().set;
      }
    }
  }
  auto set = std::make_shared<const TileColumnSet>(seq, config, lanes, threads);
  if (set->bytes() <= kKeptBytes) {
    std::lock_guard lock(mutex);
    if (kept.size() == kKept) kept.erase(kept.begin());
    kept.push_back({seq, lanes, config, set});
  }
  return set;
}

// Dense attention on the SIMD kernel: every kv head's keys in key tiles (the thread's
// workspace), then items of kDenseRowsPerItem rows of one query head to the workers.
void dense_tiled(const kernels::KernelTable& table, const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                 const AttentionShape& s, unsigned threads, Tensor& out) {
  const std::size_t per_head = kernels::tile_floats(s.seq, s.dim, table.lanes);
  const Workspace tiles(per_head * s.kv_heads);
  for_row_chunks(s.seq, table.lanes, threads, [&](std::size_t begin, std::size_t end) {  // every head
    for (std::size_t h = 0; h < s.kv_heads; ++h) {
      table.transpose_tiles(k.row(0, h), s.kv_heads * s.dim, 0, begin, end, s.dim, tiles.data() + h * per_head);
    }
  });
  const std::size_t items_per_head = (s.seq + kDenseRowsPerItem - 1) / kDenseRowsPerItem;
  // A head's items go last rows first: a causal item costs in proportion to its last row, so
  // the workers' final chunks are the cheapest rows and neither waits long on the other's
  // (before, the last chunk was the costliest rows of the last head). In one process, call
  // by call, two threads 1 - 6% faster at N = 1024 - 8192, one thread level (Intel host,
  // 2026-11-30; docs/performance-history.md, "On the Intel host: dense items costliest first").
  parallel_for(s.q_heads * items_per_head, threads, [&](std::size_t begin, std::size_t end, unsigned) {
    for (std::size_t item = begin; item < end; ++item) {
      const std::size_t h = item / items_per_head, kvh = h / s.group();
      const std::size_t r0 = (items_per_head - 1 - item % items_per_head) * kDenseRowsPerItem;
      kernels::DenseHeadArgs a;
      a.q = q.row(0, h);
      a.q_stride = s.q_heads * s.dim;
      a.k_tiles = tiles.data() + kvh * per_head;
      a.v = v.row(0, kvh);
      a.v_stride = s.kv_heads * s.dim;
      a.out = out.row(0, h);
      a.out_stride = s.q_heads * s.dim;
      a.n_keys = s.seq;
      a.dim = s.dim;
      a.causal = causal;
      a.scale = s.scale();
      table.dense_rows(a, r0, std::min(s.seq, r0 + kDenseRowsPerItem));
    }
  });
}

// Whether the tiles write the output with streaming stores: nothing in the call reads it
// back, and through the caches each line is first read in (and, with heads split between
// workers, lines of neighbouring heads bounce between the cores that write them). From
// 256 KiB of output, larger than the caches would keep for a caller anyway (scratch loop,
// bench preset, interleaved: N = 1024 two threads 0.143 against 0.157 ms, one 0.191 against
// 0.195; 4096 two threads 0.737 against 0.858; 8192 two 1.82 against 1.92, one 2.53 against
// 2.86). Smaller outputs (short sequences, the temporal head's frames) stay in the caches for
// whoever reads them next.
bool stream_output(const AttentionShape& s) {
  constexpr std::size_t kStreamOutBytes = std::size_t{256} << 10;
  return s.seq * s.q_heads * s.dim * sizeof(float) >= kStreamOutBytes;
}

// Whether the tiles ask for the next tiles' rows ahead (SparseTileArgs::prefetch_ahead): not
// where Q, K and V together fit in twice this host's L2. They stay in the caches between calls,
// the hardware prefetchers keep up, and the prefetch instructions only cost. Taking turns call by
// call with them on (family 25, medians of 100 - 150 calls, two rounds): bench preset, one thread,
// N = 256 / 512 / 1024 3.2 - 3.4 / 2.4 - 2.6 / 1.3 - 13% faster (1.9 - 3.3% in six more rounds
// at 1024), two threads 2.9 - 3.5 / 2.3 - 3.2 / 1.9 - 2.0%; aether at 1024 2.1 - 2.4%; default at
// 1024 level (0.988 - 1.007). Above it they pay: without them llama8x64 at 1024 (6 MiB) ran 6 -
// 7% slower on one thread, default at 2048 (3 MiB) 7 - 9%.
bool prefetch_ahead(const AttentionShape& s) {
  constexpr std::size_t kCachedInputBytes = std::size_t{2} << 20;
  return (s.q_heads + 2 * s.kv_heads) * s.seq * s.dim * sizeof(float) > kCachedInputBytes;
}

// One kv head's share of the tiled sparse pass: its keys in padded key tiles (PaddedTiles::floats;
// with the copied V rows, all the extra memory) and, with landmarks, its block means (the head's
// elements of `means`), both in one pass over its rows by `threads` workers; then the kernel
// arguments for its query heads' tiles. The means come from the K rows the transposes just read,
// on the core that will read them: computed apart, by both workers over every head, landmarks
// added ~30 us to a two-thread call at N = 1024 (0.165 ms against 0.136 without landmarks), more
// than the whole means pass takes on one thread (13 - 17 us).
kernels::SparseTileArgs prepare_head(const kernels::KernelTable& table, const Tensor& k, const Tensor& v,
                                     const AttentionShape& s, const TileGrid& grid, BlockMeans* means, std::size_t kvh,
                                     unsigned threads, float* memory) {
  const std::size_t positions = s.seq + grid.shift;
  const PaddedTiles kt(memory, s.dim, positions, table.lanes);
  const bool copy = copy_values(s);
  float* values = memory + PaddedTiles::floats(s.dim, positions, table.lanes);
  kernels::SparseTileArgs a;
  a.q_stride = s.q_heads * s.dim;
  a.seq = s.seq;
  a.kt = kt.tile0();
  a.key_shift = grid.shift;
  a.kv_stride = s.kv_heads * s.dim;
  a.out_stride = s.q_heads * s.dim;
  a.stream_out = stream_output(s);
  a.prefetch_ahead = prefetch_ahead(s);
  a.dim = s.dim;
  a.scale = s.scale();
  const std::size_t chunk_multiple = means ? std::lcm(table.lanes, means->block_size) : table.lanes;
  // Chunks of key positions; the means take the rows of the same numbers (one row on from
  // the transposes' with the shift), so no block straddles two chunks.
  for_row_chunks(positions, chunk_multiple, threads, [&](std::size_t begin, std::size_t end) {
    table.transpose_tiles(k.row(0, kvh), a.kv_stride, grid.shift, begin, end, s.dim, kt.tile0());
    if (copy) copy_value_rows(k, v, kvh, begin, std::min(end, s.seq), end - begin, values);
    if (means && begin < s.seq) fill_block_means(table.block_means, k, v, begin, std::min(end, s.seq), kvh, 1, *means);
  });
  a.k = k.row(0, kvh);
  a.v = v.row(0, kvh);
  a.values = copy ? values : a.v;
  a.values_stride = copy ? s.dim : a.kv_stride;
  if (means) {
    a.mean_k = means->k_row(0, kvh);
    a.mean_v = means->v_row(0, kvh);
    a.mean_stride = means->kv_heads * means->dim;
  }
  return a;
}

// The calling thread's scratch for the tile kernel ([columns][lanes] scores), sized for
// `columns`: taken before a worker runs tiles, so running them allocates nothing.
float* tile_scratch(const TileColumnSet& columns, std::size_t lanes) {
  thread_local AlignedFloats scratch;
  if (scratch.size() < lanes * columns.max_columns()) scratch.resize(lanes * columns.max_columns());
  return scratch.data();
}

// Tiles [begin, end) of kv head kvh (arguments from prepare_head), each for all the query
// heads of its group, on the calling thread; own: its TileColumnSet::worker_pattern.
void run_tiles(const kernels::KernelTable& table, const Tensor& q, const AttentionShape& s,
               const TileColumnSet& columns, TilePattern* own, const kernels::SparseTileArgs& a, std::size_t kvh,
               std::size_t begin, std::size_t end, float* scratch, Tensor& out) {
  const TileGrid& grid = columns.grid();
  kernels::SparseTileArgs tile_args = a;
  tile_args.block_bias = columns.block_bias();
  for (std::size_t t = begin; t < end; ++t) {
    if (grid.rows(t) == 1) {  // the row kernel; scratch holds a tile's columns, more than its candidates
      const LaneCandidates& single = columns.single_row(t);
      const std::size_t row = grid.row0(t);
      const kernels::LandmarkSource landmarks = columns.landmarks(a);
      for (std::size_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h) {
        table.sparse_row_f32(q.row(row, h), s.dim, a.scale, {a.k, a.v, a.kv_stride}, single.tokens, landmarks,
                             single.blocks, scratch, out.row(row, h));
      }
      continue;
    }
    const kernels::TileColumns cols = columns.columns(t, own);  // shared by the group's query heads
    for (std::size_t h = kvh * s.group(); h < (kvh + 1) * s.group(); ++h) {
      kernels::SparseTileArgs ah = tile_args;
      ah.q = q.row(0, h);
      ah.out = out.row(0, h);
      table.sparse_tile(ah, grid.row0(t), grid.rows(t), cols, scratch);
    }
  }
}

// The kv heads one after the other, each transposed and then its tiles split between the
// workers, which share its K/V.
void sparse_tiled_by_tiles(const kernels::KernelTable& table, const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionShape& s, BlockMeans* means, const TileColumnSet& columns, unsigned threads,
                           Tensor& out) {
  const Workspace memory(head_tile_floats(s, columns.grid(), table.lanes));
  for (std::size_t kvh = 0; kvh < s.kv_heads; ++kvh) {
    const kernels::SparseTileArgs a = prepare_head(table, k, v, s, columns.grid(), means, kvh, threads, memory.data());
    parallel_for(columns.tiles(), threads, [&](std::size_t begin, std::size_t end, unsigned) {
      std::optional<TilePattern> own = columns.worker_pattern();
      run_tiles(table, q, s, columns, own ? &*own : nullptr, a, kvh, begin, end, tile_scratch(columns, table.lanes), out);
      if (a.stream_out) table.stream_fence();
    });
  }
}

// Which share of the heads worker w takes first in this call: share (w + turn) % threads. While
// a head's V rows fit the caches (copy_values false), turn is 0: a worker has the same heads
// every call, their rows of Q, K, V and the output still in its core's caches (turning the
// shares: N = 1024 level to 2.6% slower, 2048 - 4096 level). Past that the shares turn from call
// to call. With the same heads every call, one worker's setup took about twice as long as the
// other's in most runs (its transposes 2.5 - 3x), whichever worker had those heads, and its
// tiles 1.25x; not so with the heads turning, nor with one worker running every head. Why is not
// known (this VM has no counters; history, "Two-thread head shares turned ..."). Bench preset,
// two threads, blocks of calls taking turns, fixed over turning: N = 8192 1.01 - 1.04, 16384
// 1.05 - 1.16, 32768 1.10 - 1.31, 65536 1.03, 131072 1.00; default at 16384 1.08, llama8x64
// and GQA 4:2 level.
unsigned share_turn(const AttentionShape& s, unsigned threads) {
  static std::atomic<unsigned> calls{0};
  return copy_values(s) ? calls.fetch_add(1, std::memory_order_relaxed) % threads : 0;
}

// Each worker takes whole kv heads (rvt/core/owned_work.hpp), its own share first (share_turn); it
// transposes a head's K and block means into its own workspace and runs the head's tiles,
// kTilesPerClaim at a time; a worker left without a head helps run the tiles of heads others still
// run, until every tile is claimed. On this VM one core often runs slower than the other for
// minutes (its neighbours): with 4 heads on 2 workers the fast one waited idle for the slow one's
// second head. Against whole heads with no help and shared block means (2 threads, interleaved,
// medians of 5 rounds): with a busy-loop taking half of one core, N = 1024 0.164 against 0.351 ms,
// 4096 0.99 against 1.13; without it, 4096 0.63 against 0.70 and 1.07 against 1.16 in two phases of
// the VM, 2048 0.44 against 0.47 in one and 0.32 against 0.29 in the other, 1024 0.14 - 0.19
// against 0.13 - 0.20. Helping to the end, without the own shares and per-head means, was up to 30%
// slower than no help in some phases (N = 1024: 0.174 against 0.133 ms): the tiles' data moved
// between the cores. The workers no longer wait for each other between a head's setup and its
// tiles, and a helper no longer leaves a head's last quarter to its owner: at N = 16384 the barrier
// kept one worker waiting 350 - 600 us a call, the quarter another ~380. Bench preset, two threads,
// the variants taking turns call by call in one process (medians of 31 calls each, the first three
// of four runs): N = 16384 4.08 - 4.13 ms against 4.38 - 4.41, 32768 10.1 - 11.5 against 10.9 -
// 13.7, 8192 1.44 - 1.50 against 1.48 - 1.57, 1024 and 4096 level or faster; with 2 or 8 heads
// level or faster.
void sparse_tiled_by_heads(const kernels::KernelTable& table, const Tensor& q, const Tensor& k, const Tensor& v,
                           const AttentionShape& s, BlockMeans* means, const TileColumnSet& columns, unsigned threads,
                           Tensor& out) {
  constexpr std::size_t kTilesPerClaim = 8;  // 128 rows on AVX-512: the run's window keys stay in cache
  OwnedWork work(s.kv_heads, columns.tiles(), kTilesPerClaim, threads);
  const unsigned turn = share_turn(s, threads);
  std::vector<kernels::SparseTileArgs> args(s.kv_heads);  // each head's, written by its owner before publish
  parallel_for(threads, threads, [&](std::size_t, std::size_t, unsigned worker) {
    // What can throw comes before a head is taken (see owned_work.hpp).
    const Workspace memory(head_tile_floats(s, columns.grid(), table.lanes));
    float* scratch = tile_scratch(columns, table.lanes);
    std::optional<TilePattern> own_pattern = columns.worker_pattern();
    TilePattern* own = own_pattern ? &*own_pattern : nullptr;
    // Pieces [begin, end) of head h are its tiles from the share's start: the workers' heads
    // start at different rows (worker w at w / threads of the sequence, wrapping round), as
    // heads run from the same rows at the same time on two cores were slower (the cause is
    // not known). Scratch loop, bench preset, two threads, alternating: N = 1024 0.109 ms
    // against 0.112, 4096 0.586 against 0.604, 8192 1.55 against 1.63.
    auto tiles = [&](std::size_t h, std::size_t begin, std::size_t end) {
      const std::size_t n = columns.tiles(), first = (begin + work.share_of(h) * n / threads) % n;
      const std::size_t last = first + (end - begin);
      run_tiles(table, q, s, columns, own, args[h], h, first, std::min(last, n), scratch, out);
      if (last > n) run_tiles(table, q, s, columns, own, args[h], h, 0, last - n, scratch, out);
    };
    while (const std::optional<std::size_t> h = work.take((worker + turn) % threads)) {
      args[*h] = prepare_head(table, k, v, s, columns.grid(), means, *h, 1, memory.data());
      work.publish(*h);
      work.run(*h, tiles);
      work.wait_helpers(*h);  // then the workspace may take the next head
    }
    work.help(tiles);
    if (stream_output(s)) table.stream_fence();
  });
}

// split_heads: each worker takes whole kv heads; otherwise the heads go one after the other,
// their tiles split between workers. Each head's block means are filled with its transposes.
void sparse_tiled(const kernels::KernelTable& table, const Tensor& q, const Tensor& k, const Tensor& v,
                  const SparseConfig& config, const AttentionShape& s, unsigned threads, bool split_heads, Tensor& out) {
  const std::shared_ptr<const TileColumnSet> kept = tile_columns(s.seq, config, table.lanes, threads);
  BlockMeans unfilled = config.landmarks ? unfilled_block_means(k, config.block_size) : BlockMeans{};
  BlockMeans* means = config.landmarks ? &unfilled : nullptr;
  if (split_heads) sparse_tiled_by_heads(table, q, k, v, s, means, *kept, threads, out);
  else sparse_tiled_by_tiles(table, q, k, v, s, means, *kept, threads, out);
}

// The SIMD kernels assume finite inputs (a masked lane's 0 weight times a NaN value is
// NaN; max reductions order NaNs differently). Non-finite inputs take the scalar
// reference, whose NaN/Inf propagation is the documented behaviour on every ISA.
// The scan is the table's SIMD one, split over the worker threads.
const kernels::KernelTable* pick_kernels(const ExecOptions& exec, const Tensor& q, const Tensor& k, const Tensor& v,
                                         unsigned threads) {
  const kernels::KernelTable* table = kernels::kernel_table(kernels::resolve_isa(exec.isa));
  if (exec.isa_ran) *exec.isa_ran = table ? table->isa : kernels::Isa::kScalar;
  if (!table || exec.inputs_finite) return table;
  auto scan = [&](std::span<const float> x) {  // chunks over the workers; stops at the first hit
    constexpr std::size_t kChunk = std::size_t{1} << 16;
    std::atomic<bool> found{false};
    parallel_runs(x.size(), kChunk, threads, [&](std::size_t begin, std::size_t end) {
      if (!found.load(std::memory_order_relaxed) && table->any_nonfinite(x.data() + begin, end - begin)) found.store(true);
    });
    return found.load();
  };
  if (!scan(q.values()) && !scan(k.values()) && !scan(v.values())) return table;
  if (exec.isa_ran) *exec.isa_ran = kernels::Isa::kScalar;
  return nullptr;
}

}  // namespace

BlockMeans block_means(const Tensor& k, const Tensor& v, std::size_t block_size, unsigned threads,
                       const kernels::KernelTable* table) {
  BlockMeans m = unfilled_block_means(k, block_size);
  // Workers take runs of whole blocks, ~256 rows each: a block of the bench preset is ~0.4 us
  // of work, and handed out one at a time two threads took 13.5 us at N = 1024, one 12.9;
  // runs: 8.5.
  const BlockMeansFn means = table ? table->block_means : &kernels::block_means_ref;
  for_row_chunks(k.seq(), block_size, threads, [&](std::size_t begin, std::size_t end) {
    fill_block_means(means, k, v, begin, end, 0, m.kv_heads, m);
  });
  return m;
}

Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                       const ExecOptions& exec) {
  const AttentionShape s = check_qkv(q, k, v);
  const kernels::KernelTable* table = pick_kernels(exec, q, k, v, exec.threads);
  if (!table) {
    Tensor out(s.seq, s.q_heads, s.dim);
    if (s.seq > 0) dense_reference(q, k, v, causal, s, exec.threads, out);
    return out;
  }
  Tensor out(s.seq, s.q_heads, s.dim, Tensor::Uninitialized{});  // dense_rows writes every value
  dense_tiled(*table, q, k, v, causal, s, exec.threads, out);
  return out;
}

Tensor sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SparseConfig& config,
                        const ExecOptions& exec) {
  config.validate();
  const AttentionShape s = check_qkv(q, k, v);
  // Workers of the tiled path. Up to kMaxSplitHeadRows rows with two or more kv heads, each
  // worker takes whole heads: its transposed K and its V rows stay in its own core's caches
  // (bench preset, 2 threads against 1: 1.3x at N = 1024, 1.8x at 2048 - 8192, 1.6x at 16K - 32K; at 131072
  // 78 ms against 81 for the tile split; at 1M the tile split was faster, 902-910 ms against
  // 985-1584, and holds one transposed head instead of one per worker). Otherwise one kv head's
  // tiles, each with all the query heads of its group, are split between the workers, which
  // share its K/V; one worker per kMinHeadRowsPerWorker rows times query heads per kv head.
  // Below that a second worker cost more than it saved on the 2-core machine (one head:
  // N = 1024 0.093 ms against 0.064); MQA with 4 query heads gains from N = 1024 (0.20-0.22 ms
  // against 0.24-0.29; 4096: 0.94-0.97 against 1.38-1.63; whole query heads per worker, the
  // K/V reads no longer shared by a tile's heads, were slower from 16K: 7.3 ms against 5.4).
  // The result is the same for every thread count.
  constexpr std::size_t kMinHeadRowsPerWorker = 2048, kMaxSplitHeadRows = std::size_t{1} << 18;
  const std::size_t asked = std::max(1u, exec.threads);
  const bool split_heads = asked > 1 && s.kv_heads >= 2 && s.seq <= kMaxSplitHeadRows;
  const std::size_t head_rows = s.seq * s.group();
  const unsigned threads = split_heads ? static_cast<unsigned>(std::min<std::size_t>(asked, s.kv_heads))
                                       : static_cast<unsigned>(std::clamp<std::size_t>(head_rows / kMinHeadRowsPerWorker, 1, asked));
  const kernels::KernelTable* table = pick_kernels(exec, q, k, v, threads);
  if (table && s.seq > 0) {
    Tensor out(s.seq, s.q_heads, s.dim, Tensor::Uninitialized{});  // the tiles write every value
    // Fault the fresh pages in on this thread: workers first-touching them together contend
    // in the kernel's page-fault path (2 threads ran 2-3x slower than 1 at N = 4096).
    if (threads > 1) {
      for (std::size_t i = 0; i < out.size(); i += 1024) out.data()[i] = 0.0f;
    }
    sparse_tiled(*table, q, k, v, config, s, threads, split_heads, out);
    return out;
  }
  return sparse_reference(q, k, v, config, exec.threads);  // --isa scalar, or inputs with a NaN or an inf
}

Tensor sparse_reference(const Tensor& q, const Tensor& k, const Tensor& v, const SparseConfig& config,
                        unsigned threads, bool prefix_rows) {
  config.validate();
  const AttentionShape s = check_qkv(q, k, v);
  Tensor out(s.seq, s.q_heads, s.dim);
  if (s.seq == 0) return out;
  const BlockMeans means = config.landmarks ? block_means(k, v, config.block_size, threads) : BlockMeans{};
  const float scale = s.scale();
  const std::size_t kv_stride = s.kv_heads * s.dim;
  // Per-worker pattern builders (O(N) stamps each) and score scratch, made on first use.
  struct WorkerState {
    PatternBuilder pattern;
    std::vector<float> scratch;
  };
  std::vector<std::unique_ptr<WorkerState>> workers(std::max(1u, threads));
  parallel_for(s.seq, threads, [&](std::size_t begin, std::size_t end, unsigned w) {
    if (!workers[w]) {
      PatternBuilder pattern(s.seq, config);
      const std::size_t scratch = pattern.max_row_candidates();
      workers[w] = std::make_unique<WorkerState>(WorkerState{std::move(pattern), std::vector<float>(scratch)});
    }
    WorkerState& ws = *workers[w];
    for (std::size_t i = begin; i < end; ++i) {
      if (prefix_rows) ws.pattern.build(i, i + 1);  // row i of the sequence cut after i
      else ws.pattern.build(i);
      for (std::size_t h = 0; h < s.q_heads; ++h) {
        const std::size_t kvh = h / s.group();
        const kernels::RowSource src{k.row(0, kvh), v.row(0, kvh), kv_stride};
        kernels::LandmarkSource lm;
        if (config.landmarks) {
          lm.rows = {means.k_row(0, kvh), means.v_row(0, kvh), means.kv_heads * means.dim};
          lm.counts = means.counts.data();
          lm.mass_bias = config.landmark_mode == LandmarkMode::kMass;
        }
        kernels::sparse_row_ref<float>(q.row(i, h), s.dim, scale, src, ws.pattern.tokens(), lm, ws.pattern.blocks(),
                                       ws.scratch.data(), out.row(i, h));
      }
    }
  });
  return out;
}

}  // namespace rvt::attn
