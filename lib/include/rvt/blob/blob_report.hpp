// What `blob inspect` and `blob verify` report about a file, as JSON and as text.
// The CLI only wires options to these calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rvt/blob/blob.hpp"
#include "rvt/report/report.hpp"

namespace rvt::blob {

// `blob init`: writes init_random_blob's file to `path` (atomically; refused where the file
// exists and !overwrite) and describes it: path, seed, file_bytes, header, crc, xxh3_file.
// A shape that fails a check, or whose payload the u32 weights_len cannot hold, is a
// BlobError or rvt::Error(kBadInput) before anything is written.
report::Json init_file(const std::string& path, const Shape& shape, std::uint64_t seed, DType dtype, bool overwrite);
std::string init_text(const report::Json& written);

// Reads and parses a blob file (held once: parse of the moved file buffer). Throws
// rvt::Error(kIo) for a file that cannot be read, BlobError naming the file for a failed
// check. xxh3_file, if given, receives the XXH3-64 of the whole file.
Blob read_blob_file(const std::string& path, std::uint64_t* xxh3_file = nullptr);

// Full description of a readable, container-valid blob: header, sizes, stored vs
// computed CRC, digests, and per-tensor statistics. Throws rvt::Error for a file
// that cannot be read (kIo) or fails a container check (BlobError, kBadInput).
report::Json inspect_file(const std::string& path);
std::string inspect_text(const report::Json& inspected);

// One file's verdict. code: kOk, kCheckFailed (read fine, failed a check) or kIo.
struct Verdict {
  std::string path;
  ExitCode code = ExitCode::kOk;
  std::string check = "ok";  // check_name(), "digest_mismatch" or "io"
  std::string message;
  report::Json detail;       // header and digests when the file could be parsed
};

Verdict verify_file(const std::string& path, std::optional<std::uint64_t> expect_xxh3);

// The overall exit code of several verdicts: kIo if any file could not be read,
// else kCheckFailed if any failed, else kOk.
ExitCode combine(const std::vector<Verdict>& verdicts);
report::Json verdicts_json(const std::vector<Verdict>& verdicts);
std::string verdicts_text(const std::vector<Verdict>& verdicts);

report::Json header_json(const Header& header);

}  // namespace rvt::blob
