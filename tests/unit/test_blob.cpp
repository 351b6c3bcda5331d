// RVNE weight blobs: the reference's deterministic init, the container format, every
// rejection with its exact check, and the per-file verdicts of `blob verify`.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "rvt/blob/blob.hpp"
#include "rvt/blob/blob_report.hpp"
#include "rvt/core/error.hpp"
#include "rvt/core/half.hpp"
#include "rvt/core/hash.hpp"
#include "rvt/io/file.hpp"
#include "test_support.hpp"

using namespace rvt;
using rvt::test::TempDir;
using rvt::blob::Check;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes fixture() { return io::read_file(test::data_path("blobs/default.rvne")); }

Bytes default_blob(blob::DType dtype = blob::DType::kF32) {
  return blob::init_random_blob(blob::Shape{}, blob::kDefaultSeed, dtype);
}

std::uint32_t get_u32(const Bytes& b, std::size_t at) {
  return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) | (std::uint32_t{b[at + 2]} << 16) |
         (std::uint32_t{b[at + 3]} << 24);
}
void put_u16(Bytes& b, std::size_t at, std::uint16_t v) {
  b.at(at) = static_cast<std::uint8_t>(v);
  b.at(at + 1) = static_cast<std::uint8_t>(v >> 8);
}
void put_u32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b.at(at + i) = static_cast<std::uint8_t>(v >> (8 * i));
}

// Rewrites the trailing CRC so that the CRC check passes and a later check is reached.
Bytes& reseal(Bytes& b) {
  put_u32(b, b.size() - 4, blob::crc32(std::span<const std::uint8_t>(b).first(b.size() - 4)));
  return b;
}

// A default blob with one u16 header field patched and the CRC recomputed.
Bytes patched_u16(std::size_t offset, std::uint16_t value) {
  Bytes b = default_blob();
  put_u16(b, offset, value);
  return reseal(b);
}

// parse() must fail with exactly `check`, with `fragment` in the message.
void require_rejected(const Bytes& bytes, Check check, const std::string& fragment) {
  try {
    (void)blob::parse(bytes);
    FAIL("parse accepted a blob that should fail " << blob::check_name(check));
  } catch (const blob::BlobError& e) {
    INFO("message: " << e.what());
    REQUIRE(blob::check_name(e.check()) == std::string(blob::check_name(check)));
    REQUIRE(e.code() == ExitCode::kBadInput);
    REQUIRE_THAT(e.what(), Catch::Contains(fragment));
  }
}

// check_loadable() must fail with exactly `check` on a blob that parses.
void require_not_loadable(const Bytes& bytes, Check check, const std::string& fragment) {
  const blob::Blob parsed = blob::parse(bytes);  // a valid container
  try {
    blob::check_loadable(parsed);
    FAIL("check_loadable accepted a blob that should fail " << blob::check_name(check));
  } catch (const blob::BlobError& e) {
    INFO("message: " << e.what());
    REQUIRE(blob::check_name(e.check()) == std::string(blob::check_name(check)));
    REQUIRE_THAT(e.what(), Catch::Contains(fragment));
  }
}

Bytes zero_payload(std::size_t bytes) { return Bytes(bytes, 0); }


}  // namespace

TEST_CASE("blob: crc32 is CRC-32/IEEE (zlib)", "[blob]") {
  const std::string check = "123456789";
  REQUIRE(blob::crc32(std::span(reinterpret_cast<const std::uint8_t*>(check.data()), check.size())) ==
          0xCBF43926u);
  REQUIRE(blob::crc32({}) == 0x00000000u);
  const Bytes a{'a'};
  REQUIRE(blob::crc32(a) == 0xE8B7BE43u);
}

