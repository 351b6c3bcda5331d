#include "rvt/model/temporal_head.hpp"

#include <algorithm>

#include "rvt/core/error.hpp"

namespace rvt::model {

Pool parse_pool(const std::string& name) {
  if (name == "mean") return Pool::kMean;
  if (name == "last") return Pool::kLast;
  throw_usage("--pool: '" + name + "' is not one of mean, last");
}

const char* pool_name(Pool pool) { return pool == Pool::kLast ? "last" : "mean"; }

void HeadConfig::validate() const {
  if (q_heads == 0 || kv_heads == 0 || head_dim == 0) {
    throw_usage("head config: q_heads, kv_heads and head_dim must all be > 0");
  }
  if (q_heads % kv_heads != 0) {
    throw_usage("head config: q_heads " + std::to_string(q_heads) + " is not divisible by kv_heads " +
                std::to_string(kv_heads) + " (GQA)");
  }
  if (block_size == 0) throw_usage("head config: block_size must be > 0");
}

attn::SparseConfig HeadConfig::sparse_config() const {
  attn::SparseConfig c;
  c.window = window;
  c.block_size = block_size;
  c.globals = {0};
  c.causal = causal;
  c.log_stride = true;
  c.landmarks = true;
  return c;
}

void matmul(const float* x, std::size_t n_rows_x, const float* w, std::size_t rows, std::size_t cols,
            float* out) {
  std::fill(out, out + n_rows_x * cols, 0.0f);
  for (std::size_t t = 0; t < n_rows_x; ++t) {
    float* o = out + t * cols;
    for (std::size_t r = 0; r < rows; ++r) {
      const float xv = x[t * rows + r];
      const float* wr = w + r * cols;
      for (std::size_t c = 0; c < cols; ++c) o[c] += xv * wr[c];
    }
  }
}

TemporalHead TemporalHead::from_blob(const blob::Blob& blob, HeadConfig config) {
  blob::check_loadable(blob);
  const blob::Shape& s = blob.header.shape;
  config.q_heads = s.q_heads;
  config.kv_heads = s.kv_heads;
  config.head_dim = s.head_dim;
  config.validate();

  TemporalHead head;
  head.config_ = config;
  head.input_dim_ = s.input_dim;
  head.n_classes_ = s.n_classes;
  const std::vector<float> w = blob::payload_floats(blob);
  auto slice = [&w](const blob::TensorSlot& slot) {
    return std::vector<float>(w.begin() + static_cast<long>(slot.offset_elements),
                              w.begin() + static_cast<long>(slot.offset_elements + slot.count()));
  };
  head.layers_.resize(s.n_layers);
  for (const blob::TensorSlot& slot : blob::payload_layout(s)) {
    if (slot.layer < 0) {
      head.classifier_ = slice(slot);
      continue;
    }
    LayerWeights& lw = head.layers_[static_cast<std::size_t>(slot.layer)];
    if (slot.name == "wq") lw.wq = slice(slot);
    else if (slot.name == "wk") lw.wk = slice(slot);
    else if (slot.name == "wv") lw.wv = slice(slot);
    else lw.wo = slice(slot);
  }
  return head;
}

std::vector<float> TemporalHead::hidden(std::span<const float> frames, std::size_t n_frames,
                                        const attn::ExecOptions& exec) const {
  if (n_frames == 0) throw_bad_input("frames: need at least one frame");
  if (frames.size() != n_frames * input_dim_) {
    throw_bad_input("frames: " + std::to_string(frames.size()) + " values is not " + std::to_string(n_frames) +
                    " frames of input_dim " + std::to_string(input_dim_));
  }
  const std::size_t in = input_dim_, hq = config_.q_heads, hk = config_.kv_heads, hd = config_.head_dim;
  std::vector<float> x(frames.begin(), frames.end());
  std::vector<float> proj(n_frames * in);
  for (const LayerWeights& lw : layers_) {
    Tensor q(n_frames, hq, hd), k(n_frames, hk, hd), v(n_frames, hk, hd);
    matmul(x.data(), n_frames, lw.wq.data(), in, hq * hd, q.data());
    matmul(x.data(), n_frames, lw.wk.data(), in, hk * hd, k.data());
    matmul(x.data(), n_frames, lw.wv.data(), in, hk * hd, v.data());
    const Tensor o = config_.backend == Backend::kDense
                         ? attn::dense_attention(q, k, v, config_.causal, exec)
                         : attn::sparse_attention(q, k, v, config_.sparse_config(), exec);
    matmul(o.data(), n_frames, lw.wo.data(), hq * hd, in, proj.data());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += proj[i];
  }
  return x;
}

std::vector<float> TemporalHead::forward(std::span<const float> frames, std::size_t n_frames, Pool pool,
                                         const attn::ExecOptions& exec) const {
  return pooled_logits(hidden(frames, n_frames, exec), n_frames, pool);
}

std::vector<float> TemporalHead::pooled_logits(const std::vector<float>& x, std::size_t n_frames, Pool pool) const {
  const std::size_t in = input_dim_;
  std::vector<float> pooled(in, 0.0f);
  if (pool == Pool::kLast) {
    std::copy(x.end() - static_cast<long>(in), x.end(), pooled.begin());
  } else {
    for (std::size_t t = 0; t < n_frames; ++t)
      for (std::size_t d = 0; d < in; ++d) pooled[d] += x[t * in + d];
    for (float& p : pooled) p /= static_cast<float>(n_frames);
  }
  std::vector<float> logits(n_classes_);
  matmul(pooled.data(), 1, classifier_.data(), in, n_classes_, logits.data());
  return logits;
}

std::vector<float> TemporalHead::frame_logits(const std::vector<float>& x, std::size_t n_frames) const {
  std::vector<float> logits(n_frames * n_classes_);
  matmul(x.data(), n_frames, classifier_.data(), input_dim_, n_classes_, logits.data());
  return logits;
}

std::vector<float> TemporalHead::per_frame_logits(std::span<const float> frames, std::size_t n_frames,
                                                  const attn::ExecOptions& exec) const {
  // A causal head's row t of the last hidden state sees frames [0, t] only.
  if (config_.causal) return frame_logits(hidden(frames, n_frames, exec), n_frames);
  std::vector<float> logits(n_frames * n_classes_);
  for (std::size_t t = 0; t < n_frames; ++t) {
    const auto row = forward(frames.first((t + 1) * input_dim_), t + 1, Pool::kLast, exec);
    std::copy(row.begin(), row.end(), logits.begin() + static_cast<long>(t * n_classes_));
  }
  return logits;
}

TemporalHead::MeanAndPerFrame TemporalHead::mean_and_per_frame_logits(std::span<const float> frames,
                                                                      std::size_t n_frames,
                                                                      const attn::ExecOptions& exec) const {
  if (!config_.causal) return {forward(frames, n_frames, Pool::kMean, exec), {}};
  const std::vector<float> x = hidden(frames, n_frames, exec);
  return {pooled_logits(x, n_frames, Pool::kMean), frame_logits(x, n_frames)};
}

std::uint64_t TemporalHead::edges_per_head(std::size_t n_frames) const {
  const std::uint64_t per_layer = config_.backend == Backend::kDense
                                      ? attn::dense_edges_per_head(n_frames, config_.causal)
                                      : attn::sparse_edges_per_head(n_frames, config_.sparse_config());
  return per_layer * layers_.size();
}

}  // namespace rvt::model
