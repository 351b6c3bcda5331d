// `rvtemporal blob init | inspect | verify`: RVNE weight blobs.
#include <spdlog/spdlog.h>

#include <optional>

#include "cli.hpp"
#include "rvt/blob/blob.hpp"
#include "rvt/blob/blob_report.hpp"
#include "rvt/core/hash.hpp"

namespace rvt::cli {
namespace {

struct InitOptions {
  std::string out;
  std::string seed = fmt::format("0x{:X}", blob::kDefaultSeed);
  std::string dtype = "f32";
  blob::Shape shape;
  bool force = false;
};

Outcome run_init(const InitOptions& o) {
  const std::uint64_t seed = parse_u64(o.seed, "--seed");
  if (seed == 0) spdlog::warn("--seed 0: the xorshift stream stays 0, so every weight is -0.1 (as in the reference)");
  const blob::DType dtype = blob::parse_dtype(o.dtype);
  Outcome out;
  try {
    out.result = blob::init_file(o.out, o.shape, seed, dtype, o.force);
  } catch (const Error& e) {
    // The shape came from options: a shape check or a payload too large for the u32
    // weights_len field is a bad option value (the file's own errors are io, exit 4).
    if (e.code() != ExitCode::kBadInput) throw;
    throw_usage(std::string("blob shape: ") + e.what());
  }
  out.text = blob::init_text(out.result);
  return out;
}

Outcome run_inspect(const std::string& path) {
  Outcome out;
  out.result = blob::inspect_file(path);
  out.text = blob::inspect_text(out.result);
  return out;
}

Outcome run_verify(const std::vector<std::string>& paths, const std::string& expect) {
  std::optional<std::uint64_t> digest;
  if (!expect.empty()) digest = parse_hex64_digest(expect, "--expect-xxh3");
  std::vector<blob::Verdict> verdicts;
  for (const std::string& p : paths) verdicts.push_back(blob::verify_file(p, digest));
  Outcome out;
  out.code = blob::combine(verdicts);
  out.result = blob::verdicts_json(verdicts);
  out.text = blob::verdicts_text(verdicts);
  if (out.code != ExitCode::kOk) {
    const std::size_t bad = verdicts.size() - out.result["files_valid"].get<std::size_t>();
    out.error = std::to_string(bad) + " of " + std::to_string(verdicts.size()) + " file(s) failed verification";
  }
  return out;
}

}  // namespace

void register_blob(CLI::App& root, Context& ctx) {
  CLI::App* blob_cmd = root.add_subcommand("blob", "RVNE weight blobs: init, inspect, verify");
  blob_cmd->require_subcommand(1);

  auto init = std::make_shared<InitOptions>();
  CLI::App* init_cmd = blob_cmd->add_subcommand("init", "Write a deterministic seeded blob");
  init_cmd->add_option("--out,-o", init->out, "Output file")->required();
  init_cmd->add_option("--seed", init->seed, "Seed, decimal or 0x hex")->capture_default_str();
  init_cmd->add_option("--dtype", init->dtype, "f32 | f16")->capture_default_str();
  const CLI::Validator header_field = count_check(0xFFFF, " (the header's shape fields are 16-bit)");
  init_cmd->add_option("--input-dim", init->shape.input_dim, "Input feature size")->check(header_field)->capture_default_str();
  init_cmd->add_option("--q-heads", init->shape.q_heads, "Query heads")->check(header_field)->capture_default_str();
  init_cmd->add_option("--kv-heads", init->shape.kv_heads, "Key/value heads")->check(header_field)->capture_default_str();
  init_cmd->add_option("--head-dim", init->shape.head_dim, "Head dimension")->check(header_field)->capture_default_str();
  init_cmd->add_option("--layers", init->shape.n_layers, "Layers")->check(header_field)->capture_default_str();
  init_cmd->add_option("--classes", init->shape.n_classes, "Classes")->check(header_field)->capture_default_str();
  init_cmd->add_flag("--force,-f", init->force, "Overwrite an existing output file");
  bind(init_cmd, ctx, "blob init", [init] { return run_init(*init); });

  auto inspect_path = std::make_shared<std::string>();
  CLI::App* inspect_cmd = blob_cmd->add_subcommand("inspect", "Describe a blob: header, CRC, digests, tensors");
  inspect_cmd->add_option("file", *inspect_path, "Blob file")->required();
  bind(inspect_cmd, ctx, "blob inspect", [inspect_path] { return run_inspect(*inspect_path); });

  auto verify_paths = std::make_shared<std::vector<std::string>>();
  auto expect = std::make_shared<std::string>();
  CLI::App* verify_cmd = blob_cmd->add_subcommand("verify", "Check blobs; exit 1 if any fails");
  verify_cmd->add_option("files", *verify_paths, "Blob files")->required();
  verify_cmd->add_option("--expect-xxh3", *expect, "Pin the XXH3-64 of the whole file (16 hex digits, as inspect prints it)");
  bind(verify_cmd, ctx, "blob verify", [verify_paths, expect] { return run_verify(*verify_paths, *expect); });
}

}  // namespace rvt::cli
