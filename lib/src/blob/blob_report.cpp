#include "rvt/blob/blob_report.hpp"

#include <cstdio>
#include <span>

#include "rvt/core/hash.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/file.hpp"

namespace rvt::blob {
namespace {

using report::Json;

}  // namespace

Json header_json(const Header& h) {
  Json j;
  j["magic"] = hex32(h.magic);
  j["version"] = h.version;
  j["flags"] = h.flags;
  j["dtype"] = dtype_name(h.dtype());
  j["reserved"] = h.reserved;
  j["input_dim"] = h.shape.input_dim;
  j["n_q_heads"] = h.shape.q_heads;
  j["n_kv_heads"] = h.shape.kv_heads;
  j["head_dim"] = h.shape.head_dim;
  j["n_layers"] = h.shape.n_layers;
  j["n_classes"] = h.shape.n_classes;
  j["weights_len_bytes"] = h.weights_len;
  return j;
}

namespace {

// A blob file's bytes, once its header and size pass the first checks (too short, magic,
// version, length): a file that fails them, a stray multi-gigabyte one say, is not read whole.
std::vector<std::uint8_t> read_blob_bytes(const std::string& path) {
  const io::FileHead head = io::read_head(path, kHeaderBytes);
  try {
    (void)check_header(head.bytes, head.file_bytes);
  } catch (const BlobError& e) {
    throw BlobError(e.check(), path + ": " + e.what());
  }
  return io::read_file(path, kMaxFileBytes);
}

}  // namespace

Json init_file(const std::string& path, const Shape& shape, std::uint64_t seed, DType dtype, bool overwrite) {
  const std::vector<std::uint8_t> bytes = init_random_blob(shape, seed, dtype);
  io::write_file_atomic(path, bytes, overwrite);
  const Container written = check_container(bytes);
  Json j;
  j["path"] = path;
  j["seed"] = hex64(seed);
  j["file_bytes"] = bytes.size();
  j["header"] = header_json(written.header);
  j["crc"] = hex32(written.stored_crc);
  j["xxh3_file"] = hex64(xxh3_64(bytes));
  return j;
}

std::string init_text(const Json& j) {
  return "wrote " + j["path"].get<std::string>() + " (" + std::to_string(j["file_bytes"].get<std::uint64_t>()) +
         " bytes, " + j["header"]["dtype"].get<std::string>() + ", crc " + j["crc"].get<std::string>() + ", xxh3 " +
         j["xxh3_file"].get<std::string>() + ")\n";
}

Blob read_blob_file(const std::string& path, std::uint64_t* xxh3_file) {
  std::vector<std::uint8_t> bytes = read_blob_bytes(path);
  if (xxh3_file) *xxh3_file = xxh3_64(bytes);
  try {
    return parse(std::move(bytes));  // the file's memory becomes the payload's
  } catch (const BlobError& e) {
    throw BlobError(e.check(), path + ": " + e.what());
  }
}

Json inspect_file(const std::string& path) {
  std::uint64_t xxh3_file = 0;
  const Blob blob = read_blob_file(path, &xxh3_file);
  const Header& h = blob.header;
  Json j;
  j["path"] = path;
  j["file_bytes"] = std::uint64_t{kMinFileBytes} + h.weights_len;  // parse checked the length
  j["header"] = header_json(h);
  j["payload_bytes"] = blob.payload.size();
  j["element_count"] = blob.payload.size() / dtype_bytes(h.dtype());
  j["crc_stored"] = hex32(blob.stored_crc);
  j["crc_computed"] = hex32(blob.stored_crc);  // parse refuses a file whose CRC differs
  j["xxh3_payload"] = hex64(xxh3_64(blob.payload));
  j["xxh3_file"] = hex64(xxh3_file);

  const std::uint64_t want = layout_element_count(h.shape);
  Json loadable;
  try {
    check_loadable(blob);
    loadable = Json{{"ok", true}, {"check", "ok"}, {"message", ""}};
  } catch (const BlobError& e) {
    loadable = Json{{"ok", false}, {"check", check_name(e.check())}, {"message", e.what()}};
  }
  j["layout_element_count"] = want;
  j["loadable"] = loadable;

  // Every slot the payload holds, then the first one it does not (stats null); the slots after
  // that are only counted: a 28-byte header may name 262,141 of them.
  Json tensors = Json::array();
  std::uint64_t not_listed = 0;
  bool past_payload_listed = false;
  const std::uint64_t elem_bytes = dtype_bytes(h.dtype()), elements = blob.payload.size() / elem_bytes;
  for (const TensorSlot& s : payload_layout(h.shape)) {
    const bool held = s.offset_elements <= elements && s.count() <= elements - s.offset_elements;
    if (!held && past_payload_listed) {
      ++not_listed;
      continue;
    }
    past_payload_listed = past_payload_listed || !held;
    Json t;
    t["layer"] = s.layer < 0 ? Json(nullptr) : Json(s.layer);
    t["name"] = s.name;
    t["shape"] = Json::array({s.rows, s.cols});
    t["offset_bytes"] = s.offset_elements > (UINT64_MAX - kHeaderBytes) / elem_bytes
                            ? UINT64_MAX  // saturates, like the layout's offsets
                            : kHeaderBytes + s.offset_elements * elem_bytes;
    t["stats"] = held ? report::stats_json(summarize(payload_floats(blob, s.offset_elements, s.count())))
                      : Json(nullptr);  // the payload is shorter than the layout formula says
    tensors.push_back(std::move(t));
  }
  j["tensors"] = std::move(tensors);
  j["tensors_not_listed"] = not_listed;
  return j;
}

std::string inspect_text(const Json& j) {
  const Json& h = j["header"];
  std::string out;
  auto line = [&](const std::string& key, const std::string& value) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-16s %s\n", key.c_str(), value.c_str());
    out += buf;
  };
  line("file", j["path"].get<std::string>() + " (" + std::to_string(j["file_bytes"].get<std::uint64_t>()) + " bytes)");
  line("magic", h["magic"].get<std::string>());
  line("version", std::to_string(h["version"].get<int>()));
  line("dtype", h["dtype"].get<std::string>() + " (flags " + std::to_string(h["flags"].get<int>()) + ")");
  line("shape", "input_dim " + std::to_string(h["input_dim"].get<int>()) + ", q_heads " +
                    std::to_string(h["n_q_heads"].get<int>()) + ", kv_heads " +
                    std::to_string(h["n_kv_heads"].get<int>()) + ", head_dim " +
                    std::to_string(h["head_dim"].get<int>()) + ", layers " +
                    std::to_string(h["n_layers"].get<int>()) + ", classes " +
                    std::to_string(h["n_classes"].get<int>()));
  line("payload", std::to_string(j["payload_bytes"].get<std::uint64_t>()) + " bytes, " +
                      std::to_string(j["element_count"].get<std::uint64_t>()) + " elements (layout needs " +
                      std::to_string(j["layout_element_count"].get<std::uint64_t>()) + ")");
  line("crc", "stored " + j["crc_stored"].get<std::string>() + ", computed " +
                  j["crc_computed"].get<std::string>());
  line("xxh3 payload", j["xxh3_payload"].get<std::string>());
  line("xxh3 file", j["xxh3_file"].get<std::string>());
  line("loadable", j["loadable"]["ok"].get<bool>() ? "yes" : "no: " + j["loadable"]["message"].get<std::string>());
  out += "\n";
  char buf[200];
  std::snprintf(buf, sizeof buf, "%-18s %-11s %10s %12s %12s %12s %12s %6s\n", "tensor", "shape",
                "offset", "min", "max", "mean", "std", "nonfin");
  out += buf;
  for (const Json& t : j["tensors"]) {
    const std::string name =
        t["layer"].is_null() ? t["name"].get<std::string>()
                             : "layer" + std::to_string(t["layer"].get<int>()) + "." + t["name"].get<std::string>();
    const std::string shape =
        std::to_string(t["shape"][0].get<std::uint64_t>()) + "x" + std::to_string(t["shape"][1].get<std::uint64_t>());
    if (t["stats"].is_null()) {
      std::snprintf(buf, sizeof buf, "%-18s %-11s %10llu %12s\n", name.c_str(), shape.c_str(),
                    static_cast<unsigned long long>(t["offset_bytes"].get<std::uint64_t>()), "(missing)");
    } else {
      const Json& s = t["stats"];
      // null where the tensor holds no finite value
      auto stat = [&](const char* key) { return s[key].is_null() ? std::string("-") : format_double("%.6g", s[key].get<double>()); };
      std::snprintf(buf, sizeof buf, "%-18s %-11s %10llu %12s %12s %12s %12s %6llu\n", name.c_str(),
                    shape.c_str(), static_cast<unsigned long long>(t["offset_bytes"].get<std::uint64_t>()),
                    stat("min").c_str(), stat("max").c_str(), stat("mean").c_str(), stat("std").c_str(),
                    static_cast<unsigned long long>(s["nan_count"].get<std::uint64_t>() + s["inf_count"].get<std::uint64_t>()));
    }
    out += buf;
  }
  if (const auto n = j["tensors_not_listed"].get<std::uint64_t>(); n > 0) {
    out += "(and " + std::to_string(n) + " more slots past the payload, not listed)\n";
  }
  return out;
}

