#include "rvt/jobs/stream.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "rvt/core/clock.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/npy.hpp"
#include "rvt/kernels/reference.hpp"
#include "rvt/metrics/metrics.hpp"
#include "rvt/stream/streaming_head.hpp"

namespace rvt::jobs {
namespace {

using report::Json;
// The errors over the pairs where both values are finite, and the non-finite pairs counted
// (metrics::Accumulator): with --allow-nonfinite a NaN propagates through both.
Json parity_json(std::span<const float> streamed, std::span<const float> full) {
  metrics::Accumulator acc;
  for (std::size_t i = 0; i < streamed.size(); ++i) acc.add(i, streamed[i], full[i]);
  return Json{{"max_abs_err", acc.max_abs_err()}, {"mean_abs_err", acc.mean_abs_err()},
              {"nonfinite_pairs", acc.nonfinite_pairs}, {"nonfinite_mismatches", acc.nonfinite_mismatches}};
}

Json cache_json(const StreamOptions& o, std::size_t capacity, std::size_t bytes, std::size_t len,
                std::uint64_t evicted) {
  return Json{{"capacity", capacity}, {"kv_dtype", stream::kv_dtype_name(o.dtype)},
              {"evict", stream::evict_name(o.evict)}, {"bytes", bytes}, {"len_at_end", len},
              {"evicted", evicted}};
}

// Which kernels ran the steps: the decoder's ISA, or scalar where every step took the
// reference kernels; and how many steps did (their q or cache held a NaN or an inf).
void put_isa_ran(Json& j, kernels::Isa isa, std::uint64_t scalar_steps, std::size_t steps) {
  j["isa_ran"] = kernels::isa_name(steps > 0 && scalar_steps == steps ? kernels::Isa::kScalar : isa);
  j["scalar_steps"] = scalar_steps;
}

// The text form of report j: steps and latency, cache, parity, and the steps that took the
// scalar reference kernels where others ran SIMD ones.
std::string summary_text(const char* what, const Json& j) {
  const Json& latency = j["latency"];
  const Json& parity = j["parity"];
  std::string t = std::string(what) + ": " + std::to_string(j["tokens"].get<std::size_t>()) + " steps, p50 " +
                  format_double("%.0f", latency["p50_ns"].get<double>()) + " ns, p99 " + format_double("%.0f", latency["p99_ns"].get<double>()) +
                  " ns, " + format_double("%.0f", latency["tokens_per_s"].get<double>()) + " tokens/s, cache " +
                  std::to_string(j["cache"]["bytes"].get<std::size_t>()) + " bytes\n";
  if (const auto scalar = j["scalar_steps"].get<std::uint64_t>(); scalar_fallback(scalar > 0)) {
    t += std::to_string(scalar) + (scalar == 1 ? " step" : " steps") +
         " on the scalar reference kernels (q or the cache held a NaN or an inf)\n";
  }
  if (!parity.is_null()) {
    t += "parity vs forward: max abs err " + format_double("%.3g", parity["max_abs_err"].get<double>()) + ", mean " +
         format_double("%.3g", parity["mean_abs_err"].get<double>());
    if (const auto pairs = parity["nonfinite_pairs"].get<std::uint64_t>(); pairs > 0) {
      t += " (over the finite pairs; " + std::to_string(pairs) + " with NaN or inf, " +
           std::to_string(parity["nonfinite_mismatches"].get<std::uint64_t>()) + " of them differing)";
    }
    // After an eviction the rows attend over the compacted cache, not the whole sequence: the
    // errors then say what eviction cost, which a bare "max abs err 2" would hide.
    if (const auto evicted = j["cache"]["evicted"].get<std::uint64_t>(); evicted > 0) {
      t += " (" + std::to_string(evicted) + " evictions: rows from the first one on approximate the forward)";
    }
    t += "\n";
  }
  return t;
}

// What a long dense stream's notice says it runs: the decode, and with parity the forward it
// is checked against (over each prefix for a non-causal temporal head).
std::string dense_stream_what(bool checked, bool over_prefixes) {
  if (!checked) return "dense decode";
  return over_prefixes ? "dense decode (and the dense forward over each prefix it is checked against)"
                       : "dense decode (and the dense forward it is checked against)";
}

}  // namespace

Json latency_json(std::vector<double> samples) {
  Json j;
  if (samples.empty()) {
    j = Json{{"p50_ns", 0.0}, {"p90_ns", 0.0}, {"p99_ns", 0.0}, {"max_ns", 0.0}, {"mean_ns", 0.0}, {"tokens_per_s", 0.0}};
    return j;
  }
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double p) {
    const auto idx = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size()))) ;
    return samples[std::min(samples.size() - 1, idx == 0 ? 0 : idx - 1)];
  };
  double total = 0.0;
  for (double s : samples) total += s;
  j["p50_ns"] = pct(50);
  j["p90_ns"] = pct(90);
  j["p99_ns"] = pct(99);
  j["max_ns"] = samples.back();
  j["mean_ns"] = total / static_cast<double>(samples.size());
  j["tokens_per_s"] = total > 0 ? 1e9 * static_cast<double>(samples.size()) / total : 0.0;
  return j;
}

