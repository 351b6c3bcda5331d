#include "rvt/blob/blob.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "rvt/core/half.hpp"
#include "rvt/core/hash.hpp"

namespace rvt::blob {
namespace {

std::uint16_t load_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t load_u32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}
void store_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
void store_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

}  // namespace

const char* dtype_name(DType dtype) { return dtype == DType::kF16 ? "f16" : "f32"; }
std::size_t dtype_bytes(DType dtype) { return dtype == DType::kF16 ? 2 : 4; }
DType parse_dtype(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  throw_usage("--dtype: '" + name + "' is not one of f32, f16");
}

const char* check_name(Check check) {
  switch (check) {
    case Check::kOk: return "ok";
    case Check::kTooShort: return "too_short";
    case Check::kBadMagic: return "bad_magic";
    case Check::kBadVersion: return "unsupported_version";
    case Check::kLengthMismatch: return "length_mismatch";
    case Check::kCrcMismatch: return "crc_mismatch";
    case Check::kZeroDim: return "zero_dim";
    case Check::kGqaDivisibility: return "gqa_divisibility";
    case Check::kLayersOrClasses: return "layers_or_classes";
    case Check::kElementSize: return "element_size";
    case Check::kLayout: return "layout_mismatch";
    case Check::kNonFinite: return "non_finite_weights";
  }
  return "unknown";
}

