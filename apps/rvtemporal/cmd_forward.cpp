// `rvtemporal forward`: one dense or sparse attention pass over .npy or generated
// tensors, or the temporal head run from a blob.
#include "cli.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/jobs/forward.hpp"
#include "presets.hpp"

namespace rvt::cli {
namespace {

struct ForwardOptions {
  AttentionOptions attention;
  std::string backend = "sparse";
  std::string out;
  unsigned threads = 0;
  std::string pattern_rows;
  // model mode
  std::string blob;
  std::string frames;
  std::size_t gen_frames = 0;
  std::string pool = "mean";
};

Outcome run_forward(const ForwardOptions& o) {
  check_given_values(o.attention);
  (void)model::parse_pool(o.pool);  // with or without --blob: a bad value is a bad value
  const unsigned threads = o.threads ? o.threads : default_threads();
  const attn::Backend backend = attn::parse_backend(o.backend);
  jobs::JobResult r;
  if (!o.blob.empty()) {
    warn_unused(unused_by_model(o.attention, {"--pattern-row"}), "forward");
    jobs::ModelRequest req;
    req.blob_path = o.blob;
    req.frames = jobs::FrameSpec{o.frames, o.gen_frames, parse_gen_kind(o.attention.gen),
                                 parse_u64(o.attention.seed, "--seed"), o.attention.allow_nonfinite};
    req.head = model_head_config(o.attention, backend);
    req.pool = model::parse_pool(o.pool);
    req.out_path = o.out;
    req.threads = threads;
    req.notice = warn_notice("forward");
    r = jobs::run_model_forward(req);
  } else {
    if (!o.frames.empty() || given(*o.attention.cmd, "--gen-frames")) throw_usage("--frames/--gen-frames need --blob");
    warn_unused(unused_options(*o.attention.cmd, {"--pool"}, "without --blob (it pools the temporal head's output)"),
                "forward");
    jobs::AttentionRequest req;
    req.input = input_spec(o.attention);
    warn_unused(unused_with_files(o.attention), "forward");
    req.backend = backend;
    req.sparse = sparse_config(o.attention);
    req.out_path = o.out;
    req.threads = threads;
    req.pattern_rows = jobs::parse_index_list(o.pattern_rows, "--pattern-row");
    req.notice = warn_notice("forward");
    r = jobs::run_attention_forward(req);
  }
  return Outcome{ExitCode::kOk, std::move(r.result), std::move(r.text), ""};
}

}  // namespace

void register_forward(CLI::App& root, Context& ctx) {
  auto o = std::make_shared<ForwardOptions>();
  CLI::App* cmd = root.add_subcommand("forward", "Dense or sparse attention over tensors, or the temporal head from a blob");
  add_attention_options(cmd, o->attention);
  cmd->add_option("--backend", o->backend, "dense | sparse")->capture_default_str();
  cmd->add_option("--out,-o", o->out, "Write the output (attention [seq][heads][dim] or logits) as .npy");
  cmd->add_option("--threads", o->threads, "Worker threads (default, or 0: all cores)")->check(threads_check());
  cmd->add_option("--pattern-row", o->pattern_rows, "Report the candidate list of these rows, e.g. 0,100");
  cmd->add_option("--blob", o->blob, "Run the temporal head from this RVNE blob");
  cmd->add_option("--frames", o->frames, "Model input frames, a 2-d [T][input_dim] .npy");
  cmd->add_option("--gen-frames", o->gen_frames, "Generate T model input frames (with --gen, --seed)")->check(count_check());
  cmd->add_option("--pool", o->pool, "mean | last: how the head pools over time")->capture_default_str();
  bind(cmd, ctx, "forward", [o] { return run_forward(*o); });
}

}  // namespace rvt::cli
