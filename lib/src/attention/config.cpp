#include "rvt/attention/config.hpp"

#include <cmath>

#include "rvt/core/error.hpp"

namespace rvt::attn {

Backend parse_backend(const std::string& name) {
  if (name == "dense") return Backend::kDense;
  if (name == "sparse") return Backend::kSparse;
  throw_usage("--backend: '" + name + "' is not one of dense, sparse");
}

const char* backend_name(Backend backend) { return backend == Backend::kDense ? "dense" : "sparse"; }

const char* landmark_mode_name(LandmarkMode mode) {
  return mode == LandmarkMode::kMass ? "mass" : "mean";
}

LandmarkMode parse_landmark_mode(const std::string& name) {
  if (name == "mean") return LandmarkMode::kMean;
  if (name == "mass") return LandmarkMode::kMass;
  throw_usage("--landmarks: '" + name + "' is not one of mean, mass");
}

void SparseConfig::validate() const {
  if (block_size == 0) throw_usage("--block: the block size must be > 0");
}

float softmax_scale(std::size_t dim) { return 1.0f / std::sqrt(static_cast<float>(dim)); }

void check_gqa_options(std::size_t q_heads, std::size_t kv_heads) {
  if (q_heads % kv_heads != 0) {
    throw_usage("--q-heads " + std::to_string(q_heads) + " is not divisible by --kv-heads " + std::to_string(kv_heads) +
                " (GQA)");
  }
}

AttentionShape check_qkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (k.shape() != v.shape()) {
    throw_bad_input("K " + k.shape().str() + " and V " + v.shape().str() + " must have the same shape");
  }
  if (q.seq() != k.seq()) {
    throw_bad_input("Q has seq " + std::to_string(q.seq()) + " but K/V have seq " + std::to_string(k.seq()));
  }
  if (q.dim() != k.dim()) {
    throw_bad_input("Q has head dim " + std::to_string(q.dim()) + " but K/V have head dim " +
                    std::to_string(k.dim()));
  }
  if (q.heads() == 0 || k.heads() == 0) throw_bad_input("head counts must be > 0 (Q " + q.shape().str() + ", K " + k.shape().str() + ")");
  if (q.dim() == 0) throw_bad_input("head dim must be > 0");
  if (q.heads() % k.heads() != 0) {
    throw_bad_input("q_heads " + std::to_string(q.heads()) + " is not divisible by kv_heads " +
                    std::to_string(k.heads()) + " (GQA requires q_heads % kv_heads == 0)");
  }
  return AttentionShape{q.seq(), q.heads(), k.heads(), q.dim()};
}

}  // namespace rvt::attn
