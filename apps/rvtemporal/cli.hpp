// Shared plumbing of the rvtemporal CLI: global options, the result a subcommand
// hands back, and how it reaches stdout / --out-report. Subcommands are thin: they
// parse options and call the library.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "rvt/core/error.hpp"
#include "rvt/report/report.hpp"

namespace rvt::cli {

using report::Json;

// What a subcommand produced: the exit code, the JSON result, and the text a
// person sees on stdout when --json is not given.
struct Outcome {
  ExitCode code = ExitCode::kOk;
  Json result = Json::object();
  std::string text;
  std::string error;  // one line for stderr when code is not kOk (a failed check, say)
};

struct Context {
  bool json = false;           // machine report on stdout instead of text
  bool jsonl = false;          // stdout carries JSONL records (stream --jsonl): every ending, failures
                               // too, is the report as one line, so a follower always gets it
  std::string out_report;      // also write the report to this file (atomically)
  bool text_to_stderr = false; // an output file is stdout itself (--out /dev/stdout): the text goes apart
  std::string command;         // "blob inspect", ... set by the chosen subcommand
  std::function<Outcome()> run;
};

// Each subcommand file exports one of these.
void register_blob(CLI::App& root, Context& ctx);
void register_forward(CLI::App& root, Context& ctx);
void register_stream(CLI::App& root, Context& ctx);
void register_bench(CLI::App& root, Context& ctx);
void register_parity(CLI::App& root, Context& ctx);

// Marks `sub` as the chosen command when it is parsed.
void bind(CLI::App* sub, Context& ctx, const std::string& name, std::function<Outcome()> run);

// For a command's `--format`: "json" is the report envelope on stdout, as --json; set while the
// command line is parsed, so that the checks before the run see it (two outputs on stdout).
inline std::function<void(const std::string&)> json_on_stdout(Context& ctx) {
  return [&ctx](const std::string& format) {
    if (format == "json") ctx.json = true;
  };
}

// A job's notice (a long dense pass, say) as a warning on stderr, "warning: <command>: <line>".
std::function<void(const std::string&)> warn_notice(const std::string& command);

// Options given on the command line that the run does not use, and why.
struct UnusedOptions {
  std::vector<std::string> given;
  std::string why;
};
// For count options (lengths, heads, threads; option_checks.cpp): plain decimal digits, at most 18 of them.
// CLI11 would otherwise wrap "-1" or saturate "99999999999999999999" into a huge size_t.
const CLI::Validator& count_check();
// The same for a count stored in a narrower field: at most `max`, `why` saying why (CLI11's
// own message for 100000 into a uint16_t is "Could not convert").
CLI::Validator count_check(std::uint64_t max, const std::string& why);
// --threads: a count that fits an unsigned.
inline CLI::Validator threads_check() { return count_check(std::numeric_limits<unsigned>::max(), " (threads)"); }

// Whether option `name` is on cmd's command line: a count or size given as 0 is still given,
// so 0 never stands for "not given".
inline bool given(const CLI::App& cmd, const std::string& name) { return cmd.get_option(name)->count() > 0; }
// Option `name`'s value where it is on cmd's command line, else `otherwise` (a preset's).
inline std::size_t given_or(const CLI::App& cmd, const std::string& name, std::size_t value, std::size_t otherwise) {
  return given(cmd, name) ? value : otherwise;
}
// Those among `names` given on cmd's command line.
inline UnusedOptions unused_options(const CLI::App& cmd, const std::vector<std::string>& names, std::string why) {
  UnusedOptions u{{}, std::move(why)};
  for (const std::string& name : names) {
    if (given(cmd, name)) u.given.push_back(name);
  }
  return u;
}
// One warning line naming them, "warning: forward: --seq, --globals have no effect <why>";
// nothing when none was given.
void warn_unused(const UnusedOptions& u, const std::string& command);

}  // namespace rvt::cli
