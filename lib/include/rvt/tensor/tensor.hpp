// Tensor: f32, row-major [seq][heads][dim], 64-byte aligned.
//
// Element (t, h, d) lives at (t * heads + h) * dim + d. Shape arithmetic is
// overflow-checked: a shape whose byte size overflows 64 bits, or is larger than
// this machine could ever hold, is an rvt::Error(kBadInput), never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rvt {

// Raw storage behind AlignedAllocator. Blocks of 2 MiB and more are 2 MiB aligned and
// marked for transparent huge pages (madvise), so the scattered rows the sparse kernels
// and the KV cache read (log-stride, landmarks) do not each cost a TLB miss. Freed blocks
// of 64 KiB .. 64 MiB are kept (64 MiB in all) for the next request of the same size, so
// repeated calls do not fault fresh pages in (not under AddressSanitizer).
// Blocks past 64 MiB are checked against the memory free first (rvt/core/memory.hpp):
// OutOfMemory where one would not fit, so that it is refused instead of the process being
// killed when it touches the pages.
void* allocate_aligned(std::size_t bytes, std::size_t align);
void deallocate_aligned(void* p, std::size_t bytes, std::size_t align) noexcept;

class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string why) : why_(std::move(why)) {}
  const char* what() const noexcept override { return why_.c_str(); }

 private:
  std::string why_;
};
// " (what)" for an OutOfMemory, else "": for the messages that report a failed allocation.
std::string out_of_memory_note(const std::bad_alloc& e);

// DefaultInit: the no-argument construct default-initialises (leaves a float unset), so
// resize() writes nothing: Tensor's storage (zero-filled explicitly unless a kernel is about
// to write every value) and kernel scratch that is written before it is read.
template <typename T, std::size_t Align, bool DefaultInit = false>
struct AlignedAllocator {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = AlignedAllocator<U, Align, DefaultInit>;
  };
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U, Align, DefaultInit>&) {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(allocate_aligned(n * sizeof(T), Align));
  }
  void deallocate(T* p, std::size_t n) noexcept { deallocate_aligned(p, n * sizeof(T), Align); }
  template <typename U>
    requires DefaultInit
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
    requires DefaultInit
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U, Align, DefaultInit>&) const { return true; }
};

using AlignedFloats = std::vector<float, AlignedAllocator<float, 64>>;
using UninitFloats = std::vector<float, AlignedAllocator<float, 64, true>>;  // resize() leaves values unset

struct TensorShape {
  std::size_t seq = 0, heads = 0, dim = 0;
  bool operator==(const TensorShape&) const = default;
  std::string str() const;  // "[seq, heads, dim]"
};

// seq * heads * dim, throwing rvt::Error(kBadInput) (naming `what`) on overflow or
// on a size no machine could hold.
std::size_t checked_numel(const TensorShape& shape, const std::string& what = "tensor");

// Test hook: while on, tensors made Uninitialized are filled with NaN, so a kernel that
// leaves part of its output unwritten fails a comparison instead of passing on the stale
// values a recycled block still holds. Off by default (the unit tests turn it on).
void poison_uninitialized(bool on);

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::size_t seq, std::size_t heads, std::size_t dim);  // zero-filled
  // Values left unset: only for outputs a kernel writes in full before anything reads them.
  struct Uninitialized {};
  Tensor(std::size_t seq, std::size_t heads, std::size_t dim, Uninitialized);
  // Takes `values` (seq * heads * dim of them, in layout order) without copying.
  Tensor(std::size_t seq, std::size_t heads, std::size_t dim, UninitFloats&& values);
  explicit Tensor(const TensorShape& shape) : Tensor(shape.seq, shape.heads, shape.dim) {}

  const TensorShape& shape() const { return shape_; }
  std::size_t seq() const { return shape_.seq; }
  std::size_t heads() const { return shape_.heads; }
  std::size_t dim() const { return shape_.dim; }
  std::size_t size() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::span<float> values() { return {data_.data(), data_.size()}; }
  std::span<const float> values() const { return {data_.data(), data_.size()}; }

  // The dim floats of position t, head h.
  float* row(std::size_t t, std::size_t h) { return data_.data() + (t * shape_.heads + h) * shape_.dim; }
  const float* row(std::size_t t, std::size_t h) const {
    return data_.data() + (t * shape_.heads + h) * shape_.dim;
  }
  float& at(std::size_t t, std::size_t h, std::size_t d) { return row(t, h)[d]; }
  float at(std::size_t t, std::size_t h, std::size_t d) const { return row(t, h)[d]; }

  // Positions [0, count) (count <= seq) as a tensor of their own: a prefix of the sequence.
  Tensor first_rows(std::size_t count) const;

 private:
  void allocate(bool zero);

  TensorShape shape_;
  UninitFloats data_;
};

}  // namespace rvt
