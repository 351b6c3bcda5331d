#include "rvt/tensor/tensor.hpp"

#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <vector>

#include "rvt/core/error.hpp"
#include "rvt/core/memory.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RVT_HAS_ASAN 1
#endif
#endif
#ifndef RVT_HAS_ASAN
#define RVT_HAS_ASAN 0
#endif

namespace rvt {
namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t effective_align(std::size_t bytes, std::size_t align) {
  return bytes >= kHugePage && align < kHugePage ? kHugePage : align;
}

// Freed blocks of kMinBytes .. kMaxBytes are kept (kMaxBytes in all, the oldest released
// first) and handed out again for the same size and alignment. On this project's VMs a
// fresh page costs a fault of ~10 us, and glibc's heap fragments under repeated aligned
// allocations: a repeated call (bench, a model's layers, a parity suite) faulted its
// 512 KiB output in anew for its first ~9 calls (dense, N = 1024: 3.5 ms against 2.1).
// Under AddressSanitizer the blocks go straight back, so its allocator sees every free.
class BlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t{64} << 10, kMaxBytes = std::size_t{64} << 20;

  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive statics
    return *cache;
  }
#if defined(__SANITIZE_ADDRESS__) || RVT_HAS_ASAN
  static constexpr bool kKeepBlocks = false;
#else
  static constexpr bool kKeepBlocks = true;
