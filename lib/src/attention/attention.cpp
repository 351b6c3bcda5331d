#include "rvt/attention/attention.hpp"

#include <algorithm>

#include "rvt/core/parallel.hpp"
#include "rvt/kernels/reference.hpp"

namespace rvt::attn {

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
  Tensor out(s.seq, s.q_heads, s.dim);
  const float scale = s.scale();
  const std::size_t kv_stride = s.kv_heads * s.dim;
  parallel_for(s.seq, exec.threads, [&](std::size_t begin, std::size_t end, unsigned) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t count = causal ? i + 1 : s.seq;
      for (std::size_t h = 0; h < s.q_heads; ++h) {
        const std::size_t kvh = h / s.group();
        const kernels::RowSource src{k.row(0, kvh), v.row(0, kvh), kv_stride};
        kernels::dense_row_ref(q.row(i, h), s.dim, scale, src, count, out.row(i, h));
      }
    }
  });
  return out;
}

Tensor sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SparseConfig& config,
                        const ExecOptions& exec) {
  config.validate();
  const AttentionShape s = check_qkv(q, k, v);
  Tensor out(s.seq, s.q_heads, s.dim);
  if (s.seq == 0) return out;
  const BlockMeans means = config.landmarks ? block_means(k, v, config.block_size) : BlockMeans{};
  const float scale = s.scale();
  const std::size_t kv_stride = s.kv_heads * s.dim;
  parallel_for(s.seq, exec.threads, [&](std::size_t begin, std::size_t end, unsigned) {
    PatternBuilder pattern(s.seq, config);  // per worker: its own stamps and scratch
    std::vector<float> scratch(pattern.max_row_candidates());
    for (std::size_t i = begin; i < end; ++i) {
      pattern.build(i);
      for (std::size_t h = 0; h < s.q_heads; ++h) {
        const std::size_t kvh = h / s.group();
        const kernels::RowSource src{k.row(0, kvh), v.row(0, kvh), kv_stride};
        kernels::LandmarkSource lm;
        if (config.landmarks) {
          lm.rows = {means.k_row(0, kvh), means.v_row(0, kvh), means.kv_heads * means.dim};
          lm.counts = means.counts.data();
          lm.mass_bias = config.landmark_mode == LandmarkMode::kMass;
        }
        kernels::sparse_row_ref(q.row(i, h), s.dim, scale, src, pattern.tokens(), lm, pattern.blocks(),
                                scratch.data(), out.row(i, h));
      }
    }
  });
  return out;
}

}  // namespace rvt::attn
