// RVNE weight blob v1: the container, its checks, its payload layout, and the
// deterministic initialiser. Byte-compatible with the reference Rust toolchain
// (docs/blob-format.md, ../shared/docs/attention-spec.md section 6).
//
// File layout (little-endian):
//   0 magic u32 0x52564E45 | 4 version u16 = 1 | 6 flags u8 (bit 0: 0 f32, 1 f16) | 7 reserved u8
//   8 input_dim | 10 n_q_heads | 12 n_kv_heads | 14 head_dim | 16 n_layers | 18 n_classes (u16 each)
//   20 weights_len u32 | 24 payload | end-4 CRC-32/IEEE over [0, end-4)
//
// Payload, per layer: Wq [in][q*hd], Wk [in][kv*hd], Wv [in][kv*hd], Wo [q*hd][in];
// then the classifier [in][classes]. Row-major.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rvt/core/error.hpp"

namespace rvt::blob {

inline constexpr std::uint32_t kMagic = 0x52564E45;
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 24;
inline constexpr std::size_t kCrcBytes = 4;
inline constexpr std::size_t kMinFileBytes = kHeaderBytes + kCrcBytes;
// The largest file a blob can be: a u32 weights_len of payload.
inline constexpr std::uint64_t kMaxFileBytes = kMinFileBytes + std::uint64_t{UINT32_MAX};
inline constexpr std::uint64_t kDefaultSeed = 0xC5110007DEADBEEFull;

enum class DType : std::uint8_t { kF32 = 0, kF16 = 1 };
const char* dtype_name(DType dtype);
std::size_t dtype_bytes(DType dtype);
DType parse_dtype(const std::string& name);  // "f32" | "f16"; throws kUsage

// The model shape a blob carries. Defaults are the AETHER head.
struct Shape {
  std::uint16_t input_dim = 16;
  std::uint16_t q_heads = 4;
  std::uint16_t kv_heads = 1;
  std::uint16_t head_dim = 32;
  std::uint16_t n_layers = 2;
  std::uint16_t n_classes = 4;
};

struct Header {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  std::uint8_t flags = 0;
  std::uint8_t reserved = 0;
  Shape shape;
  std::uint32_t weights_len = 0;

  DType dtype() const { return (flags & 1u) ? DType::kF16 : DType::kF32; }
};

// The checks of a blob, in the order they are made. The first five are the
// reference's container checks; the rest are rvtemporal's model checks.
enum class Check {
  kOk,
  kTooShort,
  kBadMagic,
  kBadVersion,
  kLengthMismatch,
  kCrcMismatch,
  kZeroDim,
  kGqaDivisibility,
  kLayersOrClasses,
  kElementSize,
  kLayout,
  kNonFinite,
};
const char* check_name(Check check);

// A failed check: an rvt::Error with exit code kBadInput and the check that failed.
class BlobError : public Error {
 public:
  BlobError(Check check, const std::string& message)
      : Error(ExitCode::kBadInput, message), check_(check) {}
  Check check() const { return check_; }

 private:
  Check check_;
};

struct Blob {
  Header header;
  std::vector<std::uint8_t> payload;  // raw little-endian elements
  std::uint32_t stored_crc = 0;
};

// One named weight matrix inside the payload.
struct TensorSlot {
  int layer = -1;  // -1 for the classifier
  std::string name;  // "wq", "wk", "wv", "wo", "classifier"
  std::uint32_t rows = 0, cols = 0;
  std::uint64_t offset_elements = 0;
  std::uint64_t count() const { return std::uint64_t{rows} * cols; }
};

std::uint32_t crc32(std::span<const std::uint8_t> bytes);

// Header validation in the reference order: zero dims, GQA rule, layers/classes.
// Throws BlobError. Used before writing too, so a bad shape is never written.
void validate_shape(const Shape& shape);

// The payload layout formula and its total element count, both in u64 saturating at
// UINT64_MAX (u16 dims allow layouts past 2^64 elements).
std::vector<TensorSlot> payload_layout(const Shape& shape);
std::uint64_t layout_element_count(const Shape& shape);

// What the container checks read: the header and the stored CRC (no payload).
struct Container {
  Header header;
  std::uint32_t stored_crc = 0;
};

// The checks that need only the header (its first kHeaderBytes bytes, or fewer where the
// file is shorter) and the file's size n, in the reference order: too short, magic, version,
// length. Throws BlobError; returns the header's fields.
Header check_header(std::span<const std::uint8_t> head, std::uint64_t n);

// Checks a whole file image: container checks in the reference order, then the shape and
// element-size checks. Throws BlobError on the first failure. Copies nothing.
Container check_container(std::span<const std::uint8_t> bytes);

// check_container, then the payload: copied out of `bytes`, or moved out of `file`, whose
// memory it keeps (the payload moved to its front), so that a large blob is never held twice.
Blob parse(std::span<const std::uint8_t> bytes);
Blob parse(std::vector<std::uint8_t>&& file);

// Model-level checks beyond the container: payload matches the layout formula and
// every weight is finite. Throws BlobError.
void check_loadable(const Blob& blob);

// Decodes the payload to f32 (f16 widened exactly): all of it, or `count` elements from
// element `first` (which must lie inside the payload).
std::vector<float> payload_floats(const Blob& blob);
std::vector<float> payload_floats(const Blob& blob, std::uint64_t first, std::uint64_t count);

// Serialises header + payload with a fresh weights_len and CRC. Validates the shape first.
std::vector<std::uint8_t> encode(const Shape& shape, DType dtype, std::span<const std::uint8_t> payload);

// The reference's deterministic weight stream: xorshift64 + multiplier, mapped to
// (unit - 0.5) * 0.2 in f32. One stream over the payload floats in order.
class InitStream {
 public:
  explicit InitStream(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next_u64();
  float next_weight();

 private:
  std::uint64_t state_;
};

// A complete blob file image filled from InitStream(seed); f16 stores the same
// f32 stream rounded to nearest even.
std::vector<std::uint8_t> init_random_blob(const Shape& shape, std::uint64_t seed, DType dtype);

}  // namespace rvt::blob
