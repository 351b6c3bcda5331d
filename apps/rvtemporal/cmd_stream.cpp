// `rvtemporal stream`: token-by-token decode against a KV cache, or the temporal head
// run online frame by frame.
#include <iostream>

#include "cli.hpp"
#include "attention_options.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/jobs/stream.hpp"

namespace rvt::cli {
namespace {

struct StreamCliOptions {
  AttentionOptions attention;
  std::string backend = "sparse";
  std::size_t capacity = 0;
  std::string kv_dtype = "f32";
  std::string evict = "none";
  std::string out;
  bool no_parity = false;
  ModelOptions model;
  bool dense_baseline = false;
  unsigned threads = 0;
};

Outcome run_stream_job(const StreamCliOptions& o, bool jsonl) {
  check_given_values(o.attention);
  jobs::StreamOptions s;
  s.capacity = o.capacity;
  s.dtype = stream::parse_kv_dtype(o.kv_dtype);
  s.evict = stream::parse_evict(o.evict);
  s.out_path = o.out;
  s.parity = !o.no_parity;
  s.threads = o.threads ? o.threads : default_threads();
  if (jsonl) {
    s.on_step = [](const Json& record) {
      std::cout << report::to_text(record) << '\n';
      // A reader gone (SIGPIPE is ignored) or a full disk: stop here, not after every step.
      if (!std::cout) throw_io("stdout: write failed while writing the step records (the reader is gone, or the disk is full)");
    };
  }
  const attn::Backend backend = attn::parse_backend(o.backend);
  jobs::JobResult r;
  if (o.dense_baseline && (o.model.blob.empty() || backend != attn::Backend::kDense)) {
    throw_usage("--dense-baseline is for --blob with --backend dense (in attention mode --backend dense is the dense decode)");
  }
  if (!o.model.blob.empty()) {
    warn_unused(unused_by_model(o.attention), "stream");
    jobs::ModelStreamRequest req;
    req.blob_path = o.model.blob;
    req.frames = frame_spec(o.model, o.attention);
    req.head = model_head_config(o.attention, backend);
    req.dense_baseline = o.dense_baseline;
    req.stream = s;
    req.notice = warn_notice("stream");
    r = jobs::run_model_stream(req);
  } else {
    refuse_frames_without_blob(o.model, o.attention);
    jobs::AttentionStreamRequest req;
    req.input = input_spec(o.attention);
    warn_unused(unused_with_files(o.attention), "stream");
    req.backend = backend;
    req.sparse = sparse_config(o.attention);
    req.stream = s;
    req.notice = warn_notice("stream");
    r = jobs::run_attention_stream(req);
  }
  return Outcome{ExitCode::kOk, std::move(r.result), std::move(r.text), ""};
}

}  // namespace

void register_stream(CLI::App& root, Context& ctx) {
  auto o = std::make_shared<StreamCliOptions>();
  CLI::App* cmd = root.add_subcommand("stream", "Token-by-token decode against a KV cache (or the head, frame by frame)");
  add_attention_options(cmd, o->attention);
  cmd->add_option("--backend", o->backend, "sparse | dense (dense = the O(T) baseline decode)")->capture_default_str();
  cmd->add_option("--capacity", o->capacity, "KV cache capacity (default, or 0: the stream length)")->check(count_check());
  cmd->add_option("--kv-dtype", o->kv_dtype, "f32 | f16 cache storage")->capture_default_str();
  cmd->add_option("--evict", o->evict, "none | h2o (heavy-hitter eviction when full)")->capture_default_str();
  cmd->add_option("--out,-o", o->out, "Write the streamed rows (or per-frame logits) as .npy");
  cmd->add_flag("--jsonl", ctx.jsonl, "One JSON record per step on stdout, then the report as one line");
  cmd->add_flag("--no-parity", o->no_parity, "Skip the comparison with the full forward pass");
  add_model_options(cmd, o->model, "Stream the temporal head from this RVNE blob");
  cmd->add_flag("--dense-baseline", o->dense_baseline, "Let a dense head stream with the O(T) dense decode");
  cmd->add_option("--threads", o->threads,
                  "Worker threads for generating the inputs and the forward pass parity compares with (default, "
                  "or 0: all cores); the decode runs on one")
      ->check(threads_check());
  bind(cmd, ctx, "stream", [o, &ctx] { return run_stream_job(*o, ctx.jsonl); });
}

}  // namespace rvt::cli
