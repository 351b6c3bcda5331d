// Where a job's tensors come from: .npy files the user brings, or a seeded generator.
// Shared by forward, stream and parity so every subcommand reads inputs the same way.
//
// Non-finite values (NaN, +-inf) in a file are refused here, once, where the file is read
// (kBadInput naming the file and the first bad element), unless allow_nonfinite is set:
// then they reach the kernels, which propagate them (the scalar reference runs non-finite
// inputs on every ISA) and the report counts them. Generated inputs are always finite.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rvt/report/report.hpp"
#include "rvt/tensor/generate.hpp"

namespace rvt::jobs {

struct InputSpec {
  std::string q_path, k_path, v_path;  // all three, or none (then generate)
  GenKind gen = GenKind::kNormal;
  std::size_t seq = 1024, q_heads = 4, kv_heads = 4, dim = 32;
  std::uint64_t seed = 0x5EED;
  bool allow_nonfinite = false;  // --allow-nonfinite: let NaN/inf in the files through

  bool from_files() const { return !q_path.empty() || !k_path.empty() || !v_path.empty(); }
};

// Loads or generates Q/K/V. Files: all three are required (kUsage otherwise); each must be
// a 3-d float .npy with finite values unless spec.allow_nonfinite (kBadInput naming the
// file otherwise), and the three must fit together (attn::check_qkv; its error names them).
// Generated inputs are filled by `threads` workers (the same values for every count).
Qkv load_inputs(const InputSpec& spec, unsigned threads = 1);

// Throws kBadInput if `values` (C order, of `shape`) holds a NaN or +-inf:
// "q.npy: non-finite value nan at [3, 1, 2] (element 98 of 4096); pass --allow-nonfinite
// to propagate it". `source_dtype` "<f8" notes that inf may be a float64 beyond the f32 range.
void require_finite(std::span<const float> values, const std::vector<std::size_t>& shape,
                    const std::string& name, const std::string& source_dtype = "");

// {"source": "files"|"generated", paths or generator+seed, shapes}
report::Json inputs_json(const InputSpec& spec, const Qkv& qkv);

// Frames [T][input_dim] for the model: a 2-d float .npy, or generated (seed, kind).
struct FrameSpec {
  std::string path;
  std::size_t count = 0;  // --gen-frames T
  GenKind gen = GenKind::kNormal;
  std::uint64_t seed = 0x5EED;
  bool allow_nonfinite = false;  // as in InputSpec
};
// Returns a [T][1][input_dim] tensor; checks input_dim against the model's, and that the
// file's values are finite unless spec.allow_nonfinite.
Tensor load_frames(const FrameSpec& spec, std::size_t input_dim, unsigned threads = 1);

// Parses "0,5,17" into a list; throws kUsage naming `what`.
std::vector<std::size_t> parse_index_list(const std::string& text, const std::string& what);

}  // namespace rvt::jobs
