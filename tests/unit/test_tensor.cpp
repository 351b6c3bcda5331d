#include <catch2/catch.hpp>
#include <cstdint>

#include "rvt/core/error.hpp"
#include "rvt/core/half.hpp"
#include "rvt/core/memory.hpp"
#include "rvt/core/stats.hpp"
#include "rvt/tensor/tensor.hpp"
#include "test_support.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

using namespace rvt;
using rvt::test::TempDir;

TEST_CASE("tensor layout is [seq][heads][dim], zero-filled, 64-byte aligned", "[tensor]") {
  Tensor t(3, 2, 5);
  REQUIRE(t.size() == 30);
  REQUIRE(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  for (float v : t.values()) REQUIRE(v == 0.0f);
  t.at(2, 1, 4) = 7.0f;
  REQUIRE(t.data()[(2 * 2 + 1) * 5 + 4] == 7.0f);
  REQUIRE(t.row(2, 1) == t.data() + 25);
}

TEST_CASE("first_rows copies a prefix of the sequence", "[tensor]") {
  Tensor t(5, 2, 3);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i);
  const Tensor p = t.first_rows(2);
  CHECK(p.shape() == TensorShape{2, 2, 3});
  CHECK(std::vector<float>(p.values().begin(), p.values().end()) ==
        std::vector<float>(t.values().begin(), t.values().begin() + 12));
  CHECK(t.first_rows(0).empty());
  CHECK(t.first_rows(5).shape() == t.shape());
  CHECK_THROWS_AS(t.first_rows(6), std::out_of_range);
}

TEST_CASE("a large block freed and taken again: a zero-filled tensor is zero, every size is aligned", "[tensor]") {
  // Blocks of 64 KiB and more are kept after a free and handed out again for the same
  // size: a default tensor must still come back zero-filled, whatever the last owner wrote.
  for (int round = 0; round < 3; ++round) {
    {
      Tensor dirty(1000, 4, 32, Tensor::Uninitialized{});  // 512,000 bytes
      for (float& v : dirty.values()) v = 7.0f;
    }
    Tensor clean(1000, 4, 32);
    REQUIRE(reinterpret_cast<std::uintptr_t>(clean.data()) % 64 == 0);
    for (float v : clean.values()) REQUIRE(v == 0.0f);
  }
  std::vector<void*> held;  // more than the 64 MiB the cache keeps: the oldest go back
  for (int i = 0; i < 40; ++i) held.push_back(allocate_aligned(std::size_t{3} << 20, 64));
  for (void* p : held) {
    REQUIRE(reinterpret_cast<std::uintptr_t>(p) % (std::size_t{2} << 20) == 0);  // >= 2 MiB: huge-page aligned
    deallocate_aligned(p, std::size_t{3} << 20, 64);
  }
  void* again = allocate_aligned(std::size_t{3} << 20, 64);
  REQUIRE(reinterpret_cast<std::uintptr_t>(again) % (std::size_t{2} << 20) == 0);
  deallocate_aligned(again, std::size_t{3} << 20, 64);
}

TEST_CASE("tensor shapes whose size overflows are a bad-input error", "[tensor]") {
  const std::size_t huge = std::size_t{1} << 40;
  try {
    Tensor t(huge, huge, 4);
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(e.code() == ExitCode::kBadInput);
    REQUIRE(std::string(e.what()).find("too large") != std::string::npos);
  }
  REQUIRE_THROWS_AS(checked_numel({std::size_t{1} << 21, std::size_t{1} << 20, 1}), Error);
  REQUIRE(checked_numel({0, 5, 7}) == 0);
}

TEST_CASE("large blocks past the free memory are refused, untouched ones counted", "[tensor]") {
  // Two blocks of 60% of the free memory, never touched: Linux would hand out both and kill
  // the process once their pages were written. The second is refused, naming what is free.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RVT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)  // clang's way to say it
#define RVT_TEST_SANITIZED 1
#endif
#endif
#ifdef RVT_TEST_SANITIZED
  WARN("not run: a sanitizer's allocator maps and marks the blocks");
  return;
#endif
  const std::optional<std::uint64_t> free = available_memory_bytes();
  if (!free || *free < (std::uint64_t{1} << 30)) {
    WARN("not run: free memory unknown or under 1 GiB");
    return;
  }
  const std::size_t n = static_cast<std::size_t>(*free / 4 * 6 / 10);
  poison_uninitialized(false);  // the unit tests' NaN fill would touch every page
  struct PoisonAgain {
    ~PoisonAgain() { poison_uninitialized(true); }
  } poison_again;
  std::optional<Tensor> first(std::in_place, n, 1, 1, Tensor::Uninitialized{});
  try {
    Tensor second(n, 1, 1, Tensor::Uninitialized{});
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(e.code() == ExitCode::kBadInput);
    REQUIRE_THAT(e.what(), Catch::Contains("more memory than is available") && Catch::Contains("bytes were free, ") &&
                               Catch::Contains("taken by this run's other large blocks"));
  }
  // The first freed, the room is there again: its bytes no longer count as held.
  first.reset();
  { const Tensor again(n, 1, 1, Tensor::Uninitialized{}); }
}

