// How much memory this process may still take. Linux overcommits: an allocation far past
// what is free succeeds, and the process is killed (no message, exit 137) when it touches
// the pages. So large allocations are checked against this first (rvt/tensor/tensor.hpp).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>

namespace rvt {

// MemAvailable from /proc/meminfo text, in bytes; nullopt where the line is missing.
std::optional<std::uint64_t> parse_mem_available(std::istream& meminfo);

// The bytes free now: MemAvailable, or less where a cgroup memory limit (v2 memory.max, v1
// memory.limit_in_bytes) leaves less room; nullopt where none of them can be read.
std::optional<std::uint64_t> available_memory_bytes();

}  // namespace rvt
