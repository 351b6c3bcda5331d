// Dense and sparse attention over [seq][heads][dim] tensors, MHA/GQA/MQA.
//
// Front end: check the shapes once (check_qkv), then run the SIMD kernels in tiles of rows
// (the scalar reference row by row for Isa::kScalar or non-finite inputs). Work is split
// across threads; each output row is computed by one thread in a fixed order, so the
// output does not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "rvt/attention/config.hpp"
#include "rvt/attention/pattern.hpp"
#include "rvt/kernels/isa.hpp"
#include "rvt/tensor/tensor.hpp"

namespace rvt::kernels {
struct KernelTable;
}

namespace rvt::attn {

struct ExecOptions {
  unsigned threads = 1;
  kernels::Isa isa = kernels::Isa::kAuto;  // kScalar runs the plain reference kernels
  // The caller has checked Q/K/V for NaN/Inf already (the CLI does when it reads files;
  // generated inputs are finite): skip the scan that otherwise sends non-finite inputs to
  // the reference kernels. Given non-finite values anyway, the SIMD kernels' NaN pattern
  // then depends on the ISA.
  bool inputs_finite = false;
  // When given, set to the ISA whose kernels ran: `isa` resolved (kAuto: the best this CPU
  // has), or kScalar where non-finite inputs sent the call to the reference kernels.
  kernels::Isa* isa_ran = nullptr;
};

// Landmark keys/values: per block b and kv head h, the plain mean of the K rows / V rows
// of the block's tokens [b*B, min((b+1)*B, N)). Stored [n_blocks][kv_heads][dim].
struct BlockMeans {
  std::size_t n_blocks = 0, kv_heads = 0, dim = 0, block_size = 0;
  UninitFloats k, v;
  std::vector<std::uint32_t> counts;  // tokens in each block

  const float* k_row(std::size_t b, std::size_t h) const { return k.data() + (b * kv_heads + h) * dim; }
  const float* v_row(std::size_t b, std::size_t h) const { return v.data() + (b * kv_heads + h) * dim; }
};
// On `table`'s SIMD loop when given (the same numbers), else the scalar one.
BlockMeans block_means(const Tensor& k, const Tensor& v, std::size_t block_size, unsigned threads = 1,
                       const kernels::KernelTable* table = nullptr);

// Exact softmax attention; causal: query i sees keys 0..i. O(N * dim) extra memory.
Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                       const ExecOptions& exec = {});

// Sparse attention over the reference candidate set (pattern.hpp).
Tensor sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SparseConfig& config,
                        const ExecOptions& exec = {});

// The scalar reference sparse kernel, row by row over `threads` workers (what sparse_attention
// runs on --isa scalar or non-finite inputs). prefix_rows: row t is instead the last row of the
// attention over the prefix [0, t] (N = t + 1), which is what a stream's step t computes; for a
// causal config that is the same row.
Tensor sparse_reference(const Tensor& q, const Tensor& k, const Tensor& v, const SparseConfig& config,
                        unsigned threads = 1, bool prefix_rows = false);

}  // namespace rvt::attn
