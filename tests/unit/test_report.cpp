// The report envelope's host block: the CPU identity read from /proc/cpuinfo and its
// rendering in words (what bench --compare names machines by).
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "rvt/core/cpu_info.hpp"
#include "rvt/report/report.hpp"

using namespace rvt;
using report::Json;

TEST_CASE("cpu identity: the first processor's numbers, what is missing left empty") {
  std::istringstream two(
      "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
      "model name\t: AMD EPYC\nstepping\t: 1\n\nprocessor\t: 1\ncpu family\t: 26\nmodel name\t: other\n");
  const CpuIdentity id = parse_cpuinfo(two);
  CHECK(id.model_name == "AMD EPYC");
  CHECK(id.vendor == "AuthenticAMD");
  CHECK(id.family == 25);  // not the second processor's 26
  CHECK(id.model == 17);
  CHECK(id.stepping == 1);

  std::istringstream partial("model name : Some CPU\ncpu family : x25\nmodel : -3\nstepping : 99999999999\n");
  const CpuIdentity p = parse_cpuinfo(partial);
  CHECK(p.model_name == "Some CPU");
  CHECK(p.vendor.empty());
  CHECK(!p.family);
  CHECK(!p.model);
  CHECK(!p.stepping);
  std::istringstream empty("");
  CHECK(parse_cpuinfo(empty).model_name == "unknown");
}

TEST_CASE("report host block: the CPU beside the ISA, in words for bench --compare") {
  const Json host = report::host_json();
  for (const char* key : {"isa", "isa_best", "cores", "cpu_model", "cpu_id"}) CHECK(host.contains(key));
  const CpuIdentity& here = cpu_identity();
  CHECK(host["cpu_model"] == here.model_name);
  CHECK(host["cpu_id"]["family"] == (here.family ? Json(*here.family) : Json(nullptr)));
  CHECK(report::describe_cpu(host).rfind(here.model_name, 0) == 0);

  const Json block{{"cpu_model", "AMD EPYC"},
                   {"cpu_id", {{"vendor", "AuthenticAMD"}, {"family", 25}, {"model", 17}, {"stepping", 1}}}};
  CHECK(report::describe_cpu(block) == "AMD EPYC (AuthenticAMD family 25 model 17 stepping 1)");
  const Json bare{{"cpu_model", "Some CPU"},
                  {"cpu_id", {{"vendor", nullptr}, {"family", nullptr}, {"model", nullptr}, {"stepping", nullptr}}}};
  CHECK(report::describe_cpu(bare) == "Some CPU");
  CHECK(report::describe_cpu(Json{{"cpu_model", "Old Report CPU"}}) == "Old Report CPU");  // before cpu_id
  CHECK(report::describe_cpu(Json::object()) == "unknown CPU");
}