TEST_CASE("blob: default init is byte-identical to the reference blob", "[blob]") {
  const Bytes ref = fixture();
  REQUIRE(ref.size() == 41244);
  const Bytes mine = default_blob();
  REQUIRE(mine.size() == 41244);
  REQUIRE(mine == ref);
  REQUIRE(blob::kDefaultSeed == 0xC5110007DEADBEEFull);

  // Header bytes as the spec lays them out.
  REQUIRE(mine[0] == 0x45);
  REQUIRE(mine[1] == 0x4E);
  REQUIRE(mine[2] == 0x56);
  REQUIRE(mine[3] == 0x52);
  REQUIRE(get_u32(mine, 20) == 41216u);
  REQUIRE(get_u32(mine, mine.size() - 4) == 0xDC807956u);

  const blob::Blob b = blob::parse(mine);
  REQUIRE(b.stored_crc == 0xDC807956u);
  REQUIRE(b.header.magic == blob::kMagic);
  REQUIRE(b.header.version == 1);
  REQUIRE(b.header.flags == 0);
  REQUIRE(b.header.reserved == 0);
  REQUIRE(b.header.dtype() == blob::DType::kF32);
  REQUIRE(b.header.shape.input_dim == 16);
  REQUIRE(b.header.shape.q_heads == 4);
  REQUIRE(b.header.shape.kv_heads == 1);
  REQUIRE(b.header.shape.head_dim == 32);
  REQUIRE(b.header.shape.n_layers == 2);
  REQUIRE(b.header.shape.n_classes == 4);
  REQUIRE(b.header.weights_len == 41216u);
  REQUIRE(b.payload.size() == 41216u);
  REQUIRE_NOTHROW(blob::check_loadable(b));

  const std::vector<float> w = blob::payload_floats(b);
  REQUIRE(w.size() == 10304);
  REQUIRE(w[0] == Approx(-0.054492723).margin(1e-9));
  REQUIRE(w[1] == Approx(0.099381581).margin(1e-9));
  REQUIRE(w[2] == Approx(-0.088185102).margin(1e-9));
  REQUIRE(w[3] == Approx(0.020757342).margin(1e-9));
  for (float v : w) {
    REQUIRE(v >= -0.1f);
    REQUIRE(v <= 0.1f);
  }

  // A slice decodes as the same elements; a moved-in file parses as the copied one.
  REQUIRE(blob::payload_floats(b, 5000, 7) == std::vector<float>(w.begin() + 5000, w.begin() + 5007));
  const blob::Container c = blob::check_container(mine);
  REQUIRE(c.stored_crc == b.stored_crc);
  REQUIRE(c.header.weights_len == b.header.weights_len);
  std::vector<std::uint8_t> file = mine;
  const blob::Blob moved = blob::parse(std::move(file));
  REQUIRE(moved.payload == b.payload);
  REQUIRE(moved.stored_crc == b.stored_crc);
  REQUIRE(moved.header.shape.head_dim == b.header.shape.head_dim);
}

TEST_CASE("blob: the init stream is xorshift64 times the multiplier, mapped to -0.1 .. 0.1", "[blob]") {
  // An independent transcription of spec section 6, checked against the library's stream.
  std::uint64_t state = blob::kDefaultSeed;
  blob::InitStream stream(blob::kDefaultSeed);
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t x = state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state = x;
    const std::uint64_t out = x * 2685821657736338717ull;
    REQUIRE(stream.next_u64() == out);
  }
  blob::InitStream a(blob::kDefaultSeed);
  blob::InitStream b(blob::kDefaultSeed);
  for (int i = 0; i < 1000; ++i) {
    const float u = static_cast<float>(static_cast<std::uint32_t>(a.next_u64() >> 32));
    const float expected = (u / 4294967296.0f - 0.5f) * 0.2f;
    REQUIRE(std::bit_cast<std::uint32_t>(b.next_weight()) == std::bit_cast<std::uint32_t>(expected));
  }
}

TEST_CASE("blob: payload layout of the AETHER shape", "[blob]") {
  const std::vector<blob::TensorSlot> slots = blob::payload_layout(blob::Shape{});
  struct Want {
    int layer;
    const char* name;
    std::uint32_t rows, cols;
    std::uint64_t offset;
  };
  const Want want[] = {
      {0, "wq", 16, 128, 0},    {0, "wk", 16, 32, 2048},  {0, "wv", 16, 32, 2560},
      {0, "wo", 128, 16, 3072}, {1, "wq", 16, 128, 5120}, {1, "wk", 16, 32, 7168},
      {1, "wv", 16, 32, 7680},  {1, "wo", 128, 16, 8192}, {-1, "classifier", 16, 4, 10240},
  };
  REQUIRE(slots.size() == 9);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    INFO("slot " << i);
    REQUIRE(slots[i].layer == want[i].layer);
    REQUIRE(slots[i].name == want[i].name);
    REQUIRE(slots[i].rows == want[i].rows);
    REQUIRE(slots[i].cols == want[i].cols);
    REQUIRE(slots[i].offset_elements == want[i].offset);
    REQUIRE(slots[i].count() == std::uint64_t{want[i].rows} * want[i].cols);
  }
  REQUIRE(blob::layout_element_count(blob::Shape{}) == 10304);
}

