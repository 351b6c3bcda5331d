#include "rvt/core/hash.hpp"

#include <xxhash.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "rvt/core/error.hpp"

namespace rvt {

std::uint64_t xxh3_64(const void* data, std::size_t size) { return XXH3_64bits(data, size); }

std::uint64_t xxh3_64(std::span<const std::uint8_t> bytes) {
  return xxh3_64(bytes.data(), bytes.size());
}

std::string hex64(std::uint64_t value) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

std::string hex32(std::uint32_t value) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", value);
  return buf;
}

namespace {

// `digits` in `base`; messages quote `text`, what the user typed.
std::uint64_t parse_digits(std::string_view digits, int base, const std::string& text, const std::string& what) {
  if (digits.empty()) throw_usage(what + ": '" + text + "' has no digits");
  std::uint64_t value = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else throw_usage(what + ": '" + text + "' is not a " + (base == 16 ? "hex" : "decimal or 0x-hex") + " number");
    const auto b = static_cast<std::uint64_t>(base);
    if (value > (UINT64_MAX - static_cast<std::uint64_t>(d)) / b) {
      throw_usage(what + ": '" + text + "' does not fit in 64 bits");
    }
    value = value * b + static_cast<std::uint64_t>(d);
  }
  return value;
}

bool has_hex_prefix(std::string_view text) { return text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'); }

}  // namespace

std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  if (text.empty()) throw_usage(what + ": empty number");
  if (has_hex_prefix(text)) return parse_digits(std::string_view(text).substr(2), 16, text, what);
  return parse_digits(text, 10, text, what);
}

std::uint64_t parse_hex64_digest(const std::string& text, const std::string& what) {
  if (text.empty()) throw_usage(what + ": empty number");
  const std::string_view digits = std::string_view(text).substr(has_hex_prefix(text) ? 2 : 0);
  // A digest pasted short (a digit lost in copying) would otherwise be zero-extended and
  // reported as a mismatch, as if the file were wrong.
  if (digits.size() != 16 && digits.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos) {
    throw_usage(what + ": '" + text + "' has " + std::to_string(digits.size()) +
                " hex digits; an XXH3-64 has 16, as blob inspect and verify print it");
  }
  return parse_digits(digits, 16, text, what);
}

}  // namespace rvt
