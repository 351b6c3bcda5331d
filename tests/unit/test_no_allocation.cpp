// Decode steps allocate nothing (issue 6: "decode step: no allocation"). This file counts, per
// thread, the allocations made while a counter is armed: in a normal build by replacing the test
// binary's global operator new (every other test runs through it unchanged: it forwards to
// malloc); under AddressSanitizer, which owns operator new and reports memory from its new
// released by anyone else's delete, through ASan's allocation hook, which sees malloc too.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <new>
#include <vector>

#include "rvt/stream/decoder.hpp"
#include "rvt/tensor/generate.hpp"

namespace {

thread_local bool g_counting = false;
thread_local std::size_t g_allocations = 0;

// Counts the allocations this thread makes while alive.
class AllocationCounter {
 public:
  AllocationCounter() {
    g_allocations = 0;
    g_counting = true;
  }
  ~AllocationCounter() { g_counting = false; }
  std::size_t count() const { return g_allocations; }
};

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define RVT_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RVT_TEST_UNDER_ASAN 1
#endif
#endif

#ifdef RVT_TEST_UNDER_ASAN
// Part of libasan's interface (sanitizer/allocator_interface.h, which GCC 12 does not install).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, std::size_t),
                                                         void (*free_hook)(const volatile void*));
namespace {
void count_malloc(const volatile void*, std::size_t) {
  if (g_counting) ++g_allocations;
}
void ignore_free(const volatile void*) {}
const int g_hooks_installed = __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
}  // namespace
#else
namespace {
void* counted_malloc(std::size_t size, std::size_t align) {
  if (g_counting) ++g_allocations;
  if (size == 0) size = 1;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (size + align - 1) / align * align)
                                              : std::malloc(size);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return counted_malloc(size, 0); }
void* operator new[](std::size_t size) { return counted_malloc(size, 0); }
void* operator new(std::size_t size, std::align_val_t align) { return counted_malloc(size, static_cast<std::size_t>(align)); }
void* operator new[](std::size_t size, std::align_val_t align) {
  return counted_malloc(size, static_cast<std::size_t>(align));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif

using namespace rvt;
using namespace rvt::stream;

TEST_CASE("the allocation counter sees a vector's allocation", "[stream][alloc]") {
#ifdef RVT_TEST_UNDER_ASAN
  REQUIRE(g_hooks_installed != 0);
#endif
  AllocationCounter counter;
  std::vector<float> v(100);
  CHECK(counter.count() == 1);
}

TEST_CASE("decode steps allocate nothing: sparse f32/f16, H2O eviction, MQA, dense", "[stream][alloc]") {
  struct Case {
    std::size_t q_heads, kv_heads, dim, capacity;
    KvDType dtype;
    Evict evict;
  };
  const std::size_t steps = 700;  // past the capacities below: eviction runs on most steps
  const Qkv x = generate_qkv(GenKind::kNormal, steps, 4, 4, 32, 7);
  const Qkv mqa = generate_qkv(GenKind::kNormal, steps, 4, 1, 32, 8);
  attn::SparseConfig config;
  config.window = 16;
  config.block_size = 32;
  for (const Case c : {Case{4, 4, 32, steps, KvDType::kF32, Evict::kNone}, Case{4, 4, 32, steps, KvDType::kF16, Evict::kNone},
                       Case{4, 4, 32, 128, KvDType::kF32, Evict::kH2O}, Case{4, 1, 32, steps, KvDType::kF32, Evict::kNone}}) {
    const Qkv& in = c.kv_heads == 1 ? mqa : x;
    SparseDecoder decoder(c.q_heads, KvCache(c.capacity, c.kv_heads, c.dim, config.block_size, c.dtype), config, c.evict);
    std::vector<float> out(c.q_heads * c.dim);
    decoder.step(in.q.row(0, 0), in.k.row(0, 0), in.v.row(0, 0), out.data());  // any lazy setup happens here
    AllocationCounter counter;
    for (std::size_t t = 1; t < steps; ++t) decoder.step(in.q.row(t, 0), in.k.row(t, 0), in.v.row(t, 0), out.data());
    CHECK(counter.count() == 0);
    if (c.evict == Evict::kH2O) CHECK(decoder.cache().len() == c.capacity);
  }
  DenseDecoder dense(4, KvCache(steps, 4, 32, config.block_size));
  std::vector<float> out(4 * 32);
  dense.step(x.q.row(0, 0), x.k.row(0, 0), x.v.row(0, 0), out.data());
  AllocationCounter counter;
  for (std::size_t t = 1; t < steps; ++t) dense.step(x.q.row(t, 0), x.k.row(t, 0), x.v.row(t, 0), out.data());
  CHECK(counter.count() == 0);
}