TEST_CASE("blob: layout of a GQA shape and the element count formula", "[blob]") {
  blob::Shape s;
  s.input_dim = 8;
  s.q_heads = 6;
  s.kv_heads = 2;
  s.head_dim = 4;
  s.n_layers = 3;
  s.n_classes = 5;
  const auto slots = blob::payload_layout(s);
  REQUIRE(slots.size() == 3 * 4 + 1);
  std::uint64_t offset = 0;
  for (const auto& slot : slots) {
    REQUIRE(slot.offset_elements == offset);  // contiguous, in order
    offset += slot.count();
  }
  REQUIRE(slots[0].cols == 24);   // q * hd
  REQUIRE(slots[1].cols == 8);    // kv * hd
  REQUIRE(slots[3].rows == 24);   // Wo is [q*hd][in]
  REQUIRE(slots[3].cols == 8);
  REQUIRE(slots.back().name == "classifier");
  REQUIRE(slots.back().layer == -1);
  REQUIRE(slots.back().rows == 8);
  REQUIRE(slots.back().cols == 5);
  // per layer 2 * in * hd * (q + kv) = 512; three layers plus the 8x5 classifier
  REQUIRE(blob::layout_element_count(s) == 3 * 512 + 40);
  REQUIRE(offset == blob::layout_element_count(s));
}

TEST_CASE("blob: layout element count saturates instead of wrapping for extreme u16 shapes", "[blob]") {
  blob::Shape max{65535, 65535, 65535, 65535, 65535, 65535};
  REQUIRE(blob::layout_element_count(max) == std::numeric_limits<std::uint64_t>::max());
  blob::Shape big{32768, 32768, 32768, 32768, 32768, 2};
  REQUIRE(blob::layout_element_count(big) == (std::uint64_t{1} << 62) + 65536);
  // 4 * (2^62 + 65536) wraps to 262144 bytes in u64: init must still refuse the shape.
  try {
    (void)blob::init_random_blob(big, 1, blob::DType::kF32);
    FAIL("no error");
  } catch (const blob::BlobError&) {
    FAIL("not a shape check failure");
  } catch (const Error& e) {
    REQUIRE(e.code() == ExitCode::kBadInput);
    REQUIRE_THAT(e.what(), Catch::Contains("weights_len"));
  }
  REQUIRE_THROWS_AS(blob::init_random_blob(max, 1, blob::DType::kF16), Error);
  // A header claiming such a shape over a tiny payload is a layout mismatch, not a crash.
  Bytes b = blob::encode(max, blob::DType::kF32, zero_payload(16));
  require_not_loadable(b, Check::kLayout, "layout");
}

TEST_CASE("blob: init is deterministic in the seed", "[blob]") {
  const Bytes a = blob::init_random_blob(blob::Shape{}, 42, blob::DType::kF32);
  const Bytes b = blob::init_random_blob(blob::Shape{}, 42, blob::DType::kF32);
  const Bytes c = blob::init_random_blob(blob::Shape{}, 43, blob::DType::kF32);
  REQUIRE(a == b);
  REQUIRE(a != c);
  REQUIRE(a.size() == c.size());
  REQUIRE(std::equal(a.begin(), a.begin() + 24, c.begin()));  // same header
  REQUIRE(get_u32(a, a.size() - 4) != get_u32(c, c.size() - 4));
  REQUIRE(a != default_blob());
  // Every value differs at least somewhere early: the seed drives the whole stream.
  const auto wa = blob::payload_floats(blob::parse(a));
  const auto wc = blob::payload_floats(blob::parse(c));
  REQUIRE(wa[0] != wc[0]);
}

