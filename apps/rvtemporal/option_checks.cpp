// The count options' validators (cli.hpp). Apart from main.cpp so that the fuzz target
// fuzz_cli_numbers, which compiles attention_options.cpp, can link them without the app's main.
#include <cstdint>
#include <string>

#include "cli.hpp"

namespace rvt::cli {

namespace {

// Why `value` is not a count option's value (plain decimal digits, at most 18); "" if it is.
std::string count_error(const std::string& value) {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
    return "'" + value + "' is not a non-negative integer";
  }
  if (value.size() > 18) return "'" + value + "' is too large";
  return "";
}

}  // namespace

const CLI::Validator& count_check() {
  static const CLI::Validator check([](std::string& value) { return count_error(value); }, "COUNT");
  return check;
}

CLI::Validator count_check(std::uint64_t max, const std::string& why) {
  return CLI::Validator(
      [max, why](std::string& value) {
        std::string error = count_error(value);
        if (error.empty() && std::stoull(value) > max) error = "'" + value + "' is more than " + std::to_string(max) + why;
        return error;
      },
      "COUNT");
}

}  // namespace rvt::cli
