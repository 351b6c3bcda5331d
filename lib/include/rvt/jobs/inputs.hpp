// Where a job's tensors come from: .npy files the user brings, or a seeded generator.
// Shared by forward, stream and parity so every subcommand reads inputs the same way.
#pragma once

#include <cstdint>
#include <string>

#include "rvt/report/report.hpp"
#include "rvt/tensor/generate.hpp"

namespace rvt::jobs {

struct InputSpec {
  std::string q_path, k_path, v_path;  // all three, or none (then generate)
  GenKind gen = GenKind::kNormal;
  std::size_t seq = 1024, q_heads = 4, kv_heads = 4, dim = 32;
  std::uint64_t seed = 0x5EED;

  bool from_files() const { return !q_path.empty() || !k_path.empty() || !v_path.empty(); }
};

// Loads or generates Q/K/V. Files: all three are required (kUsage otherwise); each must be
// a 3-d float .npy (kBadInput naming the file otherwise).
Qkv load_inputs(const InputSpec& spec);

// {"source": "files"|"generated", paths or generator+seed, shapes}
report::Json inputs_json(const InputSpec& spec, const Qkv& qkv);

// Frames [T][input_dim] for the model: a 2-d float .npy, or generated (seed, kind).
struct FrameSpec {
  std::string path;
  std::size_t count = 0;  // --gen-frames T
  GenKind gen = GenKind::kNormal;
  std::uint64_t seed = 0x5EED;
};
// Returns a [T][1][input_dim] tensor; checks input_dim against the model's.
Tensor load_frames(const FrameSpec& spec, std::size_t input_dim);

// Parses "0,5,17" into a list; throws kUsage naming `what`.
std::vector<std::size_t> parse_index_list(const std::string& text, const std::string& what);

}  // namespace rvt::jobs
