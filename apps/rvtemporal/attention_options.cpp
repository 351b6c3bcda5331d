#include "attention_options.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "rvt/core/hash.hpp"
#include "rvt/jobs/presets.hpp"

namespace rvt::cli {
namespace {

// With a preset, its value unless the option is given; without one, the option's.
std::size_t pick(const AttentionOptions& o, const char* name, std::size_t value, std::size_t preset_value,
                 bool has_preset) {
  return has_preset ? given_or(*o.cmd, name, value, preset_value) : value;
}

}  // namespace

void add_attention_options(CLI::App* cmd, AttentionOptions& o) {
  o.cmd = cmd;
  cmd->add_option("--preset", o.preset, jobs::preset_names(" | ") + ": heads, dim, window, block");
  cmd->add_option("--q", o.q, "Query tensor, .npy [seq][q_heads][dim]");
  cmd->add_option("--k", o.k, "Key tensor, .npy [seq][kv_heads][dim]");
  cmd->add_option("--v", o.v, "Value tensor, .npy [seq][kv_heads][dim]");
  cmd->add_option("--gen", o.gen, "Generate inputs: normal | uniform | sincos | structured")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Generator seed, decimal or 0x hex")->capture_default_str();
  cmd->add_option("--seq", o.seq, "Generated sequence length")->capture_default_str()->check(count_check());
  cmd->add_option("--q-heads", o.q_heads, "Generated query heads")->capture_default_str()->check(count_check());
  cmd->add_option("--kv-heads", o.kv_heads, "Generated key/value heads")->capture_default_str()->check(count_check());
  cmd->add_option("--dim", o.dim, "Generated head dimension")->capture_default_str()->check(count_check());
  cmd->add_option("--window", o.window, "Local window W")->capture_default_str()->check(count_check());
  cmd->add_option("--block", o.block, "Landmark block size B")->capture_default_str()->check(count_check());
  add_pattern_options(cmd, o);
  cmd->add_flag("--allow-nonfinite", o.allow_nonfinite,
                "Let NaN/inf in --q/--k/--v (or --frames) through instead of refusing the file");
}

void add_pattern_options(CLI::App* cmd, PatternOptions& o) {
  cmd->add_option("--globals", o.globals, "Global tokens, e.g. 0,5 ('none' for no globals)")->capture_default_str();
  cmd->add_flag("--causal,!--no-causal", o.causal, "Causal (default) or bidirectional attention");
  cmd->add_flag("--no-log-stride", o.no_log_stride, "Disable the log-stride candidates");
  cmd->add_flag("--no-landmarks", o.no_landmarks, "Disable the landmark block means");
  cmd->add_option("--landmarks", o.landmarks, "mean (compat) | mass (+ln(count), skip covered blocks)")
      ->capture_default_str();
}

std::vector<std::size_t> parse_globals(const std::string& text) {
  if (text == "none" || text.empty()) return {};
  // A repeat adds nothing to the pattern: "0,5,0" is "0,5" (so say the reports, --compare and
  // H2O's capacity rule). The order stays: the candidate lists follow it (docs/attention.md).
  std::vector<std::size_t> distinct;
  for (std::size_t g : jobs::parse_index_list(text, "--globals")) {
    if (std::find(distinct.begin(), distinct.end(), g) == distinct.end()) distinct.push_back(g);
  }
  return distinct;
}

void apply_pattern_options(const PatternOptions& o, attn::SparseConfig& c) {
  c.globals = parse_globals(o.globals);
  c.causal = o.causal;
  c.log_stride = !o.no_log_stride;
  c.landmarks = !o.no_landmarks;
  c.landmark_mode = attn::parse_landmark_mode(o.landmarks);
}

UnusedOptions unused_by_model(const AttentionOptions& o, const std::vector<std::string>& extra) {
  std::vector<std::string> names{"--q",     "--k",           "--v",            "--seq",      "--q-heads", "--kv-heads",
                                 "--dim",   "--globals",     "--no-log-stride", "--no-landmarks", "--landmarks"};
  names.insert(names.end(), extra.begin(), extra.end());
  return unused_options(*o.cmd, names,
                        "with --blob (the temporal head takes its heads and dim from the blob, its pattern is globals "
                        "[0], log-stride and mean landmarks)");
}

UnusedOptions unused_with_files(const AttentionOptions& o, bool with_gen) {
  if (o.q.empty() && o.k.empty() && o.v.empty()) return {};
  std::vector<std::string> names{"--seed", "--seq", "--q-heads", "--kv-heads", "--dim"};
  if (with_gen) names.insert(names.begin(), "--gen");
  return unused_options(*o.cmd, names, "with --q/--k/--v (the inputs and their shape come from the files)");
}

void check_given_values(const AttentionOptions& o) {
  (void)parse_gen_kind(o.gen);
  (void)parse_u64(o.seed, "--seed");
  (void)parse_globals(o.globals);
  (void)attn::parse_landmark_mode(o.landmarks);
}

jobs::InputSpec input_spec(const AttentionOptions& o) {
  const bool has_preset = !o.preset.empty();
  const jobs::Preset* p = has_preset ? &jobs::find_preset(o.preset) : nullptr;
  jobs::InputSpec s;
  s.q_path = o.q;
  s.k_path = o.k;
  s.v_path = o.v;
  s.allow_nonfinite = o.allow_nonfinite;
  s.gen = parse_gen_kind(o.gen);
  s.seed = parse_u64(o.seed, "--seed");
  s.seq = o.seq;
  s.q_heads = pick(o, "--q-heads", o.q_heads, p ? p->q_heads : 0, has_preset);
  s.kv_heads = pick(o, "--kv-heads", o.kv_heads, p ? p->kv_heads : 0, has_preset);
  s.dim = pick(o, "--dim", o.dim, p ? p->head_dim : 0, has_preset);
  if (s.from_files()) {
    if (o.q.empty() || o.k.empty() || o.v.empty()) throw_usage("--q, --k and --v must be given together");
  } else {
    if (s.q_heads == 0 || s.kv_heads == 0 || s.dim == 0) throw_usage("--q-heads, --kv-heads and --dim must be > 0");
    attn::check_gqa_options(s.q_heads, s.kv_heads);
  }
  return s;
}

attn::SparseConfig sparse_config(const AttentionOptions& o) {
  const bool has_preset = !o.preset.empty();
  const jobs::Preset* p = has_preset ? &jobs::find_preset(o.preset) : nullptr;
  attn::SparseConfig c;
  c.window = pick(o, "--window", o.window, p ? p->window : 0, has_preset);
  c.block_size = pick(o, "--block", o.block, p ? p->block_size : 0, has_preset);
  apply_pattern_options(o, c);
  c.validate();
  return c;
}

void add_model_options(CLI::App* cmd, ModelOptions& o, const std::string& blob_help) {
  cmd->add_option("--blob", o.blob, blob_help);
  cmd->add_option("--frames", o.frames, "Model input frames, a 2-d [T][input_dim] .npy");
  cmd->add_option("--gen-frames", o.gen_frames, "Generate T model input frames (with --gen, --seed)")->check(count_check());
}

jobs::FrameSpec frame_spec(const ModelOptions& m, const AttentionOptions& o) {
  return jobs::FrameSpec{m.frames, m.gen_frames, parse_gen_kind(o.gen), parse_u64(o.seed, "--seed"), o.allow_nonfinite};
}

void refuse_frames_without_blob(const ModelOptions& m, const AttentionOptions& o) {
  if (!m.frames.empty() || given(*o.cmd, "--gen-frames")) throw_usage("--frames/--gen-frames need --blob");
}

model::HeadConfig model_head_config(const AttentionOptions& o, attn::Backend backend) {
  const jobs::Preset& base = jobs::find_preset(o.preset.empty() ? "aether" : o.preset);
  model::HeadConfig h;
  h.backend = backend;
  h.window = pick(o, "--window", o.window, base.window, true);
  h.block_size = pick(o, "--block", o.block, base.block_size, true);
  h.causal = o.causal;
  return h;
}

}  // namespace rvt::cli
