#include "rvt/jobs/presets.hpp"

#include "rvt/core/error.hpp"

namespace rvt::jobs {

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all{
      {"default", 4, 4, 32, 128, 64, "reference default config: MHA 4x32, window 128, block 64"},
      {"aether", 4, 1, 32, 32, 16, "temporal head: MQA 4:1, dim 32, window 32, block 16"},
      {"bench", 4, 4, 32, 16, 32, "reference speedup table: MHA 4x32, window 16, block 32"},
      {"llama8x64", 8, 8, 64, 128, 64, "LLaMA-style head shape for bench at dim 64: MHA 8x64, window 128, block 64"},
  };
  return all;
}

const Preset& find_preset(const std::string& name) {
  std::string names;
  for (const Preset& p : presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw_usage("--preset: '" + name + "' is not one of " + names);
}

}  // namespace rvt::jobs
