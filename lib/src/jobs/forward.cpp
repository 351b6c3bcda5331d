#include "rvt/jobs/forward.hpp"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>

#include "rvt/bench/stats.hpp"
#include "rvt/blob/blob.hpp"
#include "rvt/blob/blob_report.hpp"
#include "rvt/core/clock.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"
#include "rvt/io/npy.hpp"

namespace rvt::jobs {
namespace {

using report::Json;
}  // namespace

Json sparse_config_json(const attn::SparseConfig& c) {
  Json j;
  j["window"] = c.window;
  j["block_size"] = c.block_size;
  j["globals"] = c.globals;
  j["causal"] = c.causal;
  j["log_stride"] = c.log_stride;
  j["landmarks"] = c.landmarks;
  j["landmark_mode"] = attn::landmark_mode_name(c.landmark_mode);
  return j;
}

namespace {

void check_pattern_row(std::size_t seq, std::size_t row) {
  if (row >= seq) {
    throw_usage("--pattern-row " + std::to_string(row) + " is out of range for seq " + std::to_string(seq));
  }
}

}  // namespace

Json pattern_row_json(std::size_t seq, const attn::SparseConfig& c, std::size_t row) {
  check_pattern_row(seq, row);
  attn::PatternBuilder p(seq, c);
  p.build(row);
  const attn::SparseConfig::KeyRange window = c.window_keys(row, seq);
  Json tokens = Json::array();
  for (std::uint32_t j : p.tokens()) {
    const char* kind = (j >= window.first && j <= window.last) ? "window"
                       : std::find(c.globals.begin(), c.globals.end(), j) != c.globals.end() ? "global"
                                                                                             : "stride";
    tokens.push_back(Json{{"pos", j}, {"kind", kind}});
  }
  Json blocks = Json::array();
  for (std::uint32_t b : p.blocks()) {
    const std::size_t begin = b * c.block_size;
    blocks.push_back(Json{{"block", b}, {"begin", begin}, {"end", std::min(begin + c.block_size, seq)}});
  }
  return Json{{"row", row}, {"edges", p.edges()}, {"tokens", tokens}, {"blocks", blocks}};
}

Json edges_json(std::size_t seq, std::size_t q_heads, attn::Backend backend, const attn::SparseConfig& c) {
  const std::uint64_t dense = attn::dense_edges_per_head(seq, c.causal);
  Json j;
  if (backend == attn::Backend::kDense) {
    j["per_head"] = dense;
  } else {
    const std::vector<std::uint32_t> rows = attn::row_edge_counts(seq, c);
    std::uint64_t total = 0;
    std::uint32_t lo = rows.empty() ? 0 : rows[0], hi = 0;
    for (std::uint32_t r : rows) {
      total += r;
      lo = std::min(lo, r);
      hi = std::max(hi, r);
    }
    j["per_head"] = total;
    j["row_min"] = lo;
    j["row_max"] = hi;
    j["row_mean"] = seq ? static_cast<double>(total) / static_cast<double>(seq) : 0.0;
  }
  const std::uint64_t per_head = j["per_head"].get<std::uint64_t>();
  j["total"] = per_head * q_heads;
  j["dense_equivalent_per_head"] = dense;
  j["dense_equivalent_total"] = dense * q_heads;
  j["sparsity"] = dense ? 1.0 - static_cast<double>(per_head) / static_cast<double>(dense) : 0.0;
  return j;
}

Json output_json(std::span<const float> values, unsigned threads) {
  Json j;
  j["xxh3"] = hex64(xxh3_64(values.data(), values.size_bytes()));
  j["stats"] = report::stats_json(summarize(values, threads));
  return j;
}

namespace {

// The notice line for `dense` float operations from kLongDenseFlops on; sparse < 0 leaves the
// sparse backend's count out.
std::string long_job_line(const std::string& what, std::size_t tokens, double dense, double sparse) {
  if (dense < kLongDenseFlops) return "";
  return what + " over " + std::to_string(tokens) + " tokens: " + format_double("%.3g", dense) + " float operations" +
         (sparse < 0.0 ? "" : " (the sparse backend's: " + format_double("%.3g", sparse) + ")") +
         "; nothing more is printed until it ends";
}

}  // namespace

std::string long_dense_notice(const std::string& what, const attn::AttentionShape& shape,
                              const attn::SparseConfig& config, unsigned passes) {
  auto flops = [&](std::uint64_t edges_per_head) {
    return passes * bench::attention_flops(edges_per_head, shape.q_heads, shape.dim);
  };
  const double dense = flops(attn::dense_edges_per_head(shape.seq, config.causal));
  if (dense < kLongDenseFlops) return "";  // the sparse count takes a pass over the rows
  return long_job_line(what, shape.seq, dense, flops(attn::sparse_edges_per_head(shape.seq, config)));
}

std::string long_dense_head_notice(const std::string& what, const model::TemporalHead& head, std::size_t frames,
                                   HeadJob job) {
  const model::HeadConfig& hc = head.config();
  const auto layers = static_cast<unsigned>(head.n_layers());
  const std::string named =
      "temporal head (" + std::to_string(layers) + (layers == 1 ? " layer), " : " layers), ") + what;
  const attn::AttentionShape shape{frames, hc.q_heads, hc.kv_heads, hc.head_dim};
  attn::SparseConfig config = hc.sparse_config();
  if (job == HeadJob::kForward) return long_dense_notice(named, shape, config, layers);
  if (job == HeadJob::kStream || hc.causal) {
    config.causal = true;  // the decode is causal; so is the forward a causal head is checked against
    return long_dense_notice(named, shape, config, layers * (job == HeadJob::kCheckedStream ? 2 : 1));
  }
  // The causal decode, and a non-causal forward over each prefix: sum of m^2 for m = 1..N.
  const double n = static_cast<double>(frames);
  const double edges = n * (n + 1) / 2 + n * (n + 1) * (2 * n + 1) / 6;
  return long_job_line(named, frames, layers * 4.0 * static_cast<double>(hc.head_dim * hc.q_heads) * edges, -1.0);
}

bool scalar_fallback(bool took_reference) {
  return took_reference && kernels::resolve_isa(kernels::Isa::kAuto) != kernels::Isa::kScalar;
}

namespace {

// What the wall line adds where non-finite inputs sent the call to the reference kernels.
std::string fallback_note(kernels::Isa isa_ran) {
  return scalar_fallback(isa_ran == kernels::Isa::kScalar) ? " on the scalar reference kernels (the inputs hold a NaN or an inf)"
                                                           : "";
}

}  // namespace

JobResult run_attention_forward(const AttentionRequest& r) {
  r.sparse.validate();
  const Qkv x = load_inputs(r.input, r.threads);
  const attn::AttentionShape shape = attn::check_qkv(x.q, x.k, x.v);
  for (std::size_t row : r.pattern_rows) check_pattern_row(shape.seq, row);  // before any work
  attn::ExecOptions exec{r.threads};
  exec.inputs_finite = !r.input.from_files() || !r.input.allow_nonfinite;  // checked by load_inputs
  kernels::Isa isa_ran = kernels::Isa::kScalar;
  exec.isa_ran = &isa_ran;
  if (r.backend == attn::Backend::kDense && r.notice) {
    if (const std::string line = long_dense_notice("dense attention", shape, r.sparse); !line.empty()) r.notice(line);
  }
  const auto start = Clock::now();
  const Tensor out = r.backend == attn::Backend::kDense ? attn::dense_attention(x.q, x.k, x.v, r.sparse.causal, exec)
                                                        : attn::sparse_attention(x.q, x.k, x.v, r.sparse, exec);
  const double wall_ms = ms_since(start);
  if (!r.out_path.empty()) io::write_npy(r.out_path, out);

  JobResult res;
  Json& j = res.result;
  j["mode"] = "attention";
  j["backend"] = attn::backend_name(r.backend);
  j["inputs"] = inputs_json(r.input, x);
  j["shape"] = Json{{"seq", shape.seq}, {"q_heads", shape.q_heads}, {"kv_heads", shape.kv_heads},
                    {"head_dim", shape.dim}, {"gqa_group", shape.group()}};
  if (r.backend == attn::Backend::kSparse) {
    j["config"] = sparse_config_json(r.sparse);
  } else {
    j["config"] = Json{{"causal", r.sparse.causal}};
  }
  j["edges"] = edges_json(shape.seq, shape.q_heads, r.backend, r.sparse);
  j["threads"] = r.threads;
  j["isa_ran"] = kernels::isa_name(isa_ran);
  j["wall_ms"] = wall_ms;
  j["output"] = output_json(out.values(), r.threads);
  j["output"]["path"] = r.out_path.empty() ? Json(nullptr) : Json(r.out_path);
  Json rows = Json::array();
  for (std::size_t row : r.pattern_rows) rows.push_back(pattern_row_json(shape.seq, r.sparse, row));
  j["pattern_rows"] = rows;

  res.text = std::string(attn::backend_name(r.backend)) + " attention: seq " + std::to_string(shape.seq) +
             ", heads " + std::to_string(shape.q_heads) + ":" + std::to_string(shape.kv_heads) + ", dim " +
             std::to_string(shape.dim) + "\n" + "edges per head " +
             std::to_string(j["edges"]["per_head"].get<std::uint64_t>()) + " of " +
             std::to_string(j["edges"]["dense_equivalent_per_head"].get<std::uint64_t>()) + " dense (sparsity " +
             format_double("%.4f", j["edges"]["sparsity"].get<double>()) + ")\n" + "wall " + format_double("%.3f", wall_ms) +
             " ms" + fallback_note(isa_ran) +
             ", output xxh3 " + j["output"]["xxh3"].get<std::string>() +
             (r.out_path.empty() ? "" : ", written to " + r.out_path) + "\n";
  return res;
}

BlobHead load_blob_head(const std::string& path, const model::HeadConfig& config) {
  std::uint64_t digest = 0;
  const blob::Blob blob = blob::read_blob_file(path, &digest);
  BlobHead loaded;
  loaded.report = Json{{"path", path}, {"xxh3_file", hex64(digest)}};
  try {
    loaded.head = model::TemporalHead::from_blob(blob, config);
  } catch (const blob::BlobError& e) {
    throw Error(ExitCode::kBadInput, path + ": " + e.what());
  }
  return loaded;
}

Json frames_json(const FrameSpec& spec, std::size_t count) {
  if (spec.path.empty()) {
    return Json{{"source", "generated"}, {"generator", gen_kind_name(spec.gen)}, {"seed", hex64(spec.seed)},
                {"count", count}};
  }
  return Json{{"source", "file"}, {"path", spec.path}, {"count", count}};
}

Json head_json(const model::TemporalHead& head) {
  const model::HeadConfig& hc = head.config();
  return Json{{"input_dim", head.input_dim()}, {"q_heads", hc.q_heads}, {"kv_heads", hc.kv_heads},
              {"head_dim", hc.head_dim}, {"layers", head.n_layers()}, {"classes", head.n_classes()},
              {"window", hc.window}, {"block_size", hc.block_size}, {"causal", hc.causal}};
}

JobResult run_model_forward(const ModelRequest& r) {
  const BlobHead loaded = load_blob_head(r.blob_path, r.head);
  const model::TemporalHead& head = loaded.head;
  const Tensor frames = load_frames(r.frames, head.input_dim(), r.threads);
  if (head.config().backend == attn::Backend::kDense && r.notice) {
    const std::string line = long_dense_head_notice("dense attention", head, frames.seq(), HeadJob::kForward);
    if (!line.empty()) r.notice(line);
  }
  attn::ExecOptions exec{r.threads};
  kernels::Isa isa_ran = kernels::Isa::kScalar;
  exec.isa_ran = &isa_ran;
  const auto start = Clock::now();
  const std::vector<float> logits = head.forward(frames.values(), frames.seq(), r.pool, exec);
  const double wall_ms = ms_since(start);
  if (!r.out_path.empty()) io::write_npy(r.out_path, logits, {logits.size()});

  const auto top = std::max_element(logits.begin(), logits.end());
  JobResult res;
  Json& j = res.result;
  j["mode"] = "model";
  j["backend"] = attn::backend_name(head.config().backend);
  j["blob"] = loaded.report;
  j["frames"] = frames_json(r.frames, frames.seq());
  j["head"] = head_json(head);
  j["head"]["pool"] = model::pool_name(r.pool);
  j["edges_per_head_all_layers"] = head.edges_per_head(frames.seq());
  j["threads"] = r.threads;
  j["isa_ran"] = kernels::isa_name(isa_ran);
  j["wall_ms"] = wall_ms;
  j["logits"] = logits;
  // With a NaN among the logits no class is the largest (NaN compares false): null, not 0.
  const bool any_nan = std::any_of(logits.begin(), logits.end(), [](float x) { return std::isnan(x); });
  j["argmax"] = any_nan ? Json(nullptr) : Json(static_cast<std::size_t>(top - logits.begin()));
  j["output"] = output_json(logits, r.threads);
  j["output"]["path"] = r.out_path.empty() ? Json(nullptr) : Json(r.out_path);

  res.text = std::string("temporal head (") + attn::backend_name(head.config().backend) + ") over " +
             std::to_string(frames.seq()) + " frames: logits [";
  for (std::size_t c = 0; c < logits.size(); ++c) res.text += (c ? ", " : "") + format_double("%.6g", logits[c]);
  res.text += "], argmax " + (any_nan ? std::string("none (NaN logits)") : std::to_string(j["argmax"].get<std::size_t>())) + ", wall " + format_double("%.3f", wall_ms) + " ms" + fallback_note(isa_ran) + "\n";
  return res;
}

}  // namespace rvt::jobs
