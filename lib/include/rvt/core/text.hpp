// Small text helpers shared by the report writers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rvt {

// One number through a printf format ("%.3f", "%.6g", ...).
std::string format_double(const char* printf_format, double value);

// The items of a `separator`-separated list, empty ones kept ("a,,b": a, "", b; "": one "").
std::vector<std::string> split(const std::string& text, char separator);

// `text` with its control bytes written out ("\n", "\r", "\x1b"; tabs kept), so that a
// message quoting a file name or an option value stays one line on a terminal. ascii_only:
// tabs and bytes past 0x7f too ("\xff"), for quoting binary data such as a file's header.
std::string one_line(std::string_view text, bool ascii_only = false);

}  // namespace rvt
