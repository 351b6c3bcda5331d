// Seeded, deterministic input generators for Q/K/V and model frames.
//
// sincos  : the reference's test inputs: q = sin(s*31 + h*7 + d) * 0.1,
//           k = cos(s*17 + h*3 + d) * 0.1, v = 0.5 * k (h is the kv head for k and v).
// normal  : standard normal from splitmix64 + Box-Muller, one stream filling q, then k,
//           then v in C order. This is the generator of ../shared/fixtures (seed 0x5EED0001
//           reproduces c1's q.npy bit for bit). splitmix64 can jump to any draw, so threads
//           fill runs of the stream; the values do not depend on how many. The values are
//           those of glibc's log, cos and sin; where the CPU has AVX2 they come through
//           rvt/kernels/box_muller.hpp, the same floats.
// uniform : uniform in [-1, 1) from the same splitmix64 stream.
// structured: inputs whose attention is concentrated the way real sequences' is (local
//           bumps, a few sink tokens, periodic recall); the construction is documented at
//           generate_structured in generate.cpp. Frames: the K tensor of a 1-head structured
//           set with dim = input_dim.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rvt/tensor/tensor.hpp"

namespace rvt {

enum class GenKind { kSincos, kNormal, kUniform, kStructured };
GenKind parse_gen_kind(const std::string& name);  // throws kUsage
const char* gen_kind_name(GenKind kind);

struct Qkv {
  Tensor q, k, v;
};

// `threads` workers fill the tensors; the values are the same for every count (a value is
// computed from its position in the stream, as splitmix64 can jump to any draw).
Qkv generate_qkv(GenKind kind, std::size_t seq, std::size_t q_heads, std::size_t kv_heads,
                 std::size_t dim, std::uint64_t seed, unsigned threads = 1);

// The structured generator's parameters: its recall period, and the sink tokens it plants
// for (seq, seed): position 0 and two seeded positions in [1, seq), sorted, distinct.
inline constexpr std::size_t kStructuredPeriod = 37;
std::vector<std::size_t> structured_sinks(std::size_t seq, std::uint64_t seed);

// Model input frames [T][input_dim], stored as a Tensor [T][1][input_dim].
Tensor generate_frames(GenKind kind, std::size_t frames, std::size_t input_dim, std::uint64_t seed,
                       unsigned threads = 1);

class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  double next_unit();  // [0, 1) with 53 bits

 private:
  std::uint64_t state_;
};

}  // namespace rvt
