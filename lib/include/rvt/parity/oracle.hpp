// f64 oracles for the parity suites: attention computed straight from the definition
// (attention-spec.md sections 2-3) in double, independent of the kernels under test, and
// the softmax weight maps the pictures show.
//
// Effective sparse weights: a landmark with softmax weight w contributes w * meanV_b =
// sum over the block's tokens of (w / count_b) * v_j, so spreading w evenly over the
// block's tokens gives a [query][key] matrix that reproduces the sparse output exactly
// (output row = weights row x V) and is directly comparable with the dense softmax.
#pragma once

#include <vector>

#include "rvt/attention/attention.hpp"

namespace rvt::parity {

// Dense attention in double (rounded to f32 at the end). causal: keys 0..i.
Tensor dense_f64(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);

// Sparse attention in double over the reference candidate set (PatternBuilder), with
// landmark means computed in double from K and V.
Tensor sparse_f64(const Tensor& q, const Tensor& k, const Tensor& v, const attn::SparseConfig& config);

// Softmax weights of query head `head` for the first `rows` queries over the first
// `rows` keys, row-major [rows][rows] (rows <= seq; causal rows see keys 0..i, so the
// prefix is exact; a non-causal prefix is the attention of the truncated sequence).
struct WeightMap {
  std::size_t rows = 0;
  std::vector<double> w;  // [rows][rows]
  double at(std::size_t i, std::size_t j) const { return w[i * rows + j]; }
};
WeightMap dense_weights(const Tensor& q, const Tensor& k, std::size_t head, bool causal, std::size_t rows);
// Effective sparse weights (see above) of the truncated sequence of length `rows`.
WeightMap sparse_weights(const Tensor& q, const Tensor& k, std::size_t head, const attn::SparseConfig& config,
                         std::size_t rows);

// K/V with each kv head repeated `group` times: the MHA equivalent of a GQA call.
Tensor repeat_heads(const Tensor& t, std::size_t group);
// Heads [h, h+1) of t as a one-head tensor.
Tensor head_slice(const Tensor& t, std::size_t h);

}  // namespace rvt::parity
