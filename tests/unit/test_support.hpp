// Shared helpers of the unit tests.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "rvt/attention/config.hpp"
#include "rvt/core/error.hpp"
#include "rvt/tensor/generate.hpp"
#include "rvt/tensor/tensor.hpp"

namespace rvt::test {

// The exit code of the rvt::Error that fn throws, kOk when it throws none.
template <typename F>
ExitCode code_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return ExitCode::kOk;
}

// data/ of the source tree (small fixtures and golden files).
inline std::string data_path(const std::string& rel) {
  const char* env = std::getenv("RVT_DATA_DIR");
  return std::string(env ? env : RVT_DATA_DIR) + "/" + rel;
}

// A fresh directory under the system temp dir, removed with everything in it on scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rvt_unit_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Largest elementwise |a - b| (in double), +inf where either holds a NaN; the shapes must match.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (!(a.shape() == b.shape())) throw std::invalid_argument("max_abs_diff: shapes differ");
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]);
    if (std::isnan(d)) return HUGE_VAL;
    m = std::max(m, d);
  }
  return m;
}

// Shapes and sparse patterns drawn at random (fixed seed), everything at once, where the
// grids of the other tests vary one thing at a time: GQA groups, odd dims, short and long
// sequences, windows past the tile pattern's, any block size, globals beyond the sequence,
// log-stride and landmarks on or off, both landmark modes.
struct RandomDraws {
  std::mt19937 rng;
  explicit RandomDraws(std::uint32_t seed) : rng(seed) {}
  std::size_t pick(std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); }

  struct Draw {
    Qkv x;
    attn::SparseConfig config;
    std::uint64_t seed;  // of the inputs: describe() says all that makes the case again
    std::string describe() const {
      const attn::SparseConfig& c = config;
      std::ostringstream s;
      s << "seq " << x.q.seq() << " heads " << x.q.heads() << ":" << x.k.heads() << " dim " << x.q.dim() << " window "
        << c.window << " block " << c.block_size << " causal " << c.causal << " log_stride " << c.log_stride
        << " landmarks " << c.landmarks << " " << attn::landmark_mode_name(c.landmark_mode) << " globals [";
      for (std::size_t g : c.globals) s << " " << g;
      s << " ] input seed " << seed;
      return s.str();
    }
  };
  // Inputs from the normal generator; causal only when `any_causal` is false.
  Draw next(std::size_t max_seq, std::size_t max_dim, bool any_causal) {
    const std::size_t kv_heads = pick(1, 3), group = pick(1, 3), dim = pick(1, max_dim);
    const std::size_t seq = pick(0, 3) == 0 ? pick(1, 40) : pick(41, max_seq);
    attn::SparseConfig c;
    c.window = pick(0, 4) == 0 ? pick(100, 400) : pick(0, 70);
    c.block_size = pick(1, 80);
    c.causal = !any_causal || pick(0, 3) != 0;
    c.log_stride = pick(0, 4) != 0;
    c.landmarks = pick(0, 4) != 0;
    c.landmark_mode = pick(0, 1) == 0 ? attn::LandmarkMode::kMean : attn::LandmarkMode::kMass;
    c.globals.clear();
    for (std::size_t g = pick(0, 3); g > 0; --g) c.globals.push_back(pick(0, seq + 5));
    const auto seed = static_cast<std::uint64_t>(pick(0, 1u << 30));
    return {generate_qkv(GenKind::kNormal, seq, kv_heads * group, kv_heads, dim, seed), c, seed};
  }
};

// Every unit test runs with unwritten outputs poisoned (see rvt::poison_uninitialized).
inline const bool kPoisonUninitialized = [] {
  poison_uninitialized(true);
  return true;
}();

}  // namespace rvt::test
