// Errors and the one exit-code table of the whole tool.
//
// Library code throws rvt::Error carrying the exit code the CLI must return, so the
// CLI never has to guess what kind of failure an exception was. Messages are short,
// lower-case, and name the file or option that is wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace rvt {

enum class ExitCode : int {
  kOk = 0,           // everything passed
  kCheckFailed = 1,  // a verify/parity gate failed: the input was read fine but did not pass
  kUsage = 2,        // bad command line: unknown option, bad value, missing argument
  kBadInput = 3,     // input data is malformed: format, checksum, shape, non-finite values
  kIo = 4,           // a file could not be read or written (missing, unreadable, directory, disk full)
  kUnsupported = 5,  // valid request this host or build cannot do (e.g. a forced ISA it lacks)
  kInternal = 9,     // a bug: an unexpected exception escaped
};

constexpr int to_int(ExitCode code) { return static_cast<int>(code); }
const char* exit_code_name(ExitCode code);

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Shorthands so call sites read as the kind of failure they report.
[[noreturn]] void throw_usage(const std::string& message);
[[noreturn]] void throw_bad_input(const std::string& message);
[[noreturn]] void throw_io(const std::string& message);

}  // namespace rvt