TEST_CASE("MemAvailable is read from /proc/meminfo text", "[memory]") {
  std::istringstream good("MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   24228288 kB\n");
  REQUIRE(parse_mem_available(good) == std::uint64_t{24228288} * 1024);
  std::istringstream missing("MemTotal:       24576000 kB\n");
  REQUIRE_FALSE(parse_mem_available(missing).has_value());
  std::istringstream junk("MemAvailable: lots\n");
  REQUIRE_FALSE(parse_mem_available(junk).has_value());
}

TEST_CASE("the own cgroup path is read from /proc/self/cgroup text", "[memory]") {
  std::istringstream v1("9:name=systemd:/\n4:memory:/process_api/8841b2\n0::/\n");
  REQUIRE(own_cgroup_path(v1, false) == std::string("/process_api/8841b2"));
  std::istringstream both("5:cpu,memory,pids:/a:b\n0::/user.slice/x\n");
  REQUIRE(own_cgroup_path(both, false) == std::string("/a:b"));  // a ':' in the path stays
  both.clear();
  both.seekg(0);
  REQUIRE(own_cgroup_path(both, true) == std::string("/user.slice/x"));
  std::istringstream none("4:memoryx:/y\n1:cpu:/z\n");
  REQUIRE_FALSE(own_cgroup_path(none, false).has_value());
  none.clear();
  none.seekg(0);
  REQUIRE_FALSE(own_cgroup_path(none, true).has_value());
}

