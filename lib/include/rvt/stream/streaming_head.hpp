// The temporal head run online: one frame per step through every layer's KV cache,
// giving the logits of the stream so far (last-token pooling) after each frame.
//
// Per layer: q, k, v = x_t Wq, x_t Wk, x_t Wv; o = decode step over the layer's cache;
// x_t += o Wo. Then logits = x_t Wc. For a causal head the logits after frame t equal
// TemporalHead::per_frame_logits row t.
#pragma once

#include <memory>
#include <vector>

#include "rvt/model/temporal_head.hpp"
#include "rvt/stream/decoder.hpp"

namespace rvt::stream {

class StreamingHead {
 public:
  // A dense head has no streaming step (as in the reference): rvt::Error(kUnsupported)
  // "backend does not support streaming", unless dense_baseline asks for the O(T) dense
  // decode. capacity is per layer cache.
  StreamingHead(const model::TemporalHead& head, std::size_t capacity, KvDType dtype, Evict evict,
                bool dense_baseline = false);
  ~StreamingHead();
  StreamingHead(StreamingHead&&) noexcept;

  // frame: [input_dim]; logits: [n_classes].
  void step(const float* frame, float* logits);

  std::size_t cache_bytes() const;  // all layers
  std::size_t cache_len() const;    // positions held by the first layer's cache
  std::uint64_t evicted() const;    // by the first layer's cache
  // The ISA of the layers' decode kernels, and the frames whose step took the scalar
  // reference in some layer (its q or cache held a NaN or an inf).
  kernels::Isa isa() const;
  std::uint64_t scalar_steps() const { return scalar_steps_; }

 private:
  struct Layer;
  const model::TemporalHead* head_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<float> x_, q_, k_, v_, o_, proj_;
  std::uint64_t scalar_steps_ = 0;
};

}  // namespace rvt::stream