TEST_CASE("blob: f16 blob stores the f32 stream rounded to nearest even", "[blob]") {
  const Bytes f32 = default_blob(blob::DType::kF32);
  const Bytes f16 = default_blob(blob::DType::kF16);
  REQUIRE(f16.size() == 28 + 2 * 10304);
  REQUIRE(f16[6] == 1);  // flags bit 0
  REQUIRE(get_u32(f16, 20) == 2 * 10304u);

  const blob::Blob b32 = blob::parse(f32);
  const blob::Blob b16 = blob::parse(f16);
  REQUIRE(b16.header.dtype() == blob::DType::kF16);
  REQUIRE(b16.stored_crc == blob::crc32(std::span<const std::uint8_t>(f16).first(f16.size() - 4)));
  REQUIRE_NOTHROW(blob::check_loadable(b16));
  // Same header apart from flags and weights_len.
  REQUIRE(std::equal(f32.begin(), f32.begin() + 6, f16.begin()));
  REQUIRE(std::equal(f32.begin() + 8, f32.begin() + 20, f16.begin() + 8));

  const std::vector<float> w32 = blob::payload_floats(b32);
  REQUIRE(b16.payload.size() == 2 * w32.size());
  for (std::size_t i = 0; i < w32.size(); ++i) {
    const std::uint16_t want = f32_to_f16(w32[i]);
    const std::uint16_t have =
        static_cast<std::uint16_t>(b16.payload[2 * i] | (b16.payload[2 * i + 1] << 8));
    if (have != want) FAIL("f16 element " << i << " is " << have << ", want " << want);
  }
  const std::vector<float> w16 = blob::payload_floats(b16);
  REQUIRE(w16.size() == w32.size());
  for (std::size_t i = 0; i < w32.size(); ++i) {
    // half an ulp: 2^-11 relative for normal halves, 2^-25 absolute below 2^-14
    const double tol = std::fabs(w32[i]) * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
    if (std::fabs(double{w16[i]} - w32[i]) > tol) FAIL("element " << i << ": " << w16[i] << " vs " << w32[i]);
    REQUIRE(w16[i] == f16_to_f32(f32_to_f16(w32[i])));
  }
}

TEST_CASE("blob: encode and parse round-trip a custom f32 shape", "[blob]") {
  blob::Shape s;
  s.input_dim = 8;
  s.q_heads = 6;
  s.kv_heads = 2;
  s.head_dim = 4;
  s.n_layers = 3;
  s.n_classes = 5;
  const std::uint64_t n = blob::layout_element_count(s);
  Bytes payload;
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(i) * 0.25f - 10.0f);
    for (int k = 0; k < 4; ++k) payload.push_back(static_cast<std::uint8_t>(bits >> (8 * k)));
  }
  const Bytes file = blob::encode(s, blob::DType::kF32, payload);
  REQUIRE(file.size() == 28 + payload.size());
  const blob::Blob b = blob::parse(file);
  REQUIRE(b.header.shape.input_dim == 8);
  REQUIRE(b.header.shape.q_heads == 6);
  REQUIRE(b.header.shape.kv_heads == 2);
  REQUIRE(b.header.shape.head_dim == 4);
  REQUIRE(b.header.shape.n_layers == 3);
  REQUIRE(b.header.shape.n_classes == 5);
  REQUIRE(b.header.weights_len == payload.size());
  REQUIRE(b.payload == payload);
  REQUIRE(b.stored_crc == get_u32(file, file.size() - 4));
  REQUIRE_NOTHROW(blob::check_loadable(b));
  const auto w = blob::payload_floats(b);
  REQUIRE(w.size() == n);
  REQUIRE(w[0] == -10.0f);
  REQUIRE(w[n - 1] == static_cast<float>(n - 1) * 0.25f - 10.0f);

  // The seeded initialiser writes the same shape, loadable, with the stream in order.
  const Bytes seeded = blob::init_random_blob(s, 7, blob::DType::kF32);
  const blob::Blob sb = blob::parse(seeded);
  REQUIRE_NOTHROW(blob::check_loadable(sb));
  const auto sw = blob::payload_floats(sb);
  blob::InitStream stream(7);
  for (float v : sw) REQUIRE(std::bit_cast<std::uint32_t>(v) == std::bit_cast<std::uint32_t>(stream.next_weight()));
}

TEST_CASE("blob: too short", "[blob]") {
  require_rejected(Bytes{}, Check::kTooShort, "too short: 0 bytes");
  const Bytes ref = default_blob();
  require_rejected(Bytes(ref.begin(), ref.begin() + 27), Check::kTooShort, "too short: 27 bytes");
  // 28 bytes is the minimum: an empty payload is a container the later checks judge.
  Bytes empty = blob::encode(blob::Shape{}, blob::DType::kF32, {});
  REQUIRE(empty.size() == 28);
  REQUIRE_NOTHROW(blob::parse(empty));
  require_not_loadable(empty, Check::kLayout, "needs 10304");
}

