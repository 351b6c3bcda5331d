// Attention options shared by forward, stream and parity: inputs, pattern, preset.
// A preset fills every value the user did not give explicitly.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli.hpp"

#include "rvt/attention/config.hpp"
#include "rvt/jobs/inputs.hpp"
#include "rvt/model/temporal_head.hpp"

namespace rvt::cli {

// The sparse pattern beyond window and block (forward, stream, parity and bench).
struct PatternOptions {
  std::string globals = "0";
  bool causal = true;
  bool no_log_stride = false, no_landmarks = false;
  std::string landmarks = "mean";
};

void add_pattern_options(CLI::App* cmd, PatternOptions& o);
// --globals: "none" or a list, repeats dropped (they add nothing to the pattern), order kept.
std::vector<std::size_t> parse_globals(const std::string& text);
// Sets c's globals, causal, log-stride and landmark fields from o (usage errors for bad values).
void apply_pattern_options(const PatternOptions& o, attn::SparseConfig& c);

struct AttentionOptions : PatternOptions {
  const CLI::App* cmd = nullptr;  // the subcommand the options belong to
  std::string preset;
  std::string q, k, v;
  std::string gen = "normal";
  std::string seed = "0x5EED";
  std::size_t seq = 1024, q_heads = 4, kv_heads = 4, dim = 32;
  std::size_t window = 128, block = 64;
  bool allow_nonfinite = false;
};

void add_attention_options(CLI::App* cmd, AttentionOptions& o);
// The options given that the temporal head (--blob) does not use: it takes its heads and dim
// from the blob and has a fixed pattern (`extra`: the command's own such options).
UnusedOptions unused_by_model(const AttentionOptions& o, const std::vector<std::string>& extra = {});
// The generator options given beside --q/--k/--v, which input_spec does not use (--gen
// too, unless `with_gen` is false: parity refuses it there).
UnusedOptions unused_with_files(const AttentionOptions& o, bool with_gen = true);
// Parses every value given, used or not (usage error for a bad one): an option the command
// then warns "has no effect" about still has to be well formed.
void check_given_values(const AttentionOptions& o);

// Resolved views of the options (preset applied).
jobs::InputSpec input_spec(const AttentionOptions& o);
attn::SparseConfig sparse_config(const AttentionOptions& o);
// The model's head: aether window/block unless given (heads come from the blob).
model::HeadConfig model_head_config(const AttentionOptions& o, attn::Backend backend);

// The temporal head's inputs (forward and stream): the blob, and its frames from a file or
// generated (with the attention options' --gen and --seed).
struct ModelOptions {
  std::string blob, frames;
  std::size_t gen_frames = 0;
};
void add_model_options(CLI::App* cmd, ModelOptions& o, const std::string& blob_help);
jobs::FrameSpec frame_spec(const ModelOptions& m, const AttentionOptions& o);
// Attention mode (no --blob): frames are a usage error.
void refuse_frames_without_blob(const ModelOptions& m, const AttentionOptions& o);

}  // namespace rvt::cli
