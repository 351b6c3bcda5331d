#include "rvt/core/text.hpp"

#include <cstdio>

namespace rvt {

std::string format_double(const char* printf_format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, value);
  return buf;
}

}  // namespace rvt
