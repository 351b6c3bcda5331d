// rvtemporal: sparse vs dense attention on temporal sequences.
// main() owns the global options, logging, the report envelope and the exit code.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <set>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "rvt/core/clock.hpp"
#include "rvt/core/build_info.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"
#include "rvt/kernels/isa.hpp"
#include "rvt/parity/parity.hpp"
#include "rvt/tensor/tensor.hpp"

namespace rvt::cli {

void bind(CLI::App* sub, Context& ctx, const std::string& name, std::function<Outcome()> run) {
  sub->callback([&ctx, name, run = std::move(run)] {
    ctx.command = name;
    ctx.run = run;
  });
}

std::function<void(const std::string&)> warn_notice(const std::string& command) {
  return [command](const std::string& line) { spdlog::warn("{}: {}", command, line); };
}

void warn_unused(const UnusedOptions& u, const std::string& command) {
  if (u.given.empty()) return;
  std::string names;
  for (const std::string& name : u.given) names += (names.empty() ? "" : ", ") + name;
  spdlog::warn("{}: {} {} no effect {}", command, names, u.given.size() == 1 ? "has" : "have", u.why);
}

namespace {

const auto g_start = rvt::Clock::now();  // for finish's -v line

// Logging goes to stderr (stdout is for machine output only), at warn until the options are
// parsed: a refused command line logs like any other.
void start_logging() {
  auto logger = spdlog::stderr_color_mt("rvtemporal");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);
}

void set_log_level(int verbose, bool quiet, const std::string& level) {
  spdlog::level::level_enum lvl = spdlog::level::warn;
  if (verbose == 1) lvl = spdlog::level::info;
  if (verbose >= 2) lvl = spdlog::level::debug;
  if (quiet) lvl = spdlog::level::err;
  if (!level.empty()) lvl = spdlog::level::from_str(level);
  spdlog::set_level(lvl);
}

// Emits the report (stdout and/or file) and returns the process exit code. The file comes
// first, so that when it cannot be written the report on stdout and the exit code say so.
// `label` starts the stderr line: "error", or "usage error" for a command line the parser refused.
int finish(const Context& ctx, ExitCode code, const Json& result, const std::string& text, std::string error,
           const char* label = "error") {
  // Outputs the user asked for and did not get decide the exit code (io), as an unreadable
  // file does in `blob verify`; the command's own error, if any, goes on the same line.
  const std::string command_error = error;
  std::vector<std::string> failed_outputs;
  auto fail_output = [&](const Error& e) {
    failed_outputs.push_back(e.what());
    error.clear();
    for (const std::string& f : failed_outputs) error += (error.empty() ? "" : "; ") + f;
    if (!command_error.empty()) error += " (the command had failed too: " + command_error + ")";
    code = e.code();
    label = "error";
  };
  auto write_report = [&] {
    io::write_file_atomic(ctx.out_report, report::to_text(report::envelope(ctx.command, code, result, error), 2) + "\n");
  };
  bool report_written = false;
  if (!ctx.out_report.empty()) {
    try {
      write_report();
      report_written = true;
    } catch (const Error& e) {
      fail_output(e);
    }
  }
  const Json envelope = report::envelope(ctx.command, code, result, error);
  if (ctx.jsonl) {
    std::cout << report::to_text(envelope) << "\n";
  } else if (ctx.json) {
    std::cout << report::to_text(envelope, 2) << "\n";
  } else if (!text.empty() && !ctx.text_to_stderr) {
    std::cout << text;
  }
  // stdout is an output like any other: a full disk or a reader gone (SIGPIPE is ignored, so
  // EPIPE) is exit 4, and a report file written before is written again to say so, where that
  // replaces it (not a descriptor or a pipe, which would get a second report).
  errno = 0;
  std::cout.flush();
  std::fflush(stdout);
  const int flush_errno = errno;  // set where this flush's write failed; an earlier one's is gone
  const bool stdout_failed = !std::cout || std::ferror(stdout);
  if (stdout_failed && command_error.rfind("stdout: write failed", 0) != 0) {  // not said already
    fail_output(Error(ExitCode::kIo, std::string("stdout: write failed") +
                                         (flush_errno ? std::string(": ") + std::strerror(flush_errno) : "") +
                                         " (the report or data there is incomplete)"));
    if (report_written && io::replaces_file(ctx.out_report)) {
      try {
        write_report();
      } catch (const Error&) {  // written a moment ago; the exit code says enough
      }
    }
  }
  if (!error.empty()) std::fprintf(stderr, "rvtemporal: %s: %s\n", label, one_line(error).c_str());
  if (!text.empty() && (ctx.jsonl || ctx.text_to_stderr)) std::fputs(text.c_str(), stderr);
  if (report_written) spdlog::debug("report written to {}", ctx.out_report);
  spdlog::info("{}: exit {} ({}) after {:.1f} ms", ctx.command, to_int(code), exit_code_name(code),
               ms_since(g_start));
  return to_int(code);
}

const CLI::App* find_subcommand(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

// The report context of a command line the parser refused: its options were not all
// parsed, so --json, --jsonl, --out-report and the command are read off argv as written.
Context refused_context(const CLI::App& app, int argc, char** argv) {
  Context ctx;
  int report_at = 0;  // argv index of --out-report's value
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") ctx.json = true;
    if (arg == "--jsonl") ctx.jsonl = true;
    if (arg == "--out-report" && i + 1 < argc) {
      ctx.out_report = argv[i + 1];
      report_at = i + 1;
    }
    if (arg.rfind("--out-report=", 0) == 0) ctx.out_report = arg.substr(std::string("--out-report=").size());
    const CLI::App* sub = ctx.command.empty() ? find_subcommand(app, arg) : nullptr;
    if (sub != nullptr) {
      ctx.command = arg;
      if (i + 1 < argc && find_subcommand(*sub, argv[i + 1]) != nullptr) ctx.command += " " + std::string(argv[i + 1]);
    }
  }
  // Not into stdout where --json or --jsonl prints it there already.
  if ((ctx.json || ctx.jsonl) && io::names_stdout(ctx.out_report)) ctx.out_report.clear();
  // Not over a file the command line names otherwise (an input, say): refuse_suspect_values's
  // check, with every word, and what follows '=' in it (--blob=m.rvne), standing in for a path.
  for (int i = 1; i < argc && !ctx.out_report.empty(); ++i) {
    if (i == report_at) continue;
    const std::string word = argv[i];
    const std::size_t eq = word.find('=');
    if (io::same_file(ctx.out_report, word) ||
        (eq != std::string::npos && word.rfind("--out-report=", 0) != 0 && io::same_file(ctx.out_report, word.substr(eq + 1)))) {
      ctx.out_report.clear();
    }
  }
  return ctx;
}

// The first word that is neither an option nor a global option's value: where the command goes.
std::string command_word(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word.empty() || word[0] != '-') return word;
    if (word.find('=') != std::string::npos) continue;  // --isa=avx2
    const CLI::Option* opt = app.get_option_no_throw(word);
    const bool short_flags = word.size() > 1 && word[1] != '-';  // -vv, -q
    if (opt == nullptr && !short_flags) return "";  // not a global option: the parser's message says which
    if (opt != nullptr && opt->get_items_expected() > 0) ++i;  // --isa avx2 bogus: skip avx2 (flags expect none)
  }
  return "";
}

