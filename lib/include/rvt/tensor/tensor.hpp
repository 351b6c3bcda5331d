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
#include <vector>

namespace rvt {

template <typename T, std::size_t Align>
struct AlignedAllocator {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = AlignedAllocator<U, Align>;
  };
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U, Align>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Align}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{Align}); }
  template <typename U>
  bool operator==(const AlignedAllocator<U, Align>&) const { return true; }
};

using AlignedFloats = std::vector<float, AlignedAllocator<float, 64>>;

struct TensorShape {
  std::size_t seq = 0, heads = 0, dim = 0;
  bool operator==(const TensorShape&) const = default;
  std::string str() const;  // "[seq, heads, dim]"
};

// seq * heads * dim, throwing rvt::Error(kBadInput) (naming `what`) on overflow or
// on a size no machine could hold.
std::size_t checked_numel(const TensorShape& shape, const std::string& what = "tensor");

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::size_t seq, std::size_t heads, std::size_t dim);  // zero-filled
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

 private:
  TensorShape shape_;
  AlignedFloats data_;
};

}  // namespace rvt
