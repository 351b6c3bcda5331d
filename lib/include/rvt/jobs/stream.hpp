// The `stream` job: feed tokens (or model frames) one at a time through a KV cache and
// report per-step latency, cache size and parity against the full forward pass.
#pragma once

#include <functional>

#include "rvt/jobs/forward.hpp"
#include "rvt/stream/kv_cache.hpp"
#include "rvt/stream/decoder.hpp"

namespace rvt::jobs {

// Receives one record per step (for --jsonl); called outside the timed region.
using StepSink = std::function<void(const report::Json&)>;

struct StreamOptions {
  std::size_t capacity = 0;  // 0: the stream length
  stream::KvDType dtype = stream::KvDType::kF32;
  stream::Evict evict = stream::Evict::kNone;
  std::string out_path;      // streamed rows (attention) or per-frame logits (model), .npy
  bool parity = true;        // compare every streamed row with the full forward pass
  StepSink on_step;          // optional
  // Workers for generating the inputs (or frames) and for the forward pass parity compares
  // with; the decode itself is one step after another on one thread. Same results for every count.
  unsigned threads = 1;
};

struct AttentionStreamRequest {
  InputSpec input;
  attn::Backend backend = attn::Backend::kSparse;  // dense: the O(T) baseline decode
  attn::SparseConfig sparse;
  StreamOptions stream;
  // Told long_dense_notice's line, if any, before a dense stream without on_step starts.
  std::function<void(const std::string&)> notice;
};
JobResult run_attention_stream(const AttentionStreamRequest& request);

struct ModelStreamRequest {
  std::string blob_path;
  FrameSpec frames;
  model::HeadConfig head;
  bool dense_baseline = false;  // allow the dense head to stream with the O(T) decode
  StreamOptions stream;
  // Told long_dense_head_notice's line, if any, before a dense stream without on_step starts.
  std::function<void(const std::string&)> notice;
};
JobResult run_model_stream(const ModelStreamRequest& request);

// p50/p90/p99/max/mean of per-step latencies (ns) as JSON.
report::Json latency_json(std::vector<double> samples_ns);

}  // namespace rvt::jobs