TEST_CASE("cgroup room is the least any level from the own cgroup up leaves, cache reclaimable", "[memory]") {
  // A fake v2 hierarchy: root (no limit), parent (limit 10 GB), own (limit 8 GB).
  const TempDir dir;
  const auto level = [&](const std::string& rel, const std::string& limit, std::uint64_t usage,
                         std::uint64_t inactive) {
    const std::filesystem::path d = dir.path / rel;
    std::filesystem::create_directories(d);
    std::ofstream(d / "memory.max") << limit << "\n";
    std::ofstream(d / "memory.current") << usage << "\n";
    std::ofstream(d / "memory.stat") << "anon 5\nfile 9\ninactive_file " << inactive << "\nactive_file 3\n";
  };
  level("", "max", 50'000'000'000, 0);
  level("parent", "10000000000", 9'000'000'000, 500'000'000);  // 1.5 GB room
  level("parent/own", "8000000000", 2'000'000'000, 1'000'000'000);  // 7 GB room
  const std::string root = dir.path.string();
  REQUIRE(cgroup_room(kCgroupV2, root, "/parent/own") == std::uint64_t{1'500'000'000});
  REQUIRE(cgroup_room(kCgroupV2, root, "/parent") == std::uint64_t{1'500'000'000});
  // The own level alone binds once the parent has room.
  level("parent", "10000000000", 3'000'000'000, 0);
  REQUIRE(cgroup_room(kCgroupV2, root, "/parent/own") == std::uint64_t{7'000'000'000});
  // A path missing under the mount (a container showing its own cgroup as the root) reads the
  // root, and so does one that tries to leave the mount.
  REQUIRE_FALSE(cgroup_room(kCgroupV2, root, "/docker/abc").has_value());
  REQUIRE_FALSE(cgroup_room(kCgroupV2, root, "/../..").has_value());
  level("", "4000000000", 1'000'000'000, 0);
  REQUIRE(cgroup_room(kCgroupV2, root, "/docker/abc") == std::uint64_t{3'000'000'000});
  // Usage past the limit leaves nothing, never a wrapped number.
  level("parent/own", "8000000000", 9'000'000'000, 0);
  REQUIRE(cgroup_room(kCgroupV2, root, "/parent/own") == std::uint64_t{0});
  // v1 names: limit_in_bytes, usage_in_bytes, total_inactive_file.
  const std::filesystem::path v1 = dir.path / "v1";
  std::filesystem::create_directories(v1);
  std::ofstream(v1 / "memory.limit_in_bytes") << "6000000000\n";
  std::ofstream(v1 / "memory.usage_in_bytes") << "5000000000\n";
  std::ofstream(v1 / "memory.stat") << "cache 7\ninactive_file 1\ntotal_inactive_file 2000000000\n";
  REQUIRE(cgroup_room(kCgroupV1, v1.string(), "/") == std::uint64_t{3'000'000'000});
}

TEST_CASE("f16 conversion rounds to nearest even and keeps specials", "[half]") {
  REQUIRE(f32_to_f16(0.0f) == 0x0000);
  REQUIRE(f32_to_f16(-0.0f) == 0x8000);
  REQUIRE(f32_to_f16(1.0f) == 0x3C00);
  REQUIRE(f32_to_f16(-2.0f) == 0xC000);
  REQUIRE(f32_to_f16(65504.0f) == 0x7BFF);
  REQUIRE(f32_to_f16(65520.0f) == 0x7C00);  // halfway to the next binade rounds up to inf
  REQUIRE(f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7C00);
  REQUIRE((f32_to_f16(std::numeric_limits<float>::quiet_NaN()) & 0x7C00) == 0x7C00);
  REQUIRE((f32_to_f16(std::numeric_limits<float>::quiet_NaN()) & 0x03FF) != 0);
  // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to even -> 1.
  REQUIRE(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even) -> rounds up.
  REQUIRE(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  REQUIRE(f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);   // smallest subnormal
  REQUIRE(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);   // half of it: tie to even (0)
  REQUIRE(f32_to_f16(std::ldexp(1.5f, -25)) == 0x0001);   // above half rounds up
  REQUIRE(f32_to_f16(std::ldexp(1.0f, -14)) == 0x0400);   // smallest normal
  // Every half value survives f16 -> f32 -> f16.
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float f = f16_to_f32(h);
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_f16(f) == h);
  }
  REQUIRE(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  REQUIRE(f16_to_f32(0x7BFF) == 65504.0f);
}

TEST_CASE("summary stats count non-finite values apart", "[stats]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v{1.0f, 3.0f, nan, -inf, 2.0f};
  const SummaryStats s = summarize(v);
  REQUIRE(s.count == 5);
  REQUIRE(s.nan_count == 1);
  REQUIRE(s.inf_count == 1);
  REQUIRE(s.min == 1.0);
  REQUIRE(s.max == 3.0);
  REQUIRE(s.mean == Approx(2.0));
  REQUIRE(s.std == Approx(std::sqrt(2.0 / 3.0)));
}

TEST_CASE("summary stats: the same for every thread count, close to a plain double sum", "[stats]") {
  // Several runs of 65,536 values and a partial one, non-finite values in two of them.
  std::vector<float> v(3 * 65536 + 1001);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(std::sin(0.001 * static_cast<double>(i)) * 3.0 + 1.0);
  v[70000] = std::numeric_limits<float>::quiet_NaN();
  v[150000] = -std::numeric_limits<float>::infinity();
  double sum = 0.0, lo = 1e300, hi = -1e300;
  std::size_t n = 0;
  for (float x : v) {
    if (!std::isfinite(x)) continue;
    sum += x, lo = std::min(lo, static_cast<double>(x)), hi = std::max(hi, static_cast<double>(x)), ++n;
  }
  const double mean = sum / static_cast<double>(n);
  double sq = 0.0;
  for (float x : v) sq += std::isfinite(x) ? (x - mean) * (x - mean) : 0.0;
  const SummaryStats one = summarize(v, 1);
  CHECK(one.nan_count == 1);
  CHECK(one.inf_count == 1);
  CHECK(one.min == lo);
  CHECK(one.max == hi);
  CHECK(one.mean == Approx(mean).epsilon(1e-12));
  CHECK(one.std == Approx(std::sqrt(sq / static_cast<double>(n))).epsilon(1e-12));
  for (unsigned threads : {2u, 3u, 8u}) {
    const SummaryStats s = summarize(v, threads);
    CHECK(s.mean == one.mean);  // bit for bit
    CHECK(s.std == one.std);
    CHECK(s.min == one.min);
    CHECK(s.max == one.max);
    CHECK(s.nan_count == 1);
  }
  CHECK(summarize(std::vector<float>{}, 2).count == 0);
}