std::uint32_t crc32(std::span<const std::uint8_t> bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t b : bytes) c = kCrcTable[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void validate_shape(const Shape& s) {
  if (s.input_dim == 0 || s.q_heads == 0 || s.kv_heads == 0 || s.head_dim == 0) {
    throw BlobError(Check::kZeroDim,
                    "zero dimension in header (input_dim " + std::to_string(s.input_dim) +
                        ", q_heads " + std::to_string(s.q_heads) + ", kv_heads " +
                        std::to_string(s.kv_heads) + ", head_dim " + std::to_string(s.head_dim) +
                        "): all must be > 0");
  }
  if (s.q_heads % s.kv_heads != 0) {
    throw BlobError(Check::kGqaDivisibility,
                    "q_heads " + std::to_string(s.q_heads) + " is not divisible by kv_heads " +
                        std::to_string(s.kv_heads) + " (GQA requires q_heads % kv_heads == 0)");
  }
  if (s.n_layers < 1 || s.n_classes < 2) {
    throw BlobError(Check::kLayersOrClasses,
                    "n_layers " + std::to_string(s.n_layers) + " and n_classes " +
                        std::to_string(s.n_classes) + ": need n_layers >= 1 and n_classes >= 2");
  }
}

std::vector<TensorSlot> payload_layout(const Shape& s) {
  const std::uint32_t in = s.input_dim;
  const std::uint32_t qd = std::uint32_t{s.q_heads} * s.head_dim;
  const std::uint32_t kvd = std::uint32_t{s.kv_heads} * s.head_dim;
  std::vector<TensorSlot> slots;
  std::uint64_t offset = 0;
  auto add = [&](int layer, const char* name, std::uint32_t rows, std::uint32_t cols) {
    slots.push_back(TensorSlot{layer, name, rows, cols, offset});
    const std::uint64_t count = std::uint64_t{rows} * cols;  // u32 x u32: fits
    offset = count > UINT64_MAX - offset ? UINT64_MAX : offset + count;  // saturates, like the count below
  };
  for (int l = 0; l < s.n_layers; ++l) {
    add(l, "wq", in, qd);
    add(l, "wk", in, kvd);
    add(l, "wv", in, kvd);
    add(l, "wo", qd, in);
  }
  add(-1, "classifier", in, s.n_classes);
  return slots;
}

std::uint64_t layout_element_count(const Shape& s) {
  // Computed directly, saturating at UINT64_MAX: u16 dims allow shapes past 2^64
  // elements (all dims near 65535 and thousands of layers), which must not wrap.
  const std::uint64_t in = s.input_dim;
  const std::uint64_t per_layer =  // Wq + Wk + Wv + Wo; below 2^51 for u16 dims
      2 * in * s.head_dim * (std::uint64_t{s.q_heads} + s.kv_heads);
  const std::uint64_t classifier = in * s.n_classes;
  if (s.n_layers != 0 && per_layer > (UINT64_MAX - classifier) / s.n_layers) return UINT64_MAX;
  return per_layer * s.n_layers + classifier;
}

Header check_header(std::span<const std::uint8_t> head, std::uint64_t n) {
  if (n < kMinFileBytes || head.size() < kHeaderBytes) {
    throw BlobError(Check::kTooShort, "too short: " + std::to_string(n) +
                                          " bytes, an RVNE blob has at least " +
                                          std::to_string(kMinFileBytes));
  }
  const std::uint8_t* p = head.data();
  Header h;
  h.magic = load_u32(p);
  if (h.magic != kMagic) {
    throw BlobError(Check::kBadMagic, "bad magic " + hex32(h.magic) + " (expected " +
                                          hex32(kMagic) + ", bytes 45 4e 56 52)");
  }
  h.version = load_u16(p + 4);
  if (h.version != kVersion) {
    throw BlobError(Check::kBadVersion, "unsupported version " + std::to_string(h.version) +
                                            " (this build reads version 1)");
  }
  h.flags = p[6];
  h.reserved = p[7];
  h.shape.input_dim = load_u16(p + 8);
  h.shape.q_heads = load_u16(p + 10);
  h.shape.kv_heads = load_u16(p + 12);
  h.shape.head_dim = load_u16(p + 14);
  h.shape.n_layers = load_u16(p + 16);
  h.shape.n_classes = load_u16(p + 18);
  h.weights_len = load_u32(p + 20);
  const std::uint64_t expected = std::uint64_t{kMinFileBytes} + h.weights_len;
  if (expected != n) {
    throw BlobError(Check::kLengthMismatch,
                    "length mismatch: header says weights_len " + std::to_string(h.weights_len) +
                        " so the file should be " + std::to_string(expected) + " bytes, it is " +
                        std::to_string(n));
  }
  return h;
}

Container check_container(std::span<const std::uint8_t> bytes) {
  const std::size_t n = bytes.size();
  Container blob;
  blob.header = check_header(bytes, n);
  const Header& h = blob.header;
  const std::uint8_t* p = bytes.data();
  blob.stored_crc = load_u32(p + n - kCrcBytes);
  const std::uint32_t computed = crc32(bytes.first(n - kCrcBytes));
  if (computed != blob.stored_crc) {
    throw BlobError(Check::kCrcMismatch, "crc mismatch: stored " + hex32(blob.stored_crc) +
                                             ", computed " + hex32(computed));
  }
  validate_shape(h.shape);
  const std::size_t elem = dtype_bytes(h.dtype());
  if (h.weights_len % elem != 0) {
    throw BlobError(Check::kElementSize,
                    "payload of " + std::to_string(h.weights_len) +
                        " bytes is not a multiple of the " + dtype_name(h.dtype()) +
                        " element size " + std::to_string(elem));
  }
  return blob;
}

Blob parse(std::span<const std::uint8_t> bytes) {
  const Container c = check_container(bytes);
  Blob blob{c.header, {}, c.stored_crc};
  blob.payload.assign(bytes.begin() + kHeaderBytes, bytes.begin() + kHeaderBytes + c.header.weights_len);
  return blob;
}

Blob parse(std::vector<std::uint8_t>&& file) {
  const Container c = check_container(file);
  Blob blob{c.header, std::move(file), c.stored_crc};
  std::vector<std::uint8_t>& p = blob.payload;
  p.erase(p.begin() + kHeaderBytes + c.header.weights_len, p.end());  // the CRC
  p.erase(p.begin(), p.begin() + kHeaderBytes);  // the header: the payload moves to the front
  return blob;
}

void check_loadable(const Blob& blob) {
  const Header& h = blob.header;
  const std::uint64_t have = h.weights_len / dtype_bytes(h.dtype());
  const std::uint64_t want = layout_element_count(h.shape);
  if (have != want) {
    throw BlobError(Check::kLayout,
                    "payload holds " + std::to_string(have) + " " + dtype_name(h.dtype()) +
                        " values but the layout for this shape needs " + std::to_string(want) +
                        " (a valid container, not a loadable model)");
  }
  // In chunks: the weights as floats at once would hold a large payload twice over.
  constexpr std::uint64_t kChunk = std::uint64_t{1} << 20;
  for (std::uint64_t first = 0; first < have; first += kChunk) {
    const std::vector<float> w = payload_floats(blob, first, std::min(kChunk, have - first));
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (!std::isfinite(w[i])) {
        throw BlobError(Check::kNonFinite, "weight " + std::to_string(first + i) + " is " +
                                               (std::isnan(w[i]) ? "NaN" : "infinite"));
      }
    }
  }
}