Verdict verify_file(const std::string& path, std::optional<std::uint64_t> expect_xxh3) {
  Verdict v;
  v.path = path;
  io::FileHead head;
  std::vector<std::uint8_t> bytes;
  try {
    head = io::read_head(path, kHeaderBytes);
    if (head.file_bytes <= kMaxFileBytes) bytes = io::read_file(path, kMaxFileBytes);
  } catch (const Error& e) {
    v.code = ExitCode::kIo;
    v.check = "io";
    v.message = e.what();
    return v;
  }
  if (head.file_bytes > kMaxFileBytes) {  // longer than any blob: judged by its header, not read
    v.detail = Json{{"file_bytes", head.file_bytes}, {"xxh3_file", nullptr}};
    try {
      (void)check_header(head.bytes, head.file_bytes);  // fails, on the length at the latest
    } catch (const BlobError& e) {
      v.code = ExitCode::kCheckFailed;
      v.check = check_name(e.check());
      v.message = path + ": " + e.what();
      return v;
    }
  }
  const std::uint64_t digest = xxh3_64(bytes);
  v.detail["file_bytes"] = bytes.size();
  v.detail["xxh3_file"] = hex64(digest);
  try {
    const Blob blob = parse(std::move(bytes));  // the file's memory becomes the payload's
    v.detail["header"] = header_json(blob.header);
    v.detail["crc"] = hex32(blob.stored_crc);
    check_loadable(blob);
  } catch (const BlobError& e) {
    v.code = ExitCode::kCheckFailed;
    v.check = check_name(e.check());
    v.message = path + ": " + e.what();
    return v;
  }
  if (expect_xxh3 && *expect_xxh3 != digest) {
    v.code = ExitCode::kCheckFailed;
    v.check = "digest_mismatch";
    v.message = path + ": xxh3 " + hex64(digest) + " differs from the expected " + hex64(*expect_xxh3);
  }
  return v;
}

