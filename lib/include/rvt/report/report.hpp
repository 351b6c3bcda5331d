// The JSON report envelope every subcommand emits.
//
//   {"schema": "rvtemporal.report/1", "command": "blob inspect", "ok": true, "exit_code": 0,
//    "exit_name": "ok", "tool": {...build...}, "host": {"isa": ..., "cpu_model": ..., "cpu_id": {...}},
//    "timestamp_utc": "...", "result": {...},
//    "error": null | {"message": "..."}}
//
// Keys keep their insertion order (ordered_json) so reports diff cleanly.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "rvt/core/error.hpp"
#include "rvt/core/stats.hpp"

namespace rvt::report {

using Json = nlohmann::ordered_json;

inline constexpr const char* kSchema = "rvtemporal.report/1";

Json tool_json();
Json host_json();  // the kernels' ISA (after RVT_ISA / --isa), the best ISA, cores, the CPU (below)

// Sets block["cpu_model"] (the model string) and block["cpu_id"] ({"vendor", "family",
// "model", "stepping"}, null where /proc/cpuinfo does not give one): rvt/core/cpu_info.hpp.
void add_cpu(Json& block);
// Such a block's CPU in words, "AMD EPYC (AuthenticAMD family 25 model 17 stepping 1)"; the
// model string alone for a report from before "cpu_id".
std::string describe_cpu(const Json& block);

std::string utc_timestamp();  // ISO 8601, seconds, "Z"

Json envelope(const std::string& command, ExitCode code, Json result, const std::string& error);

// The report as text (indent < 0: one line). Reports carry what the user typed (paths, option
// values) verbatim; bytes that are not UTF-8 (a Latin-1 file name) become U+FFFD instead of
// making the dump throw.
std::string to_text(const Json& report, int indent = -1);

Json stats_json(const SummaryStats& stats);

}  // namespace rvt::report
