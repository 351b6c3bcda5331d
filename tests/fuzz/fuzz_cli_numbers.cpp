// libFuzzer target: the CLI's numeric option parsing. The input is split on NUL/newline
// into tokens; the first token goes to parse_u64, parse_hex64_digest and parse_index_list, and all tokens
// go through the attention options (CLI11 parse, then input_spec / sparse_config /
// model_head_config). Contract: only rvt::Error (or, from the command line parse, CLI11's
// ParseError and std::invalid_argument / std::out_of_range, which main() maps to exit 2) escapes.
#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "attention_options.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/jobs/inputs.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> tokens;
  std::string cur;
  for (char c : text) {
    if (c == '\0' || c == '\n') {
      tokens.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  tokens.push_back(cur);

  RVT_FUZZ_ONLY_RVT_ERROR((void)rvt::parse_u64(tokens[0], "--seed"));
  RVT_FUZZ_ONLY_RVT_ERROR((void)rvt::parse_hex64_digest(tokens[0], "--expect-xxh3"));
  RVT_FUZZ_ONLY_RVT_ERROR((void)rvt::jobs::parse_index_list(tokens[0], "--globals"));

  RVT_FUZZ_ONLY_RVT_ERROR({
    CLI::App app{"fuzz"};
    rvt::cli::AttentionOptions o;
    rvt::cli::add_attention_options(&app, o);
    std::vector<std::string> args(tokens.rbegin(), tokens.rend());  // CLI11 parses a reversed vector
    bool parsed = true;
    try {
      app.parse(args);
    } catch (const CLI::ParseError&) {
      parsed = false;
    } catch (const std::invalid_argument&) {  // CLI11's std::stoll on flag values: main() maps
      parsed = false;                         // these to exit 2 (finding 1, docs/hardening.md)
    } catch (const std::out_of_range&) {
      parsed = false;
    }
    if (parsed) {
      (void)rvt::cli::input_spec(o);
      (void)rvt::cli::sparse_config(o);
      (void)rvt::cli::model_head_config(o, rvt::attn::Backend::kSparse);
    }
  });
  return 0;
}