std::vector<float> payload_floats(const Blob& blob, std::uint64_t first, std::uint64_t count) {
  const bool f16 = blob.header.dtype() == DType::kF16;
  const std::uint8_t* p = blob.payload.data() + first * (f16 ? 2 : 4);
  std::vector<float> out(static_cast<std::size_t>(count));
  if (f16) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = f16_to_f32(load_u16(p + 2 * i));
  } else {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::bit_cast<float>(load_u32(p + 4 * i));
  }
  return out;
}

std::vector<float> payload_floats(const Blob& blob) {
  return payload_floats(blob, 0, blob.payload.size() / dtype_bytes(blob.header.dtype()));
}

namespace {

// A file's header for a payload of `payload_bytes`, in a buffer with room for the payload
// and the CRC after it (finish_file appends the CRC).
std::vector<std::uint8_t> start_file(const Shape& shape, DType dtype, std::uint64_t payload_bytes) {
  validate_shape(shape);
  if (payload_bytes > UINT32_MAX) {
    throw_bad_input("payload of " + std::to_string(payload_bytes) +
                    " bytes does not fit the u32 weights_len field");
  }
  std::vector<std::uint8_t> out;
  out.reserve(static_cast<std::size_t>(kMinFileBytes + payload_bytes));
  store_u32(out, kMagic);
  store_u16(out, kVersion);
  out.push_back(static_cast<std::uint8_t>(dtype));
  out.push_back(0);
  store_u16(out, shape.input_dim);
  store_u16(out, shape.q_heads);
  store_u16(out, shape.kv_heads);
  store_u16(out, shape.head_dim);
  store_u16(out, shape.n_layers);
  store_u16(out, shape.n_classes);
  store_u32(out, static_cast<std::uint32_t>(payload_bytes));
  return out;
}

void finish_file(std::vector<std::uint8_t>& file) { store_u32(file, crc32(file)); }

}  // namespace

std::vector<std::uint8_t> encode(const Shape& shape, DType dtype, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out = start_file(shape, dtype, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  finish_file(out);
  return out;
}

std::uint64_t InitStream::next_u64() {
  std::uint64_t x = state_;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  state_ = x;
  return x * 2685821657736338717ull;
}

float InitStream::next_weight() {
  const auto u = static_cast<float>(static_cast<std::uint32_t>(next_u64() >> 32));
  const float unit = u / 4294967296.0f;
  return (unit - 0.5f) * 0.2f;
}

std::vector<std::uint8_t> init_random_blob(const Shape& shape, std::uint64_t seed, DType dtype) {
  validate_shape(shape);
  const std::uint64_t count = layout_element_count(shape);
  if (count > UINT32_MAX / dtype_bytes(dtype)) {  // checked before multiplying: no wrap
    throw_bad_input("shape needs " + std::to_string(count) + " " + dtype_name(dtype) +
                    " payload values, more than the u32 weights_len field holds");
  }
  std::vector<std::uint8_t> file = start_file(shape, dtype, count * dtype_bytes(dtype));  // the payload in place
  InitStream stream(seed);
  for (std::uint64_t i = 0; i < count; ++i) {
    const float w = stream.next_weight();
    if (dtype == DType::kF16) {
      store_u16(file, f32_to_f16(w));
    } else {
      store_u32(file, std::bit_cast<std::uint32_t>(w));
    }
  }
  finish_file(file);
  return file;
}

}  // namespace rvt::blob
