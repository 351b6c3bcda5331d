#include "rvt/core/text.hpp"

#include <cstdio>

namespace rvt {

std::string format_double(const char* printf_format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, value);
  return buf;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> items;
  std::size_t start = 0;
  for (std::size_t at; (at = text.find(separator, start)) != std::string::npos; start = at + 1) {
    items.push_back(text.substr(start, at - start));
  }
  items.push_back(text.substr(start));
  return items;
}

std::string one_line(std::string_view text, bool ascii_only) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if ((byte < 0x20 && (c != '\t' || ascii_only)) || byte == 0x7f || (ascii_only && byte >= 0x80)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", byte);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace rvt