#endif
  static bool eligible(std::size_t bytes) { return kKeepBlocks && bytes >= kMinBytes && bytes <= kMaxBytes; }

  void* take(std::size_t bytes, std::size_t align) {
    std::lock_guard lock(mutex_);
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
      if (it->bytes == bytes && it->align == align) {
        void* p = it->p;
        total_ -= bytes;
        blocks_.erase(it);
        return p;
      }
    }
    return nullptr;
  }

  void keep(void* p, std::size_t bytes, std::size_t align) noexcept {
    std::lock_guard lock(mutex_);
    while (!blocks_.empty() && total_ + bytes > kMaxBytes) {
      ::operator delete(blocks_.front().p, std::align_val_t{blocks_.front().align});
      total_ -= blocks_.front().bytes;
      blocks_.erase(blocks_.begin());
    }
    try {
      blocks_.push_back({p, bytes, align});
      total_ += bytes;
    } catch (...) {  // no room to remember it: just free it
      ::operator delete(p, std::align_val_t{align});
    }
  }

 private:
  struct Block {
    void* p;
    std::size_t bytes, align;
  };
  std::mutex mutex_;
  std::vector<Block> blocks_;
  std::size_t total_ = 0;
};
// glibc hands freed memory back to the kernel (blocks over ~128 KiB are mmapped, the top of
// the heap is trimmed), and every page taken back costs a ~10 us fault when it is used
// again. A call allocates and frees the same buffers each time (the sparse tile columns,
// ~140 KiB per 64 tiles at window 128: 19% of the call went to faults), so keep them: heap,
// not mmap, below 64 MiB, and no trimming below 256 MiB of free heap. Set once, at load.
#if defined(__GLIBC__)
const bool kHeapKept = [] {
  (void)mallopt(M_MMAP_THRESHOLD, 64 << 20);
  (void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return true;
}();
#endif

// Linux overcommits: a block far past the free memory is handed out, and the process is killed
// (no message, exit 137) when it touches the pages. So a block past the block cache's sizes is
// refused (std::bad_alloc, which the callers report as exit 3) where it is more than the memory
// free now, or more than what the free memory at the first such block leaves after the large
// blocks still held: those may not be touched yet, and so not yet missing from the free memory.
class LargeBlocks {
 public:
  static constexpr std::size_t kMinBytes = BlockCache::kMaxBytes + 1;

  static void take(std::size_t bytes) {
    const std::optional<std::uint64_t> free_now = available_memory_bytes();
    static const std::optional<std::uint64_t> free_at_first = free_now;
    const std::uint64_t held = held_.load(std::memory_order_relaxed);
    if (free_now && bytes > *free_now) throw OutOfMemory(std::to_string(*free_now) + " bytes free");
    if (free_at_first && (held > *free_at_first || bytes > *free_at_first - held)) {
      throw OutOfMemory(std::to_string(*free_at_first) + " bytes were free, " + std::to_string(held) +
                        " of them taken by this run's other large blocks");
    }
    held_.fetch_add(bytes, std::memory_order_relaxed);
  }
  static void give(std::size_t bytes) noexcept { held_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  static inline std::atomic<std::uint64_t> held_{0};
};
}  // namespace

std::string out_of_memory_note(const std::bad_alloc& e) {
  return dynamic_cast<const OutOfMemory*>(&e) ? std::string(" (") + e.what() + ")" : std::string();
}

void* allocate_aligned(std::size_t bytes, std::size_t align) {
  const std::size_t a = effective_align(bytes, align);
  if (BlockCache::eligible(bytes)) {
    if (void* p = BlockCache::instance().take(bytes, a)) return p;
  }
  if (bytes >= LargeBlocks::kMinBytes) LargeBlocks::take(bytes);
  void* p = nullptr;
  try {
    p = ::operator new(bytes, std::align_val_t{a});
  } catch (const std::bad_alloc&) {
    if (bytes >= LargeBlocks::kMinBytes) LargeBlocks::give(bytes);
    throw;
  }
#ifdef MADV_HUGEPAGE
  // A hint: where THP is off, or under a sanitizer's allocator, it fails harmlessly.
  if (a == kHugePage) (void)::madvise(p, bytes - bytes % kHugePage, MADV_HUGEPAGE);
#endif
  return p;
}

void deallocate_aligned(void* p, std::size_t bytes, std::size_t align) noexcept {
  if (p && BlockCache::eligible(bytes)) {
    BlockCache::instance().keep(p, bytes, effective_align(bytes, align));
    return;
  }
  if (p && bytes >= LargeBlocks::kMinBytes) LargeBlocks::give(bytes);
  ::operator delete(p, std::align_val_t{effective_align(bytes, align)});
}

std::string TensorShape::str() const {
  return "[" + std::to_string(seq) + ", " + std::to_string(heads) + ", " + std::to_string(dim) + "]";
}

std::size_t checked_numel(const TensorShape& s, const std::string& what) {
  // 2^40 floats = 4 TiB: beyond any machine this runs on, and far from overflow.
  constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 40;
  std::uint64_t n = 1;
  for (std::uint64_t d : {std::uint64_t{s.seq}, std::uint64_t{s.heads}, std::uint64_t{s.dim}}) {
    if (d != 0 && n > kMaxElements / d) {
      throw_bad_input(what + ": shape " + s.str() + " is too large (more than 2^40 elements)");
    }
    n *= d;
  }
  if (n > kMaxElements) throw_bad_input(what + ": shape " + s.str() + " is too large (more than 2^40 elements)");
  return static_cast<std::size_t>(n);
}

Tensor::Tensor(std::size_t seq, std::size_t heads, std::size_t dim) : shape_{seq, heads, dim} { allocate(true); }

Tensor::Tensor(std::size_t seq, std::size_t heads, std::size_t dim, Uninitialized) : shape_{seq, heads, dim} {
  allocate(false);
}

Tensor::Tensor(std::size_t seq, std::size_t heads, std::size_t dim, UninitFloats&& values)
    : shape_{seq, heads, dim}, data_(std::move(values)) {
  if (data_.size() != checked_numel(shape_)) {
    throw std::invalid_argument("Tensor: " + std::to_string(data_.size()) + " values for shape " + shape_.str());
  }
}

Tensor Tensor::first_rows(std::size_t count) const {
  if (count > shape_.seq) throw std::out_of_range("Tensor::first_rows: more rows than the tensor has");
  Tensor out(count, shape_.heads, shape_.dim, Uninitialized{});
  std::copy_n(data_.data(), out.size(), out.data());
  return out;
}

namespace {
std::atomic<bool> g_poison_uninitialized{false};
}  // namespace

void poison_uninitialized(bool on) { g_poison_uninitialized.store(on, std::memory_order_relaxed); }

void Tensor::allocate(bool zero) {
  const std::size_t n = checked_numel(shape_);
  try {
    if (zero) data_.assign(n, 0.0f);
    else if (g_poison_uninitialized.load(std::memory_order_relaxed)) data_.assign(n, std::numeric_limits<float>::quiet_NaN());
    else data_.resize(n);
  } catch (const std::bad_alloc& e) {
    throw_bad_input("tensor " + shape_.str() + " needs " + std::to_string(n * 4) + " bytes: more memory than is available" +
                    out_of_memory_note(e));
  }
}

}  // namespace rvt