TEST_CASE("blob: bad magic and unsupported version", "[blob]") {
  Bytes b = default_blob();
  b[0] = 0x46;
  require_rejected(reseal(b), Check::kBadMagic, "bad magic 0x52564e46");
  Bytes big_endian = default_blob();
  put_u32(big_endian, 0, 0x454E5652);  // the magic written the wrong way round
  require_rejected(reseal(big_endian), Check::kBadMagic, "bad magic");
  require_rejected(patched_u16(4, 2), Check::kBadVersion, "unsupported version 2");
  require_rejected(patched_u16(4, 0), Check::kBadVersion, "unsupported version 0");
}

TEST_CASE("blob: file length must be 28 + weights_len", "[blob]") {
  const Bytes ref = default_blob();
  Bytes truncated(ref.begin(), ref.end() - 1);
  require_rejected(truncated, Check::kLengthMismatch, "should be 41244 bytes, it is 41243");
  Bytes extra = ref;
  extra.push_back(0);
  require_rejected(extra, Check::kLengthMismatch, "it is 41245");
  // A header claiming a 4 GiB payload over a 41 KB file is rejected from the header
  // alone (the u64 sum does not wrap, nothing the size of the claim is allocated).
  Bytes huge = ref;
  put_u32(huge, 20, 0xFFFFFFFFu);
  require_rejected(huge, Check::kLengthMismatch, "weights_len 4294967295");
  require_rejected(huge, Check::kLengthMismatch, "should be 4294967323 bytes");
}

TEST_CASE("blob: crc mismatch names stored and computed crc", "[blob]") {
  Bytes b = default_blob();
  b[24 + 1000] ^= 0x10;  // one payload bit
  const std::uint32_t computed = blob::crc32(std::span<const std::uint8_t>(b).first(b.size() - 4));
  REQUIRE(computed != 0xDC807956u);
  require_rejected(b, Check::kCrcMismatch, "stored 0xdc807956");
  require_rejected(b, Check::kCrcMismatch, "computed " + hex32(computed));
  // A flipped bit in the CRC field itself, or in the header, is caught the same way.
  Bytes c = default_blob();
  c[c.size() - 1] ^= 0x80;
  require_rejected(c, Check::kCrcMismatch, "crc mismatch");
  Bytes h = default_blob();
  h[8] ^= 0x01;  // input_dim 16 -> 17, CRC not updated
  require_rejected(h, Check::kCrcMismatch, "crc mismatch");
}

TEST_CASE("blob: zero dimensions", "[blob]") {
  for (std::size_t offset : {8, 10, 12, 14}) {
    INFO("header offset " << offset);
    require_rejected(patched_u16(offset, 0), Check::kZeroDim, "zero dimension");
  }
  // kv_heads 0 is a zero dim, reported before (and instead of) dividing by it.
  require_rejected(patched_u16(12, 0), Check::kZeroDim, "kv_heads 0");
}

TEST_CASE("blob: q_heads must be divisible by kv_heads (GQA)", "[blob]") {
  Bytes b = default_blob();
  put_u16(b, 10, 3);
  put_u16(b, 12, 2);
  require_rejected(reseal(b), Check::kGqaDivisibility, "GQA");
  require_rejected(b, Check::kGqaDivisibility, "q_heads 3 is not divisible by kv_heads 2");
  require_rejected(patched_u16(12, 3), Check::kGqaDivisibility, "GQA");  // 4 % 3
  require_rejected(patched_u16(12, 8), Check::kGqaDivisibility, "GQA");  // kv > q
  // q 4, kv 2 and kv 4 divide: those containers parse (and fail the layout instead).
  require_not_loadable(patched_u16(12, 2), Check::kLayout, "layout");
  require_not_loadable(patched_u16(12, 4), Check::kLayout, "layout");
}

TEST_CASE("blob: n_layers >= 1 and n_classes >= 2", "[blob]") {
  require_rejected(patched_u16(16, 0), Check::kLayersOrClasses, "n_layers 0");
  require_rejected(patched_u16(18, 1), Check::kLayersOrClasses, "n_classes 1");
  require_rejected(patched_u16(18, 0), Check::kLayersOrClasses, "n_classes >= 2");
}

