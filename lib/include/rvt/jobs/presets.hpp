// Named configurations, so users and benchmarks say "aether" instead of six numbers.
#pragma once

#include <string>
#include <vector>

namespace rvt::jobs {

struct Preset {
  std::string name;
  std::size_t q_heads, kv_heads, head_dim, window, block_size;
};

// default: the reference's SparseConfig::default() (W 128, B 64) on MHA 4x32.
// aether : the temporal head (MQA q 4 / kv 1, dim 32, W 32, B 16).
// bench  : the reference's speedup table (MHA 4 heads, dim 32, W 16, B 32).
// llama8x64: LLaMA-style heads for bench's dim-64 target (MHA 8 x 64, W 128, B 64).
const std::vector<Preset>& presets();
const Preset& find_preset(const std::string& name);  // throws kUsage listing the names
std::string preset_names(const char* separator);  // "default | aether | ..." for help texts

}  // namespace rvt::jobs
