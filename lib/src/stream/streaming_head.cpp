#include "rvt/stream/streaming_head.hpp"

#include <optional>

#include "rvt/core/error.hpp"

namespace rvt::stream {

struct StreamingHead::Layer {
  std::optional<SparseDecoder> sparse;
  std::optional<DenseDecoder> dense;
  const KvCache& cache() const { return sparse ? sparse->cache() : dense->cache(); }
  std::uint64_t scalar_steps() const { return sparse ? sparse->scalar_steps() : dense->scalar_steps(); }
};

StreamingHead::StreamingHead(const model::TemporalHead& head, std::size_t capacity, KvDType dtype, Evict evict,
                             bool dense_baseline)
    : head_(&head) {
  const model::HeadConfig& c = head.config();
  const bool dense = c.backend == model::Backend::kDense;
  if (dense && !dense_baseline) {
    throw Error(ExitCode::kUnsupported,
                "backend does not support streaming (the dense head has no decode step; --dense-baseline runs "
                "the O(T) dense decode instead)");
  }
  if (dense && evict != Evict::kNone) throw_usage("the dense baseline decode does not evict");
  for (std::size_t l = 0; l < head.n_layers(); ++l) {
    auto layer = std::make_unique<Layer>();
    KvCache cache(capacity, c.kv_heads, c.head_dim, c.block_size, dtype);
    if (dense) {
      layer->dense.emplace(c.q_heads, std::move(cache));
    } else {
      layer->sparse.emplace(c.q_heads, std::move(cache), c.sparse_config(), evict);
    }
    layers_.push_back(std::move(layer));
  }
  const std::size_t in = head.input_dim();
  x_.resize(in);
  proj_.resize(in);
  q_.resize(c.q_heads * c.head_dim);
  o_.resize(q_.size());
  k_.resize(c.kv_heads * c.head_dim);
  v_.resize(k_.size());
}

StreamingHead::~StreamingHead() = default;
StreamingHead::StreamingHead(StreamingHead&&) noexcept = default;

void StreamingHead::step(const float* frame, float* logits) {
  const model::HeadConfig& c = head_->config();
  const std::size_t in = head_->input_dim();
  std::copy(frame, frame + in, x_.begin());
  bool scalar = false;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const model::LayerWeights& w = head_->layers()[l];
    model::matmul(x_.data(), 1, w.wq.data(), in, q_.size(), q_.data());
    model::matmul(x_.data(), 1, w.wk.data(), in, k_.size(), k_.data());
    model::matmul(x_.data(), 1, w.wv.data(), in, v_.size(), v_.data());
    Layer& layer = *layers_[l];
    const std::uint64_t scalar_before = layer.scalar_steps();
    if (layer.sparse) {
      layer.sparse->step(q_.data(), k_.data(), v_.data(), o_.data());
    } else {
      layer.dense->step(q_.data(), k_.data(), v_.data(), o_.data());
    }
    scalar = scalar || layer.scalar_steps() != scalar_before;
    model::matmul(o_.data(), 1, w.wo.data(), c.q_heads * c.head_dim, in, proj_.data());
    for (std::size_t d = 0; d < in; ++d) x_[d] += proj_[d];
  }
  model::matmul(x_.data(), 1, head_->classifier().data(), in, head_->n_classes(), logits);
  if (scalar) ++scalar_steps_;
}

std::size_t StreamingHead::cache_bytes() const {
  std::size_t total = 0;
  for (const auto& l : layers_) total += l->cache().bytes();
  return total;
}

std::size_t StreamingHead::cache_len() const { return layers_.front()->cache().len(); }
std::uint64_t StreamingHead::evicted() const { return layers_.front()->cache().evicted(); }

kernels::Isa StreamingHead::isa() const {
  const Layer& first = *layers_.front();  // every layer's decoder resolves the same ISA
  return first.sparse ? first.sparse->isa() : first.dense->isa();
}

}  // namespace rvt::stream
