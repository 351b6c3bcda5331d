// Content digests: XXH3-64, shown as 16 lower-case hex digits in every report.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace rvt {

std::uint64_t xxh3_64(std::span<const std::uint8_t> bytes);
std::uint64_t xxh3_64(const void* data, std::size_t size);
std::string hex64(std::uint64_t value);  // "0123456789abcdef"
std::string hex32(std::uint32_t value);  // "0xdc807956"

// Parses "0x..." hex or decimal into a u64; throws rvt::Error(kUsage) naming `what`.
std::uint64_t parse_u64(const std::string& text, const std::string& what);
// Parses a 64-bit digest: exactly 16 hex digits, with or without "0x"; throws like parse_u64.
std::uint64_t parse_hex64_digest(const std::string& text, const std::string& what);

}  // namespace rvt
