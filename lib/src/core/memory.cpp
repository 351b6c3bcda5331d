#include "rvt/core/memory.hpp"

#include <algorithm>
#include <fstream>
#include <istream>
#include <sstream>
#include <string>

namespace rvt {
namespace {

// A file holding one unsigned number ("max" or anything else: nullopt).
std::optional<std::uint64_t> read_number(const char* path) {
  std::ifstream in(path);
  std::uint64_t value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

// What a cgroup limit leaves: limit - usage, where both files read as numbers.
std::optional<std::uint64_t> cgroup_room(const char* limit_path, const char* usage_path) {
  const auto limit = read_number(limit_path), usage = read_number(usage_path);
  if (!limit || !usage) return std::nullopt;
  return *limit > *usage ? *limit - *usage : 0;
}

}  // namespace

std::optional<std::uint64_t> parse_mem_available(std::istream& meminfo) {
  std::string line;
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    std::uint64_t kib = 0;
    std::string unit;
    if (!(fields >> kib >> unit) || unit != "kB" || kib > UINT64_MAX / 1024) return std::nullopt;
    return kib * 1024;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::optional<std::uint64_t> room = parse_mem_available(meminfo);
  for (const auto& limit : {cgroup_room("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                            cgroup_room("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                        "/sys/fs/cgroup/memory/memory.usage_in_bytes")}) {
    if (limit) room = room ? std::min(*room, *limit) : *limit;
  }
  return room;
}

}  // namespace rvt