JobResult run_attention_stream(const AttentionStreamRequest& r) {
  r.sparse.validate();
  const Qkv x = load_inputs(r.input, r.stream.threads);
  const attn::AttentionShape s = attn::check_qkv(x.q, x.k, x.v);
  const std::size_t capacity = r.stream.capacity ? r.stream.capacity : std::max<std::size_t>(s.seq, 1);
  stream::KvCache cache(capacity, s.kv_heads, s.dim, r.sparse.block_size, r.stream.dtype);
  std::optional<stream::SparseDecoder> sparse;
  std::optional<stream::DenseDecoder> dense;
  if (r.backend == attn::Backend::kDense) {
    if (r.stream.evict != stream::Evict::kNone) throw_usage("--evict needs the sparse backend");
    dense.emplace(s.q_heads, std::move(cache));
  } else {
    sparse.emplace(s.q_heads, std::move(cache), r.sparse, r.stream.evict);
  }
  const stream::KvCache& c = sparse ? sparse->cache() : dense->cache();
  if (s.seq > capacity && r.stream.evict == stream::Evict::kNone) {
    throw_usage("stream of " + std::to_string(s.seq) + " tokens does not fit a cache of capacity " +
                std::to_string(capacity) + " without eviction (--evict h2o)");
  }

  if (dense && r.notice && !r.stream.on_step) {  // --jsonl shows every step as it goes
    attn::SparseConfig causal = r.sparse;  // the dense decode is causal, whatever the options say
    causal.causal = true;
    const std::string line = long_dense_notice(dense_stream_what(r.stream.parity, false), s, causal, r.stream.parity ? 2 : 1);
    if (!line.empty()) r.notice(line);
  }
  Tensor out(s.seq, s.q_heads, s.dim);
  std::vector<double> latency(s.seq);
  for (std::size_t t = 0; t < s.seq; ++t) {
    const auto start = Clock::now();
    if (sparse) {
      sparse->step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.row(t, 0));
    } else {
      dense->step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.row(t, 0));
    }
    latency[t] = ns_between(start, Clock::now());
    if (r.stream.on_step) {
      r.stream.on_step(Json{{"type", "step"}, {"t", t}, {"latency_ns", latency[t]}, {"cache_len", c.len()},
                            {"edges_per_head", sparse ? sparse->last_edges() : c.len()}, {"evicted", c.evicted()}});
    }
  }
  if (!r.stream.out_path.empty()) io::write_npy(r.stream.out_path, out);

  JobResult res;
  Json& j = res.result;
  j["mode"] = "attention";
  j["backend"] = attn::backend_name(r.backend);
  j["inputs"] = inputs_json(r.input, x);
  j["shape"] = Json{{"seq", s.seq}, {"q_heads", s.q_heads}, {"kv_heads", s.kv_heads}, {"head_dim", s.dim}};
  j["config"] = r.backend == attn::Backend::kSparse ? sparse_config_json(r.sparse) : Json{{"causal", true}};
  j["tokens"] = s.seq;
  j["threads"] = r.stream.threads;
  put_isa_ran(j, sparse ? sparse->isa() : dense->isa(), sparse ? sparse->scalar_steps() : dense->scalar_steps(), s.seq);
  j["latency"] = latency_json(latency);
  j["cache"] = cache_json(r.stream, capacity, c.bytes(), c.len(), c.evicted());
  j["cache"]["kv_bytes_f32"] = 2 * capacity * s.kv_heads * s.dim * 4;
  j["cache"]["kv_bytes_f16"] = 2 * capacity * s.kv_heads * s.dim * 2;
  if (r.stream.parity) {
    // The dense decode is causal, which is also the last row of a non-causal dense prefix. A
    // non-causal sparse stream has not seen the tokens after t that forward()'s row t sees:
    // streamed row t is the last row of forward() over the prefix [0, t] (sparse_reference's
    // prefix rows; their blocks are complete ones before t, whose means are the whole sequence's).
    const bool prefix = r.backend == attn::Backend::kSparse && !r.sparse.causal;
    const attn::ExecOptions exec{r.stream.threads};
    const Tensor full =
        r.backend == attn::Backend::kDense ? attn::dense_attention(x.q, x.k, x.v, true, exec)
        : prefix ? attn::sparse_reference(x.q, x.k, x.v, r.sparse, r.stream.threads, /*prefix_rows=*/true)
                 : attn::sparse_attention(x.q, x.k, x.v, r.sparse, exec);
    j["parity"] = parity_json(out.values(), full.values());
    j["parity"]["against"] = prefix ? "forward over each prefix, last row (non-causal)" : "forward";
  } else {
    j["parity"] = nullptr;
  }
  j["output"] = output_json(out.values(), r.stream.threads);
  j["output"]["path"] = r.stream.out_path.empty() ? Json(nullptr) : Json(r.stream.out_path);
  res.text = summary_text(r.backend == attn::Backend::kDense ? "dense decode" : "sparse decode", j);
  return res;
}

