#include "rvt/core/cpu_info.hpp"

#include <fstream>
#include <istream>

namespace rvt {
namespace {

std::optional<int> plain_number(const std::string& v) {
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoi(v);
}

std::string trimmed(const std::string& s) {
  const std::size_t first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t") + 1 - first);
}

}  // namespace

CpuIdentity parse_cpuinfo(std::istream& in) {
  CpuIdentity id;
  bool in_first = false;
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) {
      if (in_first && trimmed(line).empty()) break;  // a blank line ends the first processor's block
      continue;
    }
    in_first = true;
    const std::string key = trimmed(line.substr(0, colon)), value = trimmed(line.substr(colon + 1));
    if (key == "model name") id.model_name = value;
    else if (key == "vendor_id") id.vendor = value;
    else if (key == "cpu family") id.family = plain_number(value);
    else if (key == "model") id.model = plain_number(value);
    else if (key == "stepping") id.stepping = plain_number(value);
  }
  return id;
}

const CpuIdentity& cpu_identity() {
  static const CpuIdentity id = [] {
    std::ifstream in("/proc/cpuinfo");
    return parse_cpuinfo(in);
  }();
  return id;
}

}  // namespace rvt
