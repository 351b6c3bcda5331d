#include "rvt/parity/oracle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rvt/core/error.hpp"

namespace rvt::parity {
namespace {

double dot64(const float* a, const float* b, std::size_t n) {
  double acc = 0.0;
  for (std::size_t d = 0; d < n; ++d) acc += static_cast<double>(a[d]) * b[d];
  return acc;
}

// Softmax in place; returns nothing for an empty set. A -inf score weighs 0; all of them
// -inf weigh 0 each, as an empty set (the kernels' rule).
void softmax(std::vector<double>& s) {
  if (s.empty()) return;
  const double mx = *std::max_element(s.begin(), s.end());
  if (mx == -std::numeric_limits<double>::infinity()) {
    std::fill(s.begin(), s.end(), 0.0);
    return;
  }
  double sum = 0.0;
  for (double& x : s) sum += (x = std::exp(x - mx));
  for (double& x : s) x /= sum;
}

// Block means in double: [n_blocks][kv_heads][dim].
struct Means64 {
  std::vector<double> k, v;
  std::vector<std::size_t> counts;
};

Means64 means64(const Tensor& k, const Tensor& v, std::size_t block) {
  const std::size_t nb = attn::block_count(k.seq(), block), hk = k.heads(), dim = k.dim();
  Means64 m;
  m.k.assign(nb * hk * dim, 0.0);
  m.v.assign(m.k.size(), 0.0);
  m.counts.assign(nb, 0);
  for (std::size_t b = 0; b < nb; ++b) {
    const std::size_t begin = b * block, end = std::min(begin + block, k.seq());
    m.counts[b] = end - begin;
    for (std::size_t h = 0; h < hk; ++h) {
      for (std::size_t t = begin; t < end; ++t) {
        for (std::size_t d = 0; d < dim; ++d) {
          m.k[(b * hk + h) * dim + d] += k.at(t, h, d);
          m.v[(b * hk + h) * dim + d] += v.at(t, h, d);
        }
      }
      for (std::size_t d = 0; d < dim; ++d) {
        m.k[(b * hk + h) * dim + d] /= static_cast<double>(end - begin);
        m.v[(b * hk + h) * dim + d] /= static_cast<double>(end - begin);
      }
    }
  }
  return m;
}

void check_head(const Tensor& q, const Tensor& k, std::size_t head, std::size_t rows) {
  attn::check_qkv(q, k, k);
  if (head >= q.heads()) throw_usage("weight map: head " + std::to_string(head) + " out of range");
  if (rows > q.seq()) throw_usage("weight map: rows beyond the sequence");
}

}  // namespace

Tensor dense_f64(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const attn::AttentionShape s = attn::check_qkv(q, k, v);
  Tensor out(s.seq, s.q_heads, s.dim);
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.dim));
  std::vector<double> w;
  for (std::size_t i = 0; i < s.seq; ++i) {
    const std::size_t count = causal ? i + 1 : s.seq;
    for (std::size_t h = 0; h < s.q_heads; ++h) {
      const std::size_t kvh = h / s.group();
      w.resize(count);
      for (std::size_t j = 0; j < count; ++j) w[j] = dot64(q.row(i, h), k.row(j, kvh), s.dim) * scale;
      softmax(w);
      for (std::size_t d = 0; d < s.dim; ++d) {
        double acc = 0.0;
        for (std::size_t j = 0; j < count; ++j) acc += w[j] * v.at(j, kvh, d);
        out.at(i, h, d) = static_cast<float>(acc);
      }
    }
  }
  return out;
}

