// How much memory this process may still take. Linux overcommits: an allocation far past
// what is free succeeds, and the process is killed (no message, exit 137) when it touches
// the pages. So large allocations are checked against this first (rvt/tensor/tensor.hpp).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace rvt {

// MemAvailable from /proc/meminfo text, in bytes; nullopt where the line is missing.
std::optional<std::uint64_t> parse_mem_available(std::istream& meminfo);

// The two cgroup memory interfaces: where each is mounted and what its files are called.
struct CgroupMemoryFiles {
  const char* mount;        // /sys/fs/cgroup (v2) or /sys/fs/cgroup/memory (v1)
  const char* limit;        // memory.max or memory.limit_in_bytes ("max": no limit)
  const char* usage;        // memory.current or memory.usage_in_bytes (page cache included)
  const char* inactive_file;  // memory.stat key of the file cache the kernel reclaims first
};
inline constexpr CgroupMemoryFiles kCgroupV2{"/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"};
inline constexpr CgroupMemoryFiles kCgroupV1{"/sys/fs/cgroup/memory", "memory.limit_in_bytes",
                                             "memory.usage_in_bytes", "total_inactive_file"};

// This process's cgroup path from /proc/self/cgroup text: the "0::" line (v2) or the line
// whose controllers include memory (v1); nullopt where there is none.
std::optional<std::string> own_cgroup_path(std::istream& proc_self_cgroup, bool v2);

// The least room any cgroup from `mount`/`own_path` up to `mount` leaves: limit - (usage -
// inactive file cache), each level's limit counting its children's use. A container may show
// the mount root as its own cgroup, so an own path missing under the mount starts at the
// root. nullopt where no level has a limit that reads as a number.
std::optional<std::uint64_t> cgroup_room(const CgroupMemoryFiles& files, const std::string& mount,
                                         const std::string& own_path);

// The bytes free now: MemAvailable, or less where a cgroup memory limit (v2 or v1) on this
// process's cgroup or any above it leaves less room; nullopt where none of them can be read.
std::optional<std::uint64_t> available_memory_bytes();

}  // namespace rvt
