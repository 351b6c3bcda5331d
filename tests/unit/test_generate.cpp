// The input generators: their values pinned (digests taken from the sequential code they
// had before they were split between threads, 2026-11-29), the same for every thread count,
// and the normal and uniform streams one sequence over q, then k, then v (checked here
// against a plain sequential reference: splitmix64 and Box-Muller, as the fixtures' generator).
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "rvt/core/hash.hpp"
#include "rvt/core/splitmix.hpp"
#include "rvt/kernels/box_muller.hpp"
#include "rvt/kernels/fast.hpp"
#include "rvt/tensor/generate.hpp"

using namespace rvt;

namespace {

std::string digest(const Tensor& t) { return hex64(xxh3_64(t.values().data(), t.values().size_bytes())); }

// Box-Muller inputs: the normal stream's (u1, theta) pairs for `seed`, and the edges: u1 next
// to 1 and down to 2^-53, theta on and next to the multiples of pi/2 (where cos or sin is
// tiny, the polynomials' hardest case), and exactly 0.
struct BoxMullerCases {
  std::vector<double> u1, theta;
};
BoxMullerCases box_muller_cases(std::uint64_t seed, std::size_t pairs) {
  BoxMullerCases in;
  SplitMix64 rng(seed);
  for (std::size_t p = 0; p < pairs; ++p) {
    const std::uint64_t a = rng.next(), b = rng.next();
    in.u1.push_back(static_cast<double>((a >> 11) + 1) / 9007199254740992.0);
    in.theta.push_back(2.0 * std::numbers::pi * (static_cast<double>(b >> 11) / 9007199254740992.0));
  }
  for (int i = 0; i < 2000; ++i) {
    const double quarter = std::numbers::pi / 2 * (i % 4);  // 0, pi/2, pi, 3 pi/2
    const double near = quarter + (i / 4 % 2 == 0 ? 1 : -1) * std::ldexp(static_cast<double>(i / 8), -52);
    in.theta.push_back(i % 3 == 0 ? std::nextafter(quarter, 10.0) : std::max(0.0, near));
    const double steps = static_cast<double>(i);
    in.u1.push_back(i % 2 == 0 ? 1.0 - std::ldexp(steps, -53) : std::ldexp(steps + 1, -53));
  }
  in.u1.push_back(1.0);  // r = 0
  in.theta.push_back(0.0);
  return in;
}

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

TEST_CASE("box_muller: the polynomials stay within 2^-46 of glibc", "[generate]") {
  // Seen: 2^-50.4 (about 3 double ulps); the fast path keeps a float only 2^-40 from a
  // rounding boundary, so a margin of ~1400.
  const BoxMullerCases in = box_muller_cases(0x5EED, 500000);
  double worst_log = 0, worst_value = 0;
  for (std::size_t i = 0; i < in.u1.size(); ++i) {
    const double log_ref = std::log(in.u1[i]), log_fast = kernels::box_muller_log(in.u1[i]);
    worst_log = std::max(worst_log, log_ref == 0 ? std::abs(log_fast) : std::abs(log_fast / log_ref - 1.0));
    const double r_ref = std::sqrt(-2.0 * log_ref), r_fast = std::sqrt(-2.0 * log_fast);
    const kernels::CosSin cs = kernels::box_muller_cos_sin(in.theta[i]);
    for (const auto& [ref, fast] : {std::pair{r_ref * std::cos(in.theta[i]), r_fast * cs.cos},
                                    std::pair{r_ref * std::sin(in.theta[i]), r_fast * cs.sin}}) {
      worst_value = std::max(worst_value, ref == 0 ? std::abs(fast) : std::abs(fast / ref - 1.0));
    }
  }
  INFO("worst relative distance: log 2^" << std::log2(worst_log) << ", values 2^" << std::log2(worst_value));
  CHECK(worst_log < 0x1p-46);
  CHECK(worst_value < 0x1p-46);
  CHECK(kernels::box_muller_log(1.0) == 0.0);
  CHECK(kernels::box_muller_cos_sin(0.0).sin == 0.0);
}

TEST_CASE("splitmix: draws as exact doubles", "[generate]") {
  for (std::uint64_t k : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0xFFFFFFFF}, std::uint64_t{1} << 32,
                          (std::uint64_t{1} << 53) - 1, std::uint64_t{1} << 53, std::uint64_t{0x1234567890ABCull}}) {
    CHECK(exact_double(k) == static_cast<double>(k));
  }
  SplitMix64 rng(7);
  for (std::uint64_t n = 0; n < 1000; ++n) {
    const std::uint64_t draw = rng.next();
    REQUIRE(splitmix_draw(7, n) == draw);
    CHECK(unit_of(draw) == static_cast<double>(draw >> 11) / 9007199254740992.0);
    CHECK(unit_open_of(draw) == static_cast<double>((draw >> 11) + 1) / 9007199254740992.0);
  }
}

TEST_CASE("normal_pairs on every ISA: the scalar code's floats, glibc's or NaN where unsure, rarely",
          "[generate][kernels]") {
  const std::uint64_t seed = 42, first = 12345;
  const std::size_t n = 300001;  // odd: a partial last vector
  for (kernels::Isa isa : {kernels::Isa::kAvx2, kernels::Isa::kAvx512}) {
    if (!kernels::isa_supported(isa)) continue;
    INFO(kernels::isa_name(isa));
    std::vector<float> got(2 * n);
    const std::size_t reported = kernels::kernel_table(isa)->normal_pairs(seed, first, n, got.data());
    std::size_t unsure = 0, not_scalar = 0, not_glibc = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const kernels::FloatPair scalar = kernels::box_muller_pair(seed, first + i);  // the same doubles
      const kernels::BoxMullerInputs in = kernels::box_muller_inputs(seed, first + i);
      const double r = std::sqrt(-2.0 * std::log(in.u1));
      const float glibc[2] = {static_cast<float>(r * std::cos(in.theta)), static_cast<float>(r * std::sin(in.theta))};
      const float want[2] = {scalar.first, scalar.second};
      for (int j = 0; j < 2; ++j) {
        const float v = got[2 * i + j];
        not_scalar += std::bit_cast<std::uint32_t>(v) != std::bit_cast<std::uint32_t>(want[j]) ? 1 : 0;
        if (std::isnan(v)) ++unsure;
        else not_glibc += v != glibc[j] ? 1 : 0;
      }
    }
    CHECK(reported == unsure);
    CHECK(not_scalar == 0);
    CHECK(not_glibc == 0);
    CHECK(unsure < 2 * n / 1000);
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
