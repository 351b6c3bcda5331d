// Attention configuration and the shape checks every kernel front end makes once.
//
// Tensors are [seq][heads][dim]. Q has q_heads, K and V have kv_heads; query head h
// reads kv head h / (q_heads / kv_heads) (contiguous GQA groups; MHA is group 1).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "rvt/tensor/tensor.hpp"

namespace rvt::attn {

enum class Backend { kDense, kSparse };
Backend parse_backend(const std::string& name);  // "dense" | "sparse"; throws kUsage
const char* backend_name(Backend backend);

// How a landmark (block mean) enters the softmax.
enum class LandmarkMode {
  kMean,  // compat: one softmax entry per block, score dot(q, meanK) * scale
  kMass,  // + ln(count) on the score, so a block weighs as much as its tokens; blocks
          // whose tokens are all direct candidates already are skipped
};
const char* landmark_mode_name(LandmarkMode mode);
LandmarkMode parse_landmark_mode(const std::string& name);  // "mean" | "mass"; throws kUsage

struct SparseConfig {
  std::size_t window = 128;
  std::size_t block_size = 64;
  std::vector<std::size_t> globals{0};
  bool causal = true;
  bool log_stride = true;
  bool landmarks = true;
  LandmarkMode landmark_mode = LandmarkMode::kMean;

  void validate() const;  // block_size > 0; throws rvt::Error(kUsage)
  // Query i's local window in a sequence of n tokens (rule 1 of the candidate set): keys
  // first .. last, both included.
  struct KeyRange {
    std::size_t first, last;
  };
  KeyRange window_keys(std::size_t i, std::size_t n) const {
    return {i >= window ? i - window : 0, causal ? i : std::min(i + window, n - 1)};
  }
  bool operator==(const SparseConfig&) const = default;
};

// The score scale 1 / sqrt(dim), in f32 as the reference computes it: the forward kernels and
// the decoders take it from here, so that streaming reproduces forward() bit for bit.
float softmax_scale(std::size_t dim);

// The GQA rule for sizes given as options: q_heads a multiple of kv_heads (both > 0 already);
// a usage error naming the two options otherwise.
void check_gqa_options(std::size_t q_heads, std::size_t kv_heads);

// The checked shape of one attention call.
struct AttentionShape {
  std::size_t seq = 0, q_heads = 0, kv_heads = 0, dim = 0;
  std::size_t group() const { return q_heads / kv_heads; }
  float scale() const { return softmax_scale(dim); }
};

// Checks Q/K/V agree (same seq, same dim, K and V the same shape, heads > 0,
// q_heads % kv_heads == 0, dim > 0). Throws rvt::Error(kBadInput) saying which.
AttentionShape check_qkv(const Tensor& q, const Tensor& k, const Tensor& v);

}  // namespace rvt::attn
