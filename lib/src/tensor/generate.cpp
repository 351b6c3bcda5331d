#include "rvt/tensor/generate.hpp"

#include <cmath>
#include <numbers>

#include "rvt/core/error.hpp"

namespace rvt {
namespace {

// Box-Muller over pairs of draws, exactly as the fixture generator: emits r*cos then r*sin.
class NormalStream {
 public:
  explicit NormalStream(std::uint64_t seed) : rng_(seed) {}
  float next() {
    if (has_spare_) {
      has_spare_ = false;
      return static_cast<float>(spare_);
    }
    const std::uint64_t a = rng_.next();
    const std::uint64_t b = rng_.next();
    const double u1 = static_cast<double>((a >> 11) + 1) / 9007199254740992.0;  // (0, 1]
    const double u2 = static_cast<double>(b >> 11) / 9007199254740992.0;        // [0, 1)
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(theta);
    has_spare_ = true;
    return static_cast<float>(r * std::cos(theta));
  }

 private:
  SplitMix64 rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

void fill_random(Tensor& t, GenKind kind, NormalStream& normal, SplitMix64& uniform) {
  for (float& x : t.values()) {
    x = kind == GenKind::kNormal ? normal.next()
                                 : static_cast<float>(uniform.next_unit() * 2.0 - 1.0);
  }
}

void fill_sincos(Tensor& t, bool is_query, float factor) {
  for (std::size_t s = 0; s < t.seq(); ++s) {
    for (std::size_t h = 0; h < t.heads(); ++h) {
      for (std::size_t d = 0; d < t.dim(); ++d) {
        const float arg = is_query ? static_cast<float>(s * 31 + h * 7 + d)
                                   : static_cast<float>(s * 17 + h * 3 + d);
        t.at(s, h, d) = (is_query ? std::sin(arg) : std::cos(arg)) * 0.1f * factor;
      }
    }
  }
}

}  // namespace

std::uint64_t SplitMix64::next() {
  state_ += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double SplitMix64::next_unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }

GenKind parse_gen_kind(const std::string& name) {
  if (name == "sincos") return GenKind::kSincos;
  if (name == "normal") return GenKind::kNormal;
  if (name == "uniform") return GenKind::kUniform;
  throw_usage("--gen: '" + name + "' is not one of sincos, normal, uniform");
}

const char* gen_kind_name(GenKind kind) {
  switch (kind) {
    case GenKind::kSincos: return "sincos";
    case GenKind::kNormal: return "normal";
    case GenKind::kUniform: return "uniform";
  }
  return "unknown";
}

Qkv generate_qkv(GenKind kind, std::size_t seq, std::size_t q_heads, std::size_t kv_heads,
                 std::size_t dim, std::uint64_t seed) {
  Qkv out{Tensor(seq, q_heads, dim), Tensor(seq, kv_heads, dim), Tensor(seq, kv_heads, dim)};
  if (kind == GenKind::kSincos) {
    fill_sincos(out.q, true, 1.0f);
    fill_sincos(out.k, false, 1.0f);
    fill_sincos(out.v, false, 0.5f);
    return out;
  }
  NormalStream normal(seed);
  SplitMix64 uniform(seed);
  fill_random(out.q, kind, normal, uniform);
  fill_random(out.k, kind, normal, uniform);
  fill_random(out.v, kind, normal, uniform);
  return out;
}

Tensor generate_frames(GenKind kind, std::size_t frames, std::size_t input_dim, std::uint64_t seed) {
  Tensor x(frames, 1, input_dim);
  if (kind == GenKind::kSincos) {
    for (std::size_t t = 0; t < frames; ++t) {
      for (std::size_t d = 0; d < input_dim; ++d) {
        x.at(t, 0, d) = std::sin(static_cast<float>(t * 31 + d * 7)) * 0.5f;
      }
    }
    return x;
  }
  NormalStream normal(seed);
  SplitMix64 uniform(seed);
  fill_random(x, kind, normal, uniform);
  return x;
}

}  // namespace rvt
