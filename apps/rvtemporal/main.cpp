// rvtemporal: sparse vs dense attention on temporal sequences.
// main() owns the global options, logging, the report envelope and the exit code.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli.hpp"
#include "rvt/core/build_info.hpp"
#include "rvt/io/file.hpp"
#include "rvt/kernels/isa.hpp"

namespace rvt::cli {

void bind(CLI::App* sub, Context& ctx, const std::string& name, std::function<Outcome()> run) {
  sub->callback([&ctx, name, run = std::move(run)] {
    ctx.command = name;
    ctx.run = run;
  });
}

namespace {

void setup_logging(int verbose, bool quiet, const std::string& level) {
  auto logger = spdlog::stderr_color_mt("rvtemporal");  // stdout is for machine output only
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::level::level_enum lvl = spdlog::level::warn;
  if (verbose == 1) lvl = spdlog::level::info;
  if (verbose >= 2) lvl = spdlog::level::debug;
  if (quiet) lvl = spdlog::level::err;
  if (!level.empty()) lvl = spdlog::level::from_str(level);
  spdlog::set_level(lvl);
}

// Emits the report (stdout and/or file) and returns the process exit code.
int finish(const Context& ctx, ExitCode code, Json result, const std::string& text,
           const std::string& error, bool jsonl = false) {
  if (!error.empty()) std::fprintf(stderr, "rvtemporal: error: %s\n", error.c_str());
  const Json envelope = report::envelope(ctx.command, code, std::move(result), error);
  if (jsonl) {
    std::cout << envelope.dump() << "\n";
    if (!text.empty()) std::fputs(text.c_str(), stderr);
  } else if (ctx.json) {
    std::cout << envelope.dump(2) << "\n";
  } else if (!text.empty()) {
    std::cout << text;
  }
  std::cout.flush();
  if (!ctx.out_report.empty()) {
    try {
      io::write_file_atomic(ctx.out_report, envelope.dump(2) + "\n");
    } catch (const Error& e) {
      std::fprintf(stderr, "rvtemporal: error: %s\n", e.what());
      return to_int(code == ExitCode::kOk ? e.code() : code);
    }
  }
  return to_int(code);
}

}  // namespace
}  // namespace rvt::cli

int main(int argc, char** argv) {
  using namespace rvt;
  using namespace rvt::cli;

  CLI::App app{"rvtemporal: sparse vs dense attention on temporal sequences"};
  app.fallthrough();  // global options may follow the subcommand
  app.require_subcommand(1);
  app.set_version_flag("--version", build_info().version + " (" + build_info().git_commit + ")");

  Context ctx;
  int verbose = 0;
  bool quiet = false;
  std::string log_level;
  app.add_flag("-v,--verbose", verbose, "More logging on stderr (-vv for debug)");
  app.add_flag("-q,--quiet", quiet, "Errors only on stderr");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|err|critical|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "err", "critical", "off"}));
  app.add_flag("--json", ctx.json, "Print the JSON report on stdout instead of text");
  app.add_option("--out-report", ctx.out_report, "Also write the JSON report to FILE (atomically)");
  std::string isa;
  app.add_option("--isa", isa, "Kernel ISA: auto|scalar|avx2|avx512 (default: RVT_ISA, else the best)");

  register_blob(app, ctx);
  register_forward(app, ctx);
  register_stream(app, ctx);
  register_bench(app, ctx);
  register_parity(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "rvtemporal: usage error: %s (see --help)\n", e.what());
    return to_int(ExitCode::kUsage);
  } catch (const std::exception& e) {
    // CLI11 2.1 converts flag values (--causal=N) with std::stoll and lets its
    // std::out_of_range / std::invalid_argument escape: still a bad command line.
    std::fprintf(stderr, "rvtemporal: usage error: an option value is not a valid number (%s) (see --help)\n", e.what());
    return to_int(ExitCode::kUsage);
  }

  setup_logging(verbose, quiet, log_level);
  try {
    // --isa works through RVT_ISA, which every kernel front end resolves (and reports).
    if (!isa.empty()) ::setenv("RVT_ISA", isa.c_str(), 1);
    kernels::resolve_isa(kernels::Isa::kAuto);  // refuse an unknown or unsupported ISA up front
    Outcome out = ctx.run();
    return finish(ctx, out.code, std::move(out.result), out.text, out.error, out.jsonl);
  } catch (const Error& e) {
    return finish(ctx, e.code(), Json::object(), "", e.what());
  } catch (const std::bad_alloc&) {
    return finish(ctx, ExitCode::kBadInput, Json::object(), "", "out of memory: the input is too large");
  } catch (const std::exception& e) {
    return finish(ctx, ExitCode::kInternal, Json::object(), "", std::string("internal error: ") + e.what());
  }
}
