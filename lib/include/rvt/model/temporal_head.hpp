// The temporal head (AETHER): a stack of attention layers over frames, run from an
// RVNE blob (payload layout in rvt/blob/blob.hpp).
//
//   x = frames [T][input_dim]
//   per layer l: Q = x Wq, K = x Wk, V = x Wv   (reshaped to [T][heads][head_dim])
//                O = attention(Q, K, V)          (dense or sparse, per HeadConfig)
//                x = x + O Wo                    (residual)
//   pooled = mean over T of x  (or the last row with Pool::kLast)
//   logits = pooled Wc                            [n_classes]
//
// The sparse head always uses globals [0], log-stride and landmarks (attention-spec.md s5).
#pragma once

#include <string>
#include <vector>

#include "rvt/attention/attention.hpp"
#include "rvt/blob/blob.hpp"

namespace rvt::model {

using attn::Backend;
enum class Pool { kMean, kLast };
Pool parse_pool(const std::string& name);  // "mean" | "last"; throws kUsage
const char* pool_name(Pool pool);

struct HeadConfig {
  Backend backend = Backend::kSparse;
  std::size_t q_heads = 4, kv_heads = 1, head_dim = 32;
  std::size_t window = 32, block_size = 16;
  bool causal = true;

  static HeadConfig default_aether() { return {}; }
  // The reference order: q_heads, kv_heads, head_dim > 0; q % kv == 0; block_size > 0.
  void validate() const;  // throws rvt::Error(kUsage)
  attn::SparseConfig sparse_config() const;
};

struct LayerWeights {
  std::vector<float> wq, wk, wv, wo;  // row-major, shapes as in the blob layout
};

class TemporalHead {
 public:
  // Takes heads and dims from the blob header; window, block, causal and backend from
  // `config` (its head counts are overwritten). Throws BlobError if the blob is not loadable.
  static TemporalHead from_blob(const blob::Blob& blob, HeadConfig config);

  const HeadConfig& config() const { return config_; }
  std::size_t input_dim() const { return input_dim_; }
  std::size_t n_classes() const { return n_classes_; }
  std::size_t n_layers() const { return layers_.size(); }

  // frames: [T][input_dim] row-major (T >= 1). Returns the logits [n_classes]. exec.isa_ran is
  // set by each layer's attention call: a NaN or an inf in one layer's input is in every later
  // layer's (no product or sum makes it finite again), so the last call's tells.
  std::vector<float> forward(std::span<const float> frames, std::size_t n_frames, Pool pool,
                             const attn::ExecOptions& exec = {}) const;

  // Logits of every frame t as if the stream ended there (last-token pooling over frames
  // [0, t]): [T][n_classes]. Causal heads need one pass; others one pass per prefix.
  std::vector<float> per_frame_logits(std::span<const float> frames, std::size_t n_frames,
                                      const attn::ExecOptions& exec = {}) const;

  // forward(.., Pool::kMean) and, for a causal head, per_frame_logits, from one pass over the
  // layers instead of two (the same values: both read the same hidden state). A non-causal
  // head's per_frame is left empty (it needs a pass per prefix).
  struct MeanAndPerFrame {
    std::vector<float> mean, per_frame;
  };
  MeanAndPerFrame mean_and_per_frame_logits(std::span<const float> frames, std::size_t n_frames,
                                            const attn::ExecOptions& exec = {}) const;

  const std::vector<LayerWeights>& layers() const { return layers_; }
  const std::vector<float>& classifier() const { return classifier_; }

  // Sparse and dense edges per head summed over the layers for T frames.
  std::uint64_t edges_per_head(std::size_t n_frames) const;

 private:
  HeadConfig config_;
  std::size_t input_dim_ = 0, n_classes_ = 0;
  std::vector<LayerWeights> layers_;
  std::vector<float> classifier_;  // [input_dim][n_classes]

  // The hidden state x after the last layer, [T][input_dim].
  std::vector<float> hidden(std::span<const float> frames, std::size_t n_frames,
                            const attn::ExecOptions& exec) const;
  // The logits of a hidden state pooled over its n_frames rows.
  std::vector<float> pooled_logits(const std::vector<float>& x, std::size_t n_frames, Pool pool) const;
  // The logits of every row of a hidden state, [n_frames][n_classes].
  std::vector<float> frame_logits(const std::vector<float>& x, std::size_t n_frames) const;
};

// out[T][cols] = x[T][rows] * w[rows][cols]  (plain loops; the model is small)
void matmul(const float* x, std::size_t n_rows_x, const float* w, std::size_t rows, std::size_t cols,
            float* out);

}  // namespace rvt::model
