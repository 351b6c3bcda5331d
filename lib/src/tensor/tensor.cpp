#include "rvt/tensor/tensor.hpp"

#include <sys/mman.h>

#include "rvt/core/error.hpp"

namespace rvt {
namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;

std::size_t effective_align(std::size_t bytes, std::size_t align) {
  return bytes >= kHugePage && align < kHugePage ? kHugePage : align;
}
}  // namespace

void* allocate_aligned(std::size_t bytes, std::size_t align) {
  const std::size_t a = effective_align(bytes, align);
  void* p = ::operator new(bytes, std::align_val_t{a});
#ifdef MADV_HUGEPAGE
  // A hint: where THP is off, or under a sanitizer's allocator, it fails harmlessly.
  if (a == kHugePage) (void)::madvise(p, bytes - bytes % kHugePage, MADV_HUGEPAGE);
#endif
  return p;
}

void deallocate_aligned(void* p, std::size_t bytes, std::size_t align) noexcept {
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

void Tensor::allocate(bool zero) {
  const std::size_t n = checked_numel(shape_);
  try {
    if (zero) data_.assign(n, 0.0f);
    else data_.resize(n);
  } catch (const std::bad_alloc&) {
    throw_bad_input("tensor " + shape_.str() + " needs " + std::to_string(n * 4) +
                    " bytes: more memory than is available");
  }
}

}  // namespace rvt