ExitCode combine(const std::vector<Verdict>& verdicts) {
  ExitCode code = ExitCode::kOk;
  for (const Verdict& v : verdicts) {
    if (v.code == ExitCode::kIo) return ExitCode::kIo;
    if (v.code != ExitCode::kOk) code = v.code;
  }
  return code;
}

Json verdicts_json(const std::vector<Verdict>& verdicts) {
  Json files = Json::array();
  std::size_t valid = 0;
  for (const Verdict& v : verdicts) {
    Json f;
    f["path"] = v.path;
    f["valid"] = v.code == ExitCode::kOk;
    f["check"] = v.check;
    f["message"] = v.message;
    f["exit_code"] = to_int(v.code);
    f["detail"] = v.detail.is_null() ? Json::object() : v.detail;
    files.push_back(std::move(f));
    if (v.code == ExitCode::kOk) ++valid;
  }
  Json j;
  j["files_total"] = verdicts.size();
  j["files_valid"] = valid;
  j["files"] = std::move(files);
  return j;
}

std::string verdicts_text(const std::vector<Verdict>& verdicts) {
  std::string out;
  for (const Verdict& v : verdicts) {
    if (v.code == ExitCode::kOk) {
      out += "ok      " + v.path + " (xxh3 " + v.detail["xxh3_file"].get<std::string>() + ")\n";
    } else {
      out += "FAILED  " + v.message + " [" + v.check + "]\n";
    }
  }
  return out;
}

}  // namespace rvt::blob
