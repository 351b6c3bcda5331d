#include "rvt/attention/attention.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

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

void dense_tiled(const kernels::KernelTable& table, const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                 const AttentionShape& s, unsigned threads, Tensor& out) {
  const std::size_t per_head = kernels::tile_floats(s.seq, s.dim, table.lanes);
  AlignedFloats tiles(per_head * s.kv_heads);
  for (std::size_t h = 0; h < s.kv_heads; ++h) {
    kernels::transpose_key_tiles(k.row(0, h), s.kv_heads * s.dim, s.seq, s.dim, table.lanes,
                                 tiles.data() + h * per_head);
  }
  const std::size_t items_per_head = (s.seq + kDenseRowsPerItem - 1) / kDenseRowsPerItem;
  parallel_for(s.q_heads * items_per_head, threads, [&](std::size_t begin, std::size_t end, unsigned) {
    for (std::size_t item = begin; item < end; ++item) {
      const std::size_t h = item / items_per_head, kvh = h / s.group();
      const std::size_t r0 = (item % items_per_head) * kDenseRowsPerItem;
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

// The SIMD kernels assume finite inputs (a masked lane's 0 weight times a NaN value is
// NaN; max reductions order NaNs differently). Non-finite inputs take the scalar
// reference, whose NaN/Inf propagation is the documented behaviour on every ISA.
const kernels::KernelTable* pick_kernels(kernels::Isa requested, const Tensor& q, const Tensor& k, const Tensor& v) {
  const kernels::KernelTable* table = kernels::kernel_table(kernels::resolve_isa(requested));
  if (table && (any_nonfinite(q.values()) || any_nonfinite(k.values()) || any_nonfinite(v.values()))) return nullptr;
  return table;
}

}  // namespace

BlockMeans block_means(const Tensor& k, const Tensor& v, std::size_t block_size) {
  BlockMeans m;
  m.block_size = block_size;
  m.n_blocks = block_count(k.seq(), block_size);
  m.kv_heads = k.heads();
  m.dim = k.dim();
  m.k.assign(m.n_blocks * m.kv_heads * m.dim, 0.0f);
  m.v.assign(m.k.size(), 0.0f);
  m.counts.assign(m.n_blocks, 0);
  std::vector<double> acc_k(m.dim), acc_v(m.dim);
  for (std::size_t b = 0; b < m.n_blocks; ++b) {
    const std::size_t begin = b * block_size;
    const std::size_t end = std::min(begin + block_size, k.seq());
    m.counts[b] = static_cast<std::uint32_t>(end - begin);
    for (std::size_t h = 0; h < m.kv_heads; ++h) {
      std::fill(acc_k.begin(), acc_k.end(), 0.0);
      std::fill(acc_v.begin(), acc_v.end(), 0.0);
      for (std::size_t t = begin; t < end; ++t) {
        for (std::size_t d = 0; d < m.dim; ++d) {
          acc_k[d] += k.at(t, h, d);
          acc_v[d] += v.at(t, h, d);
        }
      }
      float* mk = m.k.data() + (b * m.kv_heads + h) * m.dim;
      float* mv = m.v.data() + (b * m.kv_heads + h) * m.dim;
      const double count = static_cast<double>(end - begin);
      for (std::size_t d = 0; d < m.dim; ++d) {
        mk[d] = static_cast<float>(acc_k[d] / count);
        mv[d] = static_cast<float>(acc_v[d] / count);
      }
    }
  }
  return m;
}

Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                       const ExecOptions& exec) {
  const AttentionShape s = check_qkv(q, k, v);
  const kernels::KernelTable* table = pick_kernels(exec.isa, q, k, v);
  Tensor out(s.seq, s.q_heads, s.dim);
  if (s.seq == 0) return out;
  if (table) {
    dense_tiled(*table, q, k, v, causal, s, exec.threads, out);
  } else {
    dense_reference(q, k, v, causal, s, exec.threads, out);
  }
  return out;
}

Tensor sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SparseConfig& config,
                        const ExecOptions& exec) {
  config.validate();
  const AttentionShape s = check_qkv(q, k, v);
  const kernels::KernelTable* table = pick_kernels(exec.isa, q, k, v);
  const auto row_kernel = table ? table->sparse_row_f32 : &kernels::sparse_row_ref<float>;
  Tensor out(s.seq, s.q_heads, s.dim);
  if (s.seq == 0) return out;
  const BlockMeans means = config.landmarks ? block_means(k, v, config.block_size) : BlockMeans{};
  const float scale = s.scale();
  const std::size_t kv_stride = s.kv_heads * s.dim;
  // Per-worker pattern builders (O(N) stamps each) and score scratch, made on first use.
  struct WorkerState {
    PatternBuilder pattern;
    std::vector<float> scratch;
  };
  std::vector<std::unique_ptr<WorkerState>> workers(std::max(1u, exec.threads));
  parallel_for(s.seq, exec.threads, [&](std::size_t begin, std::size_t end, unsigned w) {
    if (!workers[w]) {
      PatternBuilder pattern(s.seq, config);
      const std::size_t scratch = pattern.max_row_candidates();
      workers[w] = std::make_unique<WorkerState>(WorkerState{std::move(pattern), std::vector<float>(scratch)});
    }
    WorkerState& ws = *workers[w];
    for (std::size_t i = begin; i < end; ++i) {
      ws.pattern.build(i);
      for (std::size_t h = 0; h < s.q_heads; ++h) {
        const std::size_t kvh = h / s.group();
        const kernels::RowSource src{k.row(0, kvh), v.row(0, kvh), kv_stride};
        kernels::LandmarkSource lm;
        if (config.landmarks) {
          lm.rows = {means.k_row(0, kvh), means.v_row(0, kvh), means.kv_heads * means.dim};
          lm.counts = means.counts.data();
          lm.mass_bias = config.landmark_mode == LandmarkMode::kMass;
        }
        row_kernel(q.row(i, h), s.dim, scale, src, ws.pattern.tokens(), lm, ws.pattern.blocks(), ws.scratch.data(),
                   out.row(i, h));
      }
    }
  });
  return out;
}

}  // namespace rvt::attn