// The parser's message, or for a command word that is no command, which commands there are.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  if (const std::string word = command_word(app, argc, argv); !word.empty() && find_subcommand(app, word) == nullptr) {
    return "unknown command '" + word + "' (commands: blob, forward, stream, bench, parity)";
  }
  return std::string(e.what()) + " (see --help)";
}

// Given options' values as (option name, value): the global ones, then the subcommands', each
// in the order the options were declared.
std::vector<std::pair<std::string, std::string>> given_values(const CLI::App& app) {
  std::vector<std::pair<std::string, std::string>> values;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_type_size() == 0 || opt->get_expected_min() == 0) continue;  // a flag: no value
    for (const std::string& v : opt->results()) values.emplace_back(opt->get_name(), v);
  }
  for (const CLI::App* sub : app.get_subcommands()) {
    for (auto& item : given_values(*sub)) values.push_back(std::move(item));
  }
  return values;
}

// Values the parser accepts but no command should: an empty one ("$UNSET") is a mistake,
// not "option not given" (an empty --q would run on generated data); an output naming an
// input, or another output, would destroy it (and so would the report, when --out-report is one).
void refuse_suspect_values(const CLI::App& app, Context& ctx) {
  static const std::set<std::string> kReads = {"--q", "--k", "--v", "--blob", "--frames", "--compare", "file", "files"};
  static const std::set<std::string> kWrites = {"--out", "--out-report", "--plot", "--plot-dir"};
  auto values = given_values(app);
  for (const auto& [name, dir] : std::vector(values)) {  // the files parity writes there, each an output
    if (name != "--plot-dir" || dir.empty()) continue;
    for (const char* file : parity::kPlotFiles) values.emplace_back(name, dir + "/" + file);
  }
  for (std::size_t w = 0; w < values.size(); ++w) {  // first: it decides whether the report may be written
    if (!kWrites.contains(values[w].first)) continue;
    for (std::size_t o = 0; o < values.size(); ++o) {
      const bool other_write = kWrites.contains(values[o].first) && o != w;
      if ((!kReads.contains(values[o].first) && !other_write) || !io::same_file(values[w].second, values[o].second)) continue;
      const std::string& other = values[o].first;
      if (values[w].first == "--out-report" || other == "--out-report") ctx.out_report.clear();  // not over it either
      throw_usage(values[w].first + " " + values[w].second + ": the same file as " +
                  (other[0] == '-' ? other : "the " + other + " argument") +
                  (other_write ? " (both outputs)" : ", an input: it would be overwritten"));
    }
  }
  for (const auto& [name, value] : values) {
    if (value.empty()) throw_usage(name + ": empty value");
  }
  // An output that is stdout itself carries data there: the text report goes to stderr, and
  // a report or records on stdout would be mixed into the data.
  std::string on_stdout;  // the output that writes stdout
  for (const auto& [name, value] : values) {
    if (!kWrites.contains(name) || !io::names_stdout(value)) continue;
    std::string other = !on_stdout.empty() ? on_stdout : ctx.json ? "--json" : ctx.jsonl ? "--jsonl" : "";
    if (!other.empty()) {
      if (io::names_stdout(ctx.out_report)) ctx.out_report.clear();  // the refusal's report: not into stdout too
      throw_usage(name + " " + value + " and " + other + " both want stdout; pick one");
    }
    on_stdout = name + " " + value;
    ctx.text_to_stderr = true;
  }
  // An output that cannot be written is refused now, not after the work (a bench run of
  // minutes); --plot-dir is made, and tried, by parity itself before its suites.
  for (const auto& [name, value] : values) {
    if (!kWrites.contains(name) || name == "--plot-dir") continue;
    try {
      io::check_writable(value);
    } catch (const Error&) {
      if (name == "--out-report") ctx.out_report.clear();  // the report cannot go there either
      throw;
    }
  }
}