TEST_CASE("blob: checks run in the spec's order", "[blob]") {
  // bad version and a bad CRC: the version is checked first
  Bytes v = default_blob();
  put_u16(v, 4, 2);
  require_rejected(v, Check::kBadVersion, "version");
  // bad magic and truncated: magic first
  Bytes m = default_blob();
  m[0] = 0;
  m.pop_back();
  require_rejected(m, Check::kBadMagic, "magic");
  // zero dim with a stale CRC: the CRC first
  Bytes z = default_blob();
  put_u16(z, 8, 0);
  require_rejected(z, Check::kCrcMismatch, "crc");
  // zero dim and GQA violation: zero dim first; GQA violation and zero layers: GQA first
  Bytes zg = default_blob();
  put_u16(zg, 8, 0);
  put_u16(zg, 10, 3);
  put_u16(zg, 12, 2);
  require_rejected(reseal(zg), Check::kZeroDim, "zero");
  Bytes gl = default_blob();
  put_u16(gl, 10, 3);
  put_u16(gl, 12, 2);
  put_u16(gl, 16, 0);
  require_rejected(reseal(gl), Check::kGqaDivisibility, "GQA");
  // layers 0 and an odd f16 payload: layers first
  Bytes le = blob::encode(blob::Shape{}, blob::DType::kF16, zero_payload(7));
  put_u16(le, 16, 0);
  require_rejected(reseal(le), Check::kLayersOrClasses, "n_layers");
}

TEST_CASE("blob: payload must be a whole number of elements", "[blob]") {
  const Bytes odd16 = blob::encode(blob::Shape{}, blob::DType::kF16, zero_payload(7));
  REQUIRE(odd16.size() == 35);
  require_rejected(odd16, Check::kElementSize, "payload of 7 bytes is not a multiple of the f16 element size 2");
  const Bytes six32 = blob::encode(blob::Shape{}, blob::DType::kF32, zero_payload(6));
  require_rejected(six32, Check::kElementSize, "not a multiple of the f32 element size 4");
  // Patched by hand: the default blob minus two payload bytes.
  Bytes cut = default_blob();
  cut.erase(cut.begin() + 24, cut.begin() + 26);
  put_u32(cut, 20, 41214);
  require_rejected(reseal(cut), Check::kElementSize, "41214 bytes");
  // 6 bytes are a whole number of f16 elements.
  REQUIRE_NOTHROW(blob::parse(blob::encode(blob::Shape{}, blob::DType::kF16, zero_payload(6))));
}

TEST_CASE("blob: payload must match the layout formula to be loadable", "[blob]") {
  const Bytes short_payload =
      blob::encode(blob::Shape{}, blob::DType::kF32, zero_payload(4 * 10303));
  require_not_loadable(short_payload, Check::kLayout, "payload holds 10303 f32 values");
  require_not_loadable(short_payload, Check::kLayout, "needs 10304");
  const Bytes long_payload =
      blob::encode(blob::Shape{}, blob::DType::kF32, zero_payload(4 * 10305));
  require_not_loadable(long_payload, Check::kLayout, "10305");
  // The default f32 blob with its dtype flag switched to f16: 20608 halves, not 10304.
  Bytes flagged = default_blob();
  flagged[6] = 1;
  require_not_loadable(reseal(flagged), Check::kLayout, "20608 f16 values");
  // A zero payload of the right length is loadable.
  REQUIRE_NOTHROW(blob::check_loadable(
      blob::parse(blob::encode(blob::Shape{}, blob::DType::kF32, zero_payload(4 * 10304)))));
}

TEST_CASE("blob: NaN and infinite weights are not loadable", "[blob]") {
  Bytes nan = default_blob();
  put_u32(nan, 24 + 4 * 5000, 0x7FC00000u);
  require_not_loadable(reseal(nan), Check::kNonFinite, "weight 5000 is NaN");
  Bytes inf = default_blob();
  put_u32(inf, 24 + 4 * 10303, 0xFF800000u);  // -inf, the last classifier weight
  require_not_loadable(reseal(inf), Check::kNonFinite, "weight 10303 is infinite");
  Bytes h = default_blob(blob::DType::kF16);
  put_u16(h, 24 + 2 * 17, 0x7C00);  // f16 +inf
  require_not_loadable(reseal(h), Check::kNonFinite, "weight 17 is infinite");
}

