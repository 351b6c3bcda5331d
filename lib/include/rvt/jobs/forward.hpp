// The `forward` job: one attention pass (or one temporal-head pass) and its report.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "rvt/attention/attention.hpp"
#include "rvt/jobs/inputs.hpp"
#include "rvt/model/temporal_head.hpp"
#include "rvt/report/report.hpp"

namespace rvt::jobs {

// What a job hands back to the CLI: the report's "result" and the text a person reads.
struct JobResult {
  report::Json result;
  std::string text;
};

struct AttentionRequest {
  InputSpec input;
  attn::Backend backend = attn::Backend::kSparse;
  attn::SparseConfig sparse;  // sparse.causal also selects causal dense
  std::string out_path;       // .npy of the output, optional
  unsigned threads = 1;
  std::vector<std::size_t> pattern_rows;  // candidate lists to include in the report
  // Told long_dense_notice's line, if any, once the inputs are loaded and before the pass.
  std::function<void(const std::string&)> notice;
};
JobResult run_attention_forward(const AttentionRequest& request);

// Dense jobs from this many float operations on (attention_flops: ~1 min at 150 GFLOP/s)
// are announced before they start, as nothing else is printed until they end.
inline constexpr double kLongDenseFlops = 1e13;
// For a dense job of `passes` passes over `shape` (config.causal) of at least kLongDenseFlops
// float operations (attention_flops): one line, "<what> over N tokens: F float operations
// (the sparse backend's: S); ...", S the same passes sparse under `config`; else "".
std::string long_dense_notice(const std::string& what, const attn::AttentionShape& shape,
                              const attn::SparseConfig& config, unsigned passes = 1);
// The temporal head's: "temporal head (L layers), <what> over N tokens: ...", the attention
// of every layer counted (the projections grow as N, the attention as N^2). A forward runs
// the head as configured; a stream decodes causally, and a checked stream adds the forward
// it is checked against: one causal pass, or for a non-causal head one pass over each
// prefix (N^3 / 3 edges; no sparse count then, as taking it would cost as much).
enum class HeadJob { kForward, kStream, kCheckedStream };
std::string long_dense_head_notice(const std::string& what, const model::TemporalHead& head, std::size_t frames,
                                   HeadJob job);

struct ModelRequest {
  std::string blob_path;
  FrameSpec frames;
  model::HeadConfig head;  // window, block, causal, backend; heads come from the blob
  model::Pool pool = model::Pool::kMean;
  std::string out_path;    // .npy of the logits, optional
  unsigned threads = 1;
  // Told long_dense_head_notice's line, if any, once the frames are loaded and before the pass.
  std::function<void(const std::string&)> notice;
};
JobResult run_model_forward(const ModelRequest& request);

// The candidate list of row i (tokens with their kind, blocks with their token ranges).
report::Json pattern_row_json(std::size_t seq, const attn::SparseConfig& config, std::size_t row);
report::Json sparse_config_json(const attn::SparseConfig& config);
// Edge totals, sparsity and per-row spread for a sparse or dense pass.
report::Json edges_json(std::size_t seq, std::size_t q_heads, attn::Backend backend,
                        const attn::SparseConfig& config);
// Whether work that took the scalar reference kernels (non-finite inputs: took_reference) is
// worth a line in a job's text: not where the reference is this run's ISA anyway (--isa scalar).
bool scalar_fallback(bool took_reference);
// Digest and stats of an output tensor's raw f32 bytes; `threads` workers share the stats.
report::Json output_json(std::span<const float> values, unsigned threads = 1);

// The temporal head of a blob file, as forward and stream run it; a blob that fails to
// parse or to build the head is kBadInput naming the file. report: the blob's {path, xxh3_file}.
struct BlobHead {
  model::TemporalHead head;
  report::Json report;
};
BlobHead load_blob_head(const std::string& path, const model::HeadConfig& config);
// Where the model's frames came from ({source, generator, seed | path, count}) and the head's
// shape and pattern ({input_dim, q_heads, ..., causal}), as both commands report them.
report::Json frames_json(const FrameSpec& spec, std::size_t count);
report::Json head_json(const model::TemporalHead& head);

}  // namespace rvt::jobs
