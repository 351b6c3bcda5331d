#include "rvt/core/memory.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <istream>
#include <sstream>

namespace rvt {
namespace {

// A file holding one unsigned number ("max" or anything else: nullopt).
std::optional<std::uint64_t> read_number(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::uint64_t value = 0;
  if (!(in >> value)) return std::nullopt;
  return value;
}

// The value of `key` in a memory.stat file ("key value" lines); 0 where it is missing.
std::uint64_t read_stat(const std::filesystem::path& path, const std::string& key) {
  std::ifstream in(path);
  std::string name;
  std::uint64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

// What one cgroup's limit leaves, where its limit and usage read as numbers.
std::optional<std::uint64_t> level_room(const CgroupMemoryFiles& files, const std::filesystem::path& dir) {
  const auto limit = read_number(dir / files.limit), usage = read_number(dir / files.usage);
  if (!limit || !usage) return std::nullopt;
  const std::uint64_t reclaimable = std::min(*usage, read_stat(dir / "memory.stat", files.inactive_file));
  const std::uint64_t used = *usage - reclaimable;
  return *limit > used ? *limit - used : 0;
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

std::optional<std::string> own_cgroup_path(std::istream& proc_self_cgroup, bool v2) {
  std::string line;
  while (std::getline(proc_self_cgroup, line)) {
    // hierarchy-id:controller,list:path (the path may itself hold ':').
    const std::size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string id = line.substr(0, first), controllers = line.substr(first + 1, second - first - 1);
    const bool match = v2 ? (id == "0" && controllers.empty())
                          : ("," + controllers + ",").find(",memory,") != std::string::npos;
    if (match) return line.substr(second + 1);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> cgroup_room(const CgroupMemoryFiles& files, const std::string& mount,
                                         const std::string& own_path) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(mount).lexically_normal();
  fs::path dir = (root / fs::path(own_path).relative_path()).lexically_normal();
  std::error_code ec;
  if (dir.lexically_relative(root).native().rfind("..", 0) == 0 || !fs::is_directory(dir, ec)) dir = root;
  std::optional<std::uint64_t> room;
  for (;;) {
    if (const auto here = level_room(files, dir)) room = room ? std::min(*room, *here) : *here;
    if (dir == root || !dir.has_relative_path()) break;
    dir = dir.parent_path();
  }
  return room;
}

std::optional<std::uint64_t> available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::optional<std::uint64_t> room = parse_mem_available(meminfo);
  std::ostringstream own_text;
  own_text << std::ifstream("/proc/self/cgroup").rdbuf();
  for (const bool v2 : {true, false}) {
    std::istringstream own(own_text.str());
    const std::optional<std::string> path = own_cgroup_path(own, v2);
    const CgroupMemoryFiles& files = v2 ? kCgroupV2 : kCgroupV1;
    if (!path) continue;
    if (const auto limit = cgroup_room(files, files.mount, *path)) room = room ? std::min(*room, *limit) : *limit;
  }
  return room;
}

}  // namespace rvt