TEST_CASE("blob: shapes are validated before anything is written", "[blob]") {
  blob::Shape gqa;
  gqa.q_heads = 3;
  gqa.kv_heads = 2;
  try {
    (void)blob::init_random_blob(gqa, 1, blob::DType::kF32);
    FAIL("no error");
  } catch (const blob::BlobError& e) {
    REQUIRE(e.check() == Check::kGqaDivisibility);
  }
  try {
    (void)blob::encode(gqa, blob::DType::kF32, {});
    FAIL("no error");
  } catch (const blob::BlobError& e) {
    REQUIRE(e.check() == Check::kGqaDivisibility);
  }
  blob::Shape classes1;
  classes1.n_classes = 1;
  try {
    blob::validate_shape(classes1);
    FAIL("no error");
  } catch (const blob::BlobError& e) {
    REQUIRE(e.check() == Check::kLayersOrClasses);
  }
  blob::Shape zero;
  zero.head_dim = 0;
  try {
    blob::validate_shape(zero);
    FAIL("no error");
  } catch (const blob::BlobError& e) {
    REQUIRE(e.check() == Check::kZeroDim);
  }
  REQUIRE_NOTHROW(blob::validate_shape(blob::Shape{}));
}

TEST_CASE("blob: dtype names and check names", "[blob]") {
  REQUIRE(blob::parse_dtype("f32") == blob::DType::kF32);
  REQUIRE(blob::parse_dtype("f16") == blob::DType::kF16);
  try {
    (void)blob::parse_dtype("bf16");
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(e.code() == ExitCode::kUsage);
    REQUIRE_THAT(e.what(), Catch::Contains("bf16"));
  }
  REQUIRE(blob::dtype_bytes(blob::DType::kF32) == 4);
  REQUIRE(blob::dtype_bytes(blob::DType::kF16) == 2);
  REQUIRE(std::string(blob::dtype_name(blob::DType::kF16)) == "f16");
  const std::pair<Check, const char*> names[] = {
      {Check::kOk, "ok"},
      {Check::kTooShort, "too_short"},
      {Check::kBadMagic, "bad_magic"},
      {Check::kBadVersion, "unsupported_version"},
      {Check::kLengthMismatch, "length_mismatch"},
      {Check::kCrcMismatch, "crc_mismatch"},
      {Check::kZeroDim, "zero_dim"},
      {Check::kGqaDivisibility, "gqa_divisibility"},
      {Check::kLayersOrClasses, "layers_or_classes"},
      {Check::kElementSize, "element_size"},
      {Check::kLayout, "layout_mismatch"},
      {Check::kNonFinite, "non_finite_weights"},
  };
  for (const auto& [check, name] : names) REQUIRE(std::string(blob::check_name(check)) == name);
}

TEST_CASE("blob: verify_file verdicts", "[blob]") {
  TempDir dir;
  const Bytes ref = default_blob();
  const std::uint64_t digest = xxh3_64(ref);

  const blob::Verdict ok = blob::verify_file(test::data_path("blobs/default.rvne"), std::nullopt);
  REQUIRE(ok.code == ExitCode::kOk);
  REQUIRE(ok.check == "ok");
  REQUIRE(ok.detail["xxh3_file"] == hex64(digest));
  REQUIRE(ok.detail["crc"] == "0xdc807956");
  REQUIRE(ok.detail["file_bytes"] == 41244);

  REQUIRE(blob::verify_file(test::data_path("blobs/default.rvne"), digest).code == ExitCode::kOk);
  const blob::Verdict pinned = blob::verify_file(test::data_path("blobs/default.rvne"), digest ^ 1);
  REQUIRE(pinned.code == ExitCode::kCheckFailed);
  REQUIRE(pinned.check == "digest_mismatch");
  REQUIRE_THAT(pinned.message, Catch::Contains(hex64(digest)));

  const std::string missing = dir.file("missing.rvne");
  const blob::Verdict m = blob::verify_file(missing, std::nullopt);
  REQUIRE(m.code == ExitCode::kIo);
  REQUIRE(m.check == "io");
  REQUIRE_THAT(m.message, Catch::Contains(missing));

  const blob::Verdict d = blob::verify_file(dir.path.string(), std::nullopt);
  REQUIRE(d.code == ExitCode::kIo);
  REQUIRE(d.check == "io");
  REQUIRE_THAT(d.message, Catch::Contains("directory"));

  Bytes bad = ref;
  bad[24 + 7] ^= 0x01;
  const std::string bad_path = dir.file("bad.rvne");
  io::write_file_atomic(bad_path, bad);
  const blob::Verdict c = blob::verify_file(bad_path, std::nullopt);
  REQUIRE(c.code == ExitCode::kCheckFailed);
  REQUIRE(c.check == "crc_mismatch");
  REQUIRE_THAT(c.message, Catch::Contains(bad_path));

  Bytes nan = ref;
  put_u32(nan, 24, 0x7FC00000u);
  const std::string nan_path = dir.file("nan.rvne");
  io::write_file_atomic(nan_path, reseal(nan));
  const blob::Verdict n = blob::verify_file(nan_path, std::nullopt);
  REQUIRE(n.code == ExitCode::kCheckFailed);
  REQUIRE(n.check == "non_finite_weights");
  REQUIRE(n.detail["header"]["n_layers"] == 2);  // the header parsed fine

  const std::string empty_path = dir.file("empty.rvne");
  io::write_file_atomic(empty_path, Bytes{});
  REQUIRE(blob::verify_file(empty_path, std::nullopt).check == "too_short");
}

