#include "rvt/jobs/presets.hpp"

#include "rvt/core/error.hpp"

namespace rvt::jobs {

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all{
      {"default", 4, 4, 32, 128, 64},
      {"aether", 4, 1, 32, 32, 16},
      {"bench", 4, 4, 32, 16, 32},
      {"llama8x64", 8, 8, 64, 128, 64},  // LLaMA-style heads, for bench at dim 64
  };
  return all;
}

std::string preset_names(const char* separator) {
  std::string names;
  for (const Preset& p : presets()) names += (names.empty() ? "" : separator) + p.name;
  return names;
}

const Preset& find_preset(const std::string& name) {
  for (const Preset& p : presets()) {
    if (p.name == name) return p;
  }
  throw_usage("--preset: '" + name + "' is not one of " + preset_names(", "));
}

}  // namespace rvt::jobs