JobResult run_model_stream(const ModelStreamRequest& r) {
  const BlobHead loaded = load_blob_head(r.blob_path, r.head);
  const model::TemporalHead& head = loaded.head;
  const Tensor frames = load_frames(r.frames, head.input_dim(), r.stream.threads);
  const std::size_t n = frames.seq(), classes = head.n_classes();
  const std::size_t capacity = r.stream.capacity ? r.stream.capacity : n;
  if (n > capacity && r.stream.evict == stream::Evict::kNone) {
    throw_usage("stream of " + std::to_string(n) + " frames does not fit a cache of capacity " +
                std::to_string(capacity) + " without eviction (--evict h2o)");
  }
  stream::StreamingHead online(head, capacity, r.stream.dtype, r.stream.evict, r.dense_baseline);
  if (head.config().backend == attn::Backend::kDense && r.notice && !r.stream.on_step) {
    const std::string line = long_dense_head_notice(dense_stream_what(r.stream.parity, !head.config().causal), head, n,
                                                    r.stream.parity ? HeadJob::kCheckedStream : HeadJob::kStream);
    if (!line.empty()) r.notice(line);
  }

  std::vector<float> logits(n * classes);
  std::vector<double> latency(n);
  for (std::size_t t = 0; t < n; ++t) {
    const auto start = Clock::now();
    online.step(frames.row(t, 0), logits.data() + t * classes);
    latency[t] = ns_between(start, Clock::now());
    if (r.stream.on_step) {
      const std::vector<float> row(logits.begin() + static_cast<long>(t * classes),
                                   logits.begin() + static_cast<long>((t + 1) * classes));
      r.stream.on_step(Json{{"type", "step"}, {"t", t}, {"latency_ns", latency[t]}, {"cache_len", online.cache_len()},
                            {"evicted", online.evicted()}, {"logits", row}});
    }
  }
  if (!r.stream.out_path.empty()) io::write_npy(r.stream.out_path, logits, {n, classes});

  JobResult res;
  Json& j = res.result;
  j["mode"] = "model";
  j["backend"] = attn::backend_name(head.config().backend);
  j["blob"] = loaded.report;
  j["frames"] = frames_json(r.frames, n);
  j["head"] = head_json(head);
  j["tokens"] = n;
  j["threads"] = r.stream.threads;
  put_isa_ran(j, online.isa(), online.scalar_steps(), n);
  j["latency"] = latency_json(latency);
  j["cache"] = cache_json(r.stream, capacity, online.cache_bytes(), online.cache_len(), online.evicted());
  if (r.stream.parity) {
    j["parity"] = parity_json(logits, head.per_frame_logits(frames.values(), n, {r.stream.threads}));
    j["parity"]["against"] = head.config().causal ? "forward, last-token pooling per frame"
                                                  : "forward over each prefix, last-token pooling (non-causal)";
  } else {
    j["parity"] = nullptr;
  }
  j["final_logits"] = std::vector<float>(logits.end() - static_cast<long>(classes), logits.end());
  j["output"] = output_json(logits, r.stream.threads);
  j["output"]["path"] = r.stream.out_path.empty() ? Json(nullptr) : Json(r.stream.out_path);
  res.text = summary_text("temporal head stream", j);
  return res;
}

}  // namespace rvt::jobs