TEST_CASE("blob: combine picks io over a failed check over ok", "[blob]") {
  auto v = [](ExitCode code) {
    blob::Verdict x;
    x.code = code;
    return x;
  };
  using E = ExitCode;
  REQUIRE(blob::combine({}) == E::kOk);
  REQUIRE(blob::combine({v(E::kOk), v(E::kOk)}) == E::kOk);
  REQUIRE(blob::combine({v(E::kOk), v(E::kCheckFailed)}) == E::kCheckFailed);
  REQUIRE(blob::combine({v(E::kCheckFailed), v(E::kOk)}) == E::kCheckFailed);
  REQUIRE(blob::combine({v(E::kOk), v(E::kIo), v(E::kCheckFailed)}) == E::kIo);
  REQUIRE(blob::combine({v(E::kCheckFailed), v(E::kIo)}) == E::kIo);
  REQUIRE(blob::combine({v(E::kIo)}) == E::kIo);

  std::vector<blob::Verdict> vs{v(E::kOk), v(E::kCheckFailed), v(E::kIo)};
  const auto j = blob::verdicts_json(vs);
  REQUIRE(j["files_total"] == 3);
  REQUIRE(j["files_valid"] == 1);
  REQUIRE(j["files"][0]["valid"] == true);
  REQUIRE(j["files"][1]["exit_code"] == 1);
  REQUIRE(j["files"][2]["exit_code"] == 4);
}

TEST_CASE("blob: inspect_file describes the reference blob", "[blob]") {
  const auto j = blob::inspect_file(test::data_path("blobs/default.rvne"));
  REQUIRE(j["file_bytes"] == 41244);
  REQUIRE(j["payload_bytes"] == 41216);
  REQUIRE(j["element_count"] == 10304);
  REQUIRE(j["layout_element_count"] == 10304);
  REQUIRE(j["crc_stored"] == "0xdc807956");
  REQUIRE(j["crc_computed"] == "0xdc807956");
  REQUIRE(j["xxh3_file"] == hex64(xxh3_64(fixture())));
  REQUIRE(j["header"]["n_q_heads"] == 4);
  REQUIRE(j["loadable"]["ok"] == true);
  REQUIRE(j["tensors"].size() == 9);
  REQUIRE(j["tensors"][8]["name"] == "classifier");
  REQUIRE(j["tensors"][8]["layer"].is_null());
  REQUIRE(j["tensors"][8]["offset_bytes"] == 24 + 4 * 10240);
  REQUIRE(j["tensors"][0]["stats"]["count"] == 2048);
  REQUIRE(j["tensors"][0]["stats"]["min"].get<double>() >= -0.1);
  REQUIRE(j["tensors"][0]["stats"]["max"].get<double>() <= 0.1);

  // A corrupt file is an error (bad input) naming the file; a missing one is I/O.
  TempDir dir;
  Bytes bad = fixture();
  bad[30] ^= 4;
  const std::string bad_path = dir.file("bad.rvne");
  io::write_file_atomic(bad_path, bad);
  try {
    (void)blob::inspect_file(bad_path);
    FAIL("no error");
  } catch (const blob::BlobError& e) {
    REQUIRE(e.check() == Check::kCrcMismatch);
    REQUIRE(e.code() == ExitCode::kBadInput);
    REQUIRE_THAT(e.what(), Catch::StartsWith(bad_path + ": crc mismatch"));
  }
  try {
    (void)blob::inspect_file(dir.file("nope.rvne"));
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(e.code() == ExitCode::kIo);
  }
}