// A result whose output holds NaN or inf says so on stderr too: from finite inputs they mean
// scores or values overflowed (float32, or past 65504 in a float16 cache), which the exit code
// does not show.
void warn_nonfinite_output(const Json& result, bool nonfinite_inputs_allowed) {
  if (!result.is_object() || !result.contains("output") || !result["output"].contains("stats")) return;
  const Json& stats = result["output"]["stats"];
  const auto nan = stats.value("nan_count", std::uint64_t{0}), inf = stats.value("inf_count", std::uint64_t{0});
  if (nan + inf == 0) return;
  spdlog::warn("the output holds {} NaN and {} inf of {} values (output.stats); {}", nan, inf,
               stats.value("count", std::uint64_t{0}),
               nonfinite_inputs_allowed ? "--allow-nonfinite let non-finite inputs through, or finite ones overflowed"
                                        : "the inputs were finite: scores or values overflowed float32 (or float16 in "
                                          "an f16 cache)");
}

// Whether a flag of the chosen subcommand (or a global one) was given.
bool flag_given(const CLI::App& app, const std::string& name) {
  const CLI::Option* opt = app.get_option_no_throw(name);
  if (opt != nullptr && opt->count() > 0) return true;
  for (const CLI::App* sub : app.get_subcommands()) {
    if (flag_given(*sub, name)) return true;
  }
  return false;
}

// -v: what runs (log_start) and how it ended (finish); -vv: every option value as parsed.
void log_start(const CLI::App& app, const Context& ctx) {
  const Json host = report::host_json();
  spdlog::info("{}: rvtemporal {} ({}, {}), isa {} (best {}), {} cores", ctx.command, build_info().version,
               build_info().git_commit, build_info().build_type, host.value("isa", ""), host.value("isa_best", ""),
               host.value("cores", 0u));
  for (const auto& [name, value] : given_values(app)) spdlog::debug("option {} = '{}'", name, value);
}

}  // namespace
}  // namespace rvt::cli

int main(int argc, char** argv) {
  using namespace rvt;
  using namespace rvt::cli;

  io::remove_temp_files_on_signals();
  // A reader that goes away (`| head`) is a failed write to report (exit 4), not a death by
  // SIGPIPE with no word and a report file that says "ok": see finish().
  ::signal(SIGPIPE, SIG_IGN);
  start_logging();
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
    return finish(refused_context(app, argc, argv), ExitCode::kUsage, Json::object(), "",
                  usage_message(app, e, argc, argv), "usage error");
  } catch (const std::exception& e) {
    // CLI11 2.1 converts flag values (--causal=N) with std::stoll and lets its
    // std::out_of_range / std::invalid_argument escape: still a bad command line.
    return finish(refused_context(app, argc, argv), ExitCode::kUsage, Json::object(), "",
                  std::string("an option value is not a valid number (") + e.what() + ") (see --help)", "usage error");
  }

  set_log_level(verbose, quiet, log_level);
  try {
    refuse_suspect_values(app, ctx);
    // --isa works through RVT_ISA, which every kernel front end resolves (and reports).
    if (!isa.empty()) {
      (void)kernels::parse_isa(isa, "--isa");  // a bad name is the option's, not RVT_ISA's
      ::setenv("RVT_ISA", isa.c_str(), 1);
    }
    kernels::resolve_isa(kernels::Isa::kAuto);  // refuse an unknown or unsupported ISA up front
    log_start(app, ctx);
    Outcome out = ctx.run();
    warn_nonfinite_output(out.result, flag_given(app, "--allow-nonfinite"));
    return finish(ctx, out.code, out.result, out.text, out.error);
  } catch (const Error& e) {
    return finish(ctx, e.code(), Json::object(), "", e.what());
  } catch (const std::bad_alloc& e) {
    return finish(ctx, ExitCode::kBadInput, Json::object(), "", "out of memory: the input is too large" + out_of_memory_note(e));
  } catch (const std::exception& e) {
    return finish(ctx, ExitCode::kInternal, Json::object(), "", std::string("internal error: ") + e.what());
  }
}
