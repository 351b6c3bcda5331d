#include "rvt/jobs/inputs.hpp"

#include <cmath>

#include "rvt/attention/config.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/core/text.hpp"
#include "rvt/io/npy.hpp"

namespace rvt::jobs {
namespace {

report::Json shape_json(const Tensor& t) { return report::Json::array({t.seq(), t.heads(), t.dim()}); }

// "[3, 1, 2]": the C-order position of flat index `flat` in `shape`.
std::string position_str(std::size_t flat, const std::vector<std::size_t>& shape) {
  std::vector<std::size_t> pos(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    pos[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string s = "[";
  for (std::size_t d = 0; d < pos.size(); ++d) s += (d ? ", " : "") + std::to_string(pos[d]);
  return s + "]";
}

Tensor read_input(const std::string& path, bool allow_nonfinite) {
  io::NpyArray a = io::read_npy(path);
  if (a.shape.size() == 3 && !allow_nonfinite) require_finite(a.values, a.shape, path, a.source_dtype);
  return io::npy_tensor(std::move(a), path);  // refuses another rank, naming the shape
}

}  // namespace

void require_finite(std::span<const float> values, const std::vector<std::size_t>& shape,
                    const std::string& name, const std::string& source_dtype) {
  const std::optional<std::size_t> at = first_nonfinite(values);
  if (!at) return;
  const float v = values[*at];
  const char* text = std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  const bool from_f64 = !std::isnan(v) && source_dtype == "<f8";
  throw_bad_input(name + ": non-finite value " + text + " at " + position_str(*at, shape) + " (element " +
                  std::to_string(*at) + " of " + std::to_string(values.size()) +
                  (from_f64 ? ", a float64 inf or beyond the f32 range" : "") +
                  "); pass --allow-nonfinite to propagate it");
}

// fn(), its rvt::Error (if any) ending in " (note)": the options or files behind a message that
// speaks only of shapes.
template <typename Fn>
auto noting(const std::string& note, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + " (" + note + ")");
  }
}

Qkv load_inputs(const InputSpec& spec, unsigned threads) {
  if (!spec.from_files()) {  // a size too large: say which options asked for it
    return noting("--seq " + std::to_string(spec.seq) + ", --q-heads " + std::to_string(spec.q_heads) +
                      ", --kv-heads " + std::to_string(spec.kv_heads) + ", --dim " + std::to_string(spec.dim),
                  [&] { return generate_qkv(spec.gen, spec.seq, spec.q_heads, spec.kv_heads, spec.dim, spec.seed, threads); });
  }
  if (spec.q_path.empty() || spec.k_path.empty() || spec.v_path.empty()) {
    throw_usage("--q, --k and --v must be given together");
  }
  Tensor q = read_input(spec.q_path, spec.allow_nonfinite);
  Tensor k = read_input(spec.k_path, spec.allow_nonfinite);
  Tensor v = read_input(spec.v_path, spec.allow_nonfinite);
  // check_qkv speaks of Q/K/V: say which files those are.
  noting("--q " + spec.q_path + ", --k " + spec.k_path + ", --v " + spec.v_path, [&] { return attn::check_qkv(q, k, v); });
  return Qkv{std::move(q), std::move(k), std::move(v)};
}

report::Json inputs_json(const InputSpec& spec, const Qkv& qkv) {
  report::Json j;
  if (spec.from_files()) {
    j["source"] = "files";
    j["q_path"] = spec.q_path;
    j["k_path"] = spec.k_path;
    j["v_path"] = spec.v_path;
  } else {
    j["source"] = "generated";
    j["generator"] = gen_kind_name(spec.gen);
    j["seed"] = hex64(spec.seed);
  }
  j["q_shape"] = shape_json(qkv.q);
  j["k_shape"] = shape_json(qkv.k);
  j["v_shape"] = shape_json(qkv.v);
  return j;
}

Tensor load_frames(const FrameSpec& spec, std::size_t input_dim, unsigned threads) {
  if (spec.path.empty()) {
    if (spec.count == 0) throw_usage("give --frames FILE.npy or --gen-frames T (T >= 1)");
    return generate_frames(spec.gen, spec.count, input_dim, spec.seed, threads);
  }
  if (spec.count != 0) throw_usage("--frames and --gen-frames are exclusive: give one");
  io::NpyArray a = io::read_npy(spec.path);
  if (a.shape.size() != 2) {
    throw_bad_input(spec.path + ": frames must be a 2-d [T][input_dim] array, got shape " +
                    io::shape_str(a.shape));
  }
  if (a.shape[1] != input_dim) {
    throw_bad_input(spec.path + ": frames have input_dim " + std::to_string(a.shape[1]) +
                    " but the model expects " + std::to_string(input_dim));
  }
  if (a.shape[0] == 0) throw_bad_input(spec.path + ": no frames (T = 0)");
  if (!spec.allow_nonfinite) require_finite(a.values, a.shape, spec.path, a.source_dtype);
  return Tensor(a.shape[0], 1, input_dim, std::move(a.values));
}

std::vector<std::size_t> parse_index_list(const std::string& text, const std::string& what) {
  std::vector<std::size_t> out;
  if (text.empty()) return out;
  for (const std::string& item : split(text, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos) {
      throw_usage(what + ": '" + text + "' is not a comma-separated list of non-negative integers");
    }
    if (item.size() > 18) throw_usage(what + ": '" + item + "' is too large (more than 18 digits)");
    out.push_back(static_cast<std::size_t>(std::stoull(item)));
  }
  return out;
}

}  // namespace rvt::jobs