Tensor sparse_f64(const Tensor& q, const Tensor& k, const Tensor& v, const attn::SparseConfig& config) {
  const attn::AttentionShape s = attn::check_qkv(q, k, v);
  Tensor out(s.seq, s.q_heads, s.dim);
  if (s.seq == 0) return out;
  const Means64 m = config.landmarks ? means64(k, v, config.block_size) : Means64{};
  const bool mass = config.landmark_mode == attn::LandmarkMode::kMass;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.dim));
  attn::PatternBuilder p(s.seq, config);
  std::vector<double> w;
  for (std::size_t i = 0; i < s.seq; ++i) {
    p.build(i);
    const auto tokens = p.tokens();
    const auto blocks = p.blocks();
    for (std::size_t h = 0; h < s.q_heads; ++h) {
      const std::size_t kvh = h / s.group();
      w.clear();
      for (std::uint32_t j : tokens) w.push_back(dot64(q.row(i, h), k.row(j, kvh), s.dim) * scale);
      for (std::uint32_t b : blocks) {
        const double* mk = m.k.data() + (b * s.kv_heads + kvh) * s.dim;
        double acc = 0.0;
        for (std::size_t d = 0; d < s.dim; ++d) acc += static_cast<double>(q.at(i, h, d)) * mk[d];
        w.push_back(acc * scale + (mass ? std::log(static_cast<double>(m.counts[b])) : 0.0));
      }
      softmax(w);
      for (std::size_t d = 0; d < s.dim; ++d) {
        double acc = 0.0;
        for (std::size_t c = 0; c < tokens.size(); ++c) acc += w[c] * v.at(tokens[c], kvh, d);
        for (std::size_t c = 0; c < blocks.size(); ++c) {
          acc += w[tokens.size() + c] * m.v[(blocks[c] * s.kv_heads + kvh) * s.dim + d];
        }
        out.at(i, h, d) = static_cast<float>(acc);
      }
    }
  }
  return out;
}

WeightMap dense_weights(const Tensor& q, const Tensor& k, std::size_t head, bool causal, std::size_t rows) {
  check_head(q, k, head, rows);
  const std::size_t kvh = head / (q.heads() / k.heads());
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.dim()));
  WeightMap map;
  map.rows = rows;
  map.w.assign(rows * rows, 0.0);
  std::vector<double> s;
  for (std::size_t i = 0; i < rows; ++i) {
    const std::size_t count = causal ? i + 1 : rows;
    s.resize(count);
    for (std::size_t j = 0; j < count; ++j) s[j] = dot64(q.row(i, head), k.row(j, kvh), q.dim()) * scale;
    softmax(s);
    std::copy(s.begin(), s.end(), map.w.begin() + static_cast<long>(i * rows));
  }
  return map;
}

WeightMap sparse_weights(const Tensor& q, const Tensor& k, std::size_t head, const attn::SparseConfig& config,
                         std::size_t rows) {
  check_head(q, k, head, rows);
  WeightMap map;
  map.rows = rows;
  map.w.assign(rows * rows, 0.0);
  if (rows == 0) return map;
  const Tensor kp = k.first_rows(rows);
  const std::size_t kvh = head / (q.heads() / k.heads());
  const Means64 m = config.landmarks ? means64(kp, kp, config.block_size) : Means64{};
  const bool mass = config.landmark_mode == attn::LandmarkMode::kMass;
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.dim()));
  attn::PatternBuilder p(rows, config);
  std::vector<double> s;
  for (std::size_t i = 0; i < rows; ++i) {
    p.build(i);
    const auto tokens = p.tokens();
    const auto blocks = p.blocks();
    s.clear();
    for (std::uint32_t j : tokens) s.push_back(dot64(q.row(i, head), kp.row(j, kvh), q.dim()) * scale);
    for (std::uint32_t b : blocks) {
      const double* mk = m.k.data() + (b * k.heads() + kvh) * q.dim();
      double acc = 0.0;
      for (std::size_t d = 0; d < q.dim(); ++d) acc += static_cast<double>(q.at(i, head, d)) * mk[d];
      s.push_back(acc * scale + (mass ? std::log(static_cast<double>(m.counts[b])) : 0.0));
    }
    softmax(s);
    double* row = map.w.data() + i * rows;
    for (std::size_t c = 0; c < tokens.size(); ++c) row[tokens[c]] += s[c];
    for (std::size_t c = 0; c < blocks.size(); ++c) {
      const std::size_t begin = blocks[c] * config.block_size;
      const std::size_t end = std::min(begin + config.block_size, rows);
      const double share = s[tokens.size() + c] / static_cast<double>(end - begin);
      for (std::size_t j = begin; j < end; ++j) row[j] += share;
    }
  }
  return map;
}

Tensor repeat_heads(const Tensor& t, std::size_t group) {
  Tensor out(t.seq(), t.heads() * group, t.dim());
  for (std::size_t s = 0; s < t.seq(); ++s)
    for (std::size_t h = 0; h < out.heads(); ++h) std::copy_n(t.row(s, h / group), t.dim(), out.row(s, h));
  return out;
}

Tensor head_slice(const Tensor& t, std::size_t h) {
  Tensor out(t.seq(), 1, t.dim());
  for (std::size_t s = 0; s < t.seq(); ++s) std::copy_n(t.row(s, h), t.dim(), out.row(s, 0));
  return out;
}

}  // namespace rvt::parity
