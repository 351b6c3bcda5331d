#include "rvt/report/report.hpp"

#include <ctime>

#include "rvt/core/build_info.hpp"
#include "rvt/core/cpu_info.hpp"
#include "rvt/core/parallel.hpp"
#include "rvt/kernels/isa.hpp"

namespace rvt::report {

Json tool_json() {
  const BuildInfo& b = build_info();
  Json j;
  j["name"] = "rvtemporal";
  j["version"] = b.version;
  j["git_commit"] = b.git_commit;
  j["build_type"] = b.build_type;
  j["compiler"] = b.compiler;
  return j;
}

Json host_json() {
  Json j;
  try {
    j["isa"] = kernels::isa_name(kernels::resolve_isa(kernels::Isa::kAuto));
  } catch (const Error&) {
    j["isa"] = nullptr;  // RVT_ISA names an ISA this CPU lacks: the error itself says so
  }
  j["isa_best"] = kernels::isa_name(kernels::best_isa());
  j["cores"] = default_threads();
  add_cpu(j);
  return j;
}

void add_cpu(Json& block) {
  const CpuIdentity& cpu = cpu_identity();
  auto number = [](const std::optional<int>& v) { return v ? Json(*v) : Json(nullptr); };
  block["cpu_model"] = cpu.model_name;
  block["cpu_id"] = Json{{"vendor", cpu.vendor.empty() ? Json(nullptr) : Json(cpu.vendor)},
                         {"family", number(cpu.family)},
                         {"model", number(cpu.model)},
                         {"stepping", number(cpu.stepping)}};
}

std::string describe_cpu(const Json& block) {
  std::string s = block.contains("cpu_model") && block["cpu_model"].is_string() ? block["cpu_model"].get<std::string>()
                                                                                : std::string("unknown CPU");
  if (!block.contains("cpu_id") || !block["cpu_id"].is_object()) return s;
  const Json& id = block["cpu_id"];
  std::string parts;
  auto add = [&](const std::string& part) { parts += (parts.empty() ? "" : " ") + part; };
  if (id.contains("vendor") && id["vendor"].is_string()) add(id["vendor"].get<std::string>());
  for (const char* key : {"family", "model", "stepping"}) {
    if (id.contains(key) && id[key].is_number_integer()) add(std::string(key) + " " + std::to_string(id[key].get<long long>()));
  }
  return parts.empty() ? s : s + " (" + parts + ")";
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Json envelope(const std::string& command, ExitCode code, Json result, const std::string& error) {
  Json j;
  j["schema"] = kSchema;
  j["command"] = command;
  j["ok"] = code == ExitCode::kOk;
  j["exit_code"] = to_int(code);
  j["exit_name"] = exit_code_name(code);
  j["tool"] = tool_json();
  j["host"] = host_json();
  j["timestamp_utc"] = utc_timestamp();
  j["result"] = result.is_null() ? Json::object() : std::move(result);
  if (error.empty()) {
    j["error"] = nullptr;
  } else {
    j["error"] = Json{{"message", error}};
  }
  return j;
}

std::string to_text(const Json& report, int indent) {
  return report.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json stats_json(const SummaryStats& s) {
  Json j;
  j["count"] = s.count;
  // No finite value (empty, or all NaN/inf): no min/max/mean/std to give, rather than zeros.
  const bool any = s.finite_count() > 0;
  j["min"] = any ? Json(s.min) : Json(nullptr);
  j["max"] = any ? Json(s.max) : Json(nullptr);
  j["mean"] = any ? Json(s.mean) : Json(nullptr);
  j["std"] = any ? Json(s.std) : Json(nullptr);
  j["nan_count"] = s.nan_count;
  j["inf_count"] = s.inf_count;
  return j;
}

}  // namespace rvt::report
