// `rvtemporal forward`: one dense or sparse attention pass over .npy or generated
// tensors, or the temporal head run from a blob.
#include "cli.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/jobs/forward.hpp"
#include "attention_options.hpp"

namespace rvt::cli {
namespace {

struct ForwardOptions {
  AttentionOptions attention;
  std::string backend = "sparse";
  std::string out;
  unsigned threads = 0;
  std::string pattern_rows;
  ModelOptions model;
  std::string pool = "mean";
};

Outcome run_forward(const ForwardOptions& o) {
  check_given_values(o.attention);
  (void)model::parse_pool(o.pool);  // with or without --blob: a bad value is a bad value
  const unsigned threads = o.threads ? o.threads : default_threads();
  const attn::Backend backend = attn::parse_backend(o.backend);
  jobs::JobResult r;
  if (!o.model.blob.empty()) {
    warn_unused(unused_by_model(o.attention, {"--pattern-row"}), "forward");
    jobs::ModelRequest req;
    req.blob_path = o.model.blob;
    req.frames = frame_spec(o.model, o.attention);
    req.head = model_head_config(o.attention, backend);
    req.pool = model::parse_pool(o.pool);
    req.out_path = o.out;
    req.threads = threads;
    req.notice = warn_notice("forward");
    r = jobs::run_model_forward(req);
  } else {
    refuse_frames_without_blob(o.model, o.attention);
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
  add_model_options(cmd, o->model, "Run the temporal head from this RVNE blob");
  cmd->add_option("--pool", o->pool, "mean | last: how the head pools over time")->capture_default_str();
  bind(cmd, ctx, "forward", [o] { return run_forward(*o); });
}

}  // namespace rvt::cli
