// Small text helpers shared by the report writers.
#pragma once

#include <string>

namespace rvt {

// One number through a printf format ("%.3f", "%.6g", ...).
std::string format_double(const char* printf_format, double value);

}  // namespace rvt
