// The input generators: their values pinned (digests taken from the sequential code they
// had before they were split between threads, 2026-11-29), the same for every thread count,
// and the normal and uniform streams one sequence over q, then k, then v (checked here
// against a plain sequential reference: splitmix64 and Box-Muller, as the fixtures' generator).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "rvt/core/hash.hpp"
#include "rvt/tensor/generate.hpp"

using namespace rvt;

namespace {

std::string digest(const Tensor& t) { return hex64(xxh3_64(t.values().data(), t.values().size_bytes())); }

// The normal stream drawn one value after the other, the spare of each pair kept.
std::vector<float> sequential_normal(std::uint64_t seed, std::size_t n) {
  SplitMix64 rng(seed);
  std::vector<float> out;
  while (out.size() < n) {
    const std::uint64_t a = rng.next(), b = rng.next();
    const double u1 = static_cast<double>((a >> 11) + 1) / 9007199254740992.0;
    const double u2 = static_cast<double>(b >> 11) / 9007199254740992.0;
    const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * std::numbers::pi * u2;
    out.push_back(static_cast<float>(r * std::cos(theta)));
    if (out.size() < n) out.push_back(static_cast<float>(r * std::sin(theta)));
  }
  return out;
}

std::vector<float> sequential_uniform(std::uint64_t seed, std::size_t n) {
  SplitMix64 rng(seed);
  std::vector<float> out(n);
  for (float& x : out) x = static_cast<float>(rng.next_unit() * 2.0 - 1.0);
  return out;
}

}  // namespace

TEST_CASE("generators: pinned values, the same for every thread count", "[generate]") {
  // 5003 x 3 x 7 = 105063 values a tensor (odd: k starts inside a normal pair; more than three
  // of the threads' runs); frames 40001 x 5 = 200005.
  struct Pinned {
    GenKind kind;
    const char *q, *k, *v, *frames;
  };
  const Pinned pinned[] = {
      {GenKind::kNormal, "3dd2d26ca78458b6", "197a551f37fc227b", "9358655e1a9f3197", "ad19338c6a823a19"},
      {GenKind::kUniform, "12eeddfc97da12c3", "ffc0079019eabf98", "78fb8a0adab46a38", "8152230085620f1a"},
      {GenKind::kSincos, "b4f4c44a57df2d7e", "c10d3bc173f9378c", "d9f632daa9149b24", "35aa045367224b55"},
      {GenKind::kStructured, "5c4008425db0cdcb", "5f328a1a1f544919", "f84e09bcf4e690a8", "57824957c87546b5"}};
  for (const Pinned& p : pinned) {
    for (unsigned threads : {1u, 2u, 3u, 8u}) {
      INFO(gen_kind_name(p.kind) << ", " << threads << " threads");
      const Qkv x = generate_qkv(p.kind, 5003, 3, 3, 7, 0x5EED, threads);
      CHECK(digest(x.q) == p.q);
      CHECK(digest(x.k) == p.k);
      CHECK(digest(x.v) == p.v);
      CHECK(digest(generate_frames(p.kind, 40001, 5, 0x5EED, threads)) == p.frames);
    }
  }
}

TEST_CASE("generators: normal and uniform are one sequential stream over q, k, v", "[generate]") {
  // q holds 1001 x 3 x 7 = 21021 values: k starts on the second value of a normal pair.
  const std::size_t nq = 1001 * 3 * 7, nkv = 1001 * 1 * 7;
  for (unsigned threads : {1u, 3u}) {
    const Qkv normal = generate_qkv(GenKind::kNormal, 1001, 3, 1, 7, 42, threads);
    const Qkv uniform = generate_qkv(GenKind::kUniform, 1001, 3, 1, 7, 42, threads);
    for (const auto& [x, want] : {std::pair{&normal, sequential_normal(42, nq + 2 * nkv)},
                                  std::pair{&uniform, sequential_uniform(42, nq + 2 * nkv)}}) {
      const std::vector<float> got = [&] {
        std::vector<float> all(x->q.values().begin(), x->q.values().end());
        all.insert(all.end(), x->k.values().begin(), x->k.values().end());
        all.insert(all.end(), x->v.values().begin(), x->v.values().end());
        return all;
      }();
      REQUIRE(got.size() == want.size());
      std::size_t differ = 0;
      for (std::size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i] ? 1 : 0;
      CHECK(differ == 0);
    }
  }
  CHECK(generate_qkv(GenKind::kNormal, 0, 3, 1, 7, 42, 2).q.empty());
}
