#include "rvt/io/npy.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <string_view>
#include <utility>

#include "rvt/core/error.hpp"
#include "rvt/core/text.hpp"
#include "rvt/core/half.hpp"
#include "rvt/io/file.hpp"

namespace rvt::io {

static_assert(std::endian::native == std::endian::little,
              "the .npy reader/writer copies little-endian data as-is");
static_assert(sizeof(std::size_t) == 8, "shape dimensions are stored as 64-bit sizes");

namespace {

constexpr std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr std::size_t kAlign = 64;               // NumPy's ARRAY_ALIGN
constexpr std::size_t kGrowthAxisMaxDigits = 21;  // NumPy's GROWTH_AXIS_MAX_DIGITS
constexpr int kMaxDepth = 32;                     // nesting limit of the header parser
// A float array's header is a few hundred bytes; these limits keep a hostile header
// from costing more than a little memory and time.
constexpr std::uint64_t kMaxHeaderLen = std::uint64_t{1} << 20;
constexpr std::size_t kMaxHeaderValues = 4096;

template <typename Int>
std::string shape_text(const std::vector<Int>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// Printable rendering of (part of) a header for error messages.
std::string printable(std::string_view text, std::size_t max_chars = 96) {
  return one_line(text.substr(0, max_chars), true) + (text.size() > max_chars ? "..." : "");
}

// ---------------------------------------------------------------------------------
// A small parser for the Python literal NumPy writes as the header: a dict of
// strings, ints, booleans, None, tuples and lists (what ast.literal_eval would take
// for these types). Tolerant of quoting style, key order, spacing, trailing commas.

struct PyValue {
  enum class Kind { kStr, kInt, kBool, kNone, kTuple, kList, kDict };
  Kind kind = Kind::kNone;
  std::string str;                // kStr
  std::uint64_t magnitude = 0;    // kInt
  bool negative = false;          // kInt
  bool overflow = false;          // kInt: does not fit 64 bits
  bool boolean = false;           // kBool
  std::vector<PyValue> items;     // kTuple, kList; dict values
  std::vector<std::string> keys;  // kDict
};

const char* kind_name(PyValue::Kind k) {
  switch (k) {
    case PyValue::Kind::kStr: return "a string";
    case PyValue::Kind::kInt: return "an int";
    case PyValue::Kind::kBool: return "a bool";
    case PyValue::Kind::kNone: return "None";
    case PyValue::Kind::kTuple: return "a tuple";
    case PyValue::Kind::kList: return "a list";
    case PyValue::Kind::kDict: return "a dict";
  }
  return "?";
}

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  PyValue parse_document() {
    PyValue v = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw_bad_input(name_ + ": malformed .npy header: " + what + " at offset " +
                    std::to_string(pos_) + " of header \"" + printable(text_) + "\"");
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_space() {
    while (!at_end()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  static bool is_ident(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
  }

  PyValue parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    if (++values_ > kMaxHeaderValues) {
      fail("more than " + std::to_string(kMaxHeaderValues) + " values");
    }
    skip_space();
    if (at_end()) fail("unexpected end of header");
    const char c = peek();
    if (c == '{') return parse_dict(depth);
    if (c == '(') return parse_tuple(depth);
    if (c == '[') return parse_list(depth);
    if (c == '\'' || c == '"') return parse_string();
    if ((c == 'u' || c == 'U') && pos_ + 1 < text_.size() &&
        (text_[pos_ + 1] == '\'' || text_[pos_ + 1] == '"')) {
      ++pos_;  // u'...' (Python 2 era unicode literal)
      return parse_string();
    }
    if (c == '-' || c == '+' || (c >= '0' && c <= '9')) return parse_int();
    if (is_ident(c)) {
      const std::size_t start = pos_;
      while (!at_end() && is_ident(peek())) ++pos_;
      const std::string_view word = text_.substr(start, pos_ - start);
      PyValue v;
      if (word == "True" || word == "False") {
        v.kind = PyValue::Kind::kBool;
        v.boolean = word == "True";
      } else if (word == "None") {
        v.kind = PyValue::Kind::kNone;
      } else {
        pos_ = start;
        fail("unknown name '" + printable(word, 32) + "'");
      }
      return v;
    }
    fail(std::string("unexpected character '") + printable(text_.substr(pos_, 1)) + "'");
  }

  PyValue parse_string() {
    const char quote = text_[pos_++];
    PyValue v;
    v.kind = PyValue::Kind::kStr;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = text_[pos_++];
      if (c == quote) break;
      if (c == '\n') fail("newline inside a string");
      if (c == '\\') {
        if (at_end()) fail("unterminated string");
        const char e = text_[pos_++];
        switch (e) {
          case '\\': case '\'': case '"': v.str += e; break;
          case 'n': v.str += '\n'; break;
          case 't': v.str += '\t'; break;
          default: --pos_; fail("unsupported escape in a string");
        }
        continue;
      }
      v.str += c;
    }
    return v;
  }

  PyValue parse_int() {
    PyValue v;
    v.kind = PyValue::Kind::kInt;
    if (peek() == '-' || peek() == '+') {
      v.negative = peek() == '-';
      ++pos_;
      skip_space();  // Python allows "- 5"
    }
    if (!(peek() >= '0' && peek() <= '9')) fail("expected digits");
    const bool leading_zero = peek() == '0';
    std::size_t digits = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      const auto d = static_cast<std::uint64_t>(peek() - '0');
      if (v.magnitude > (std::numeric_limits<std::uint64_t>::max() - d) / 10) v.overflow = true;
      v.magnitude = v.magnitude * 10 + d;  // meaningless once overflow is set
      ++pos_;
      ++digits;
    }
    // "010": octal in Python 2, an error in Python 3 (np.load refuses it); never read as ten.
    // "00" is zero in Python 3 too.
    if (leading_zero && digits > 1 && (v.magnitude != 0 || v.overflow)) fail("a number with a leading zero");
    if (peek() == 'L') ++pos_;  // Python 2's long suffix, as its repr (and so numpy) wrote it
    if (is_ident(peek()) || peek() == '.') fail("unsupported number literal");
    return v;
  }

  // Items up to `close`, comma separated, trailing comma allowed. Returns whether a
  // comma was seen (to tell "(5)" from "(5,)").
  bool parse_items(char close, int depth, std::vector<PyValue>& out) {
    ++pos_;  // the opening bracket
    bool comma = false;
    while (true) {
      skip_space();
      if (at_end()) fail(std::string("missing '") + close + "'");
      if (peek() == close) {
        ++pos_;
        return comma;
      }
      out.push_back(parse_value(depth + 1));
      skip_space();
      if (peek() == ',') {
        ++pos_;
        comma = true;
      } else if (peek() != close) {
        fail(std::string("expected ',' or '") + close + "'");
      }
    }
  }

  PyValue parse_tuple(int depth) {
    PyValue v;
    v.kind = PyValue::Kind::kTuple;
    const bool comma = parse_items(')', depth, v.items);
    // "(5)" is the parenthesized value 5, not a tuple.
    if (v.items.size() == 1 && !comma) return std::move(v.items[0]);
    return v;
  }

  PyValue parse_list(int depth) {
    PyValue v;
    v.kind = PyValue::Kind::kList;
    parse_items(']', depth, v.items);
    return v;
  }

  PyValue parse_dict(int depth) {
    PyValue v;
    v.kind = PyValue::Kind::kDict;
    ++pos_;  // '{'
    while (true) {
      skip_space();
      if (at_end()) fail("missing '}'");
      if (peek() == '}') {
        ++pos_;
        return v;
      }
      const std::size_t key_pos = pos_;
      PyValue key = parse_value(depth + 1);
      if (key.kind != PyValue::Kind::kStr) {
        pos_ = key_pos;
        fail("dict key is not a string");
      }
      for (const auto& k : v.keys) {
        if (k == key.str) {
          pos_ = key_pos;
          fail("duplicate key '" + printable(key.str, 32) + "'");
        }
      }
      skip_space();
      if (peek() != ':') fail("expected ':' after a dict key");
      ++pos_;
      v.keys.push_back(std::move(key.str));
      v.items.push_back(parse_value(depth + 1));
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
  }

  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
};

// ---------------------------------------------------------------------------------

enum class Elem { kF16, kF32, kF64 };

struct DType {
  Elem elem;
  std::size_t itemsize;
  const char* normalized;  // the little-endian name of the element type
  bool big_endian = false;
};

const char* kind_words(char kind) {
  switch (kind) {
    case 'b': return "boolean";
    case 'i': return "signed integer";
    case 'u': return "unsigned integer";
    case 'c': return "complex";
    case 'f': return "float";
    case 'S': case 'a': return "bytes";
    case 'U': return "unicode string";
    case 'V': return "void/raw";
    case 'M': return "datetime";
    case 'm': return "timedelta";
    default: return nullptr;
  }
}

DType classify_dtype(const PyValue& descr, const std::string& name) {
  if (descr.kind == PyValue::Kind::kList) {
    throw_bad_input(name + ": structured dtype (record array) is not supported; "
                           "save a plain float32 array");
  }
  if (descr.kind != PyValue::Kind::kStr) {
    throw_bad_input(name + ": malformed .npy header: 'descr' is " + kind_name(descr.kind) +
                    ", not a dtype string");
  }
  const std::string& d = descr.str;
  std::string shown = "'";
  shown += printable(d, 32);
  shown += '\'';
  char order = '|';
  std::string_view code = d;
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
    order = code[0];
    code.remove_prefix(1);
  }
  if (!code.empty() && code[0] == 'O') {
    throw_bad_input(name + ": object arrays (dtype " + shown +
                    ") are not supported: they hold pickled Python objects, not numbers");
  }
  const bool is_float = code == "f2" || code == "f4" || code == "f8";
  if (is_float) {
    // '>' big-endian (byte-swapped on reading); '<' little-endian; '=' native and '|' "not
    // applicable" mean little-endian on the little-endian hosts this code is built for
    // (static_assert above).
    const bool big = order == '>';
    if (code == "f2") return {Elem::kF16, 2, "<f2", big};
    if (code == "f4") return {Elem::kF32, 4, "<f4", big};
    return {Elem::kF64, 8, "<f8", big};
  }
  std::string what = "unsupported dtype " + shown;
  if (!code.empty()) {
    if (const char* words = kind_words(code[0])) {
      what += " (" + std::string(words);
      const std::string_view size = code.substr(1);
      if (code[0] == 'f' && !size.empty() && size.find_first_not_of("0123456789") == std::string_view::npos) {
        what += " of " + std::string(size) + " bytes";
      }
      what += ")";
    }
  }
  throw_bad_input(name + ": " + what +
                  "; only float16 '<f2', float32 '<f4' and float64 '<f8' are supported");
}

std::uint16_t load_u16le(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

std::uint32_t load_u32le(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

}  // namespace

std::string shape_str(const std::vector<std::size_t>& shape) { return shape_text(shape); }

namespace {

// std::byteswap is C++23.
std::uint16_t swap_bytes(std::uint16_t x) { return __builtin_bswap16(x); }
std::uint32_t swap_bytes(std::uint32_t x) { return __builtin_bswap32(x); }
std::uint64_t swap_bytes(std::uint64_t x) { return __builtin_bswap64(x); }

// n elements of `dtype` from src (in the file's byte order) into f32.
void decode_values(const DType& dtype, const std::uint8_t* src, std::size_t n, float* out) {
  switch (dtype.elem) {
    case Elem::kF32:
      if (!dtype.big_endian) {
        if (n > 0) std::memcpy(out, src, n * 4);
        break;
      }
      for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, src + i * 4, 4);
        out[i] = std::bit_cast<float>(swap_bytes(bits));
      }
      break;
    case Elem::kF64:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t bits;
        std::memcpy(&bits, src + i * 8, 8);
        out[i] = static_cast<float>(std::bit_cast<double>(dtype.big_endian ? swap_bytes(bits) : bits));
      }
      break;
    case Elem::kF16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t bits = load_u16le(src + i * 2);
        out[i] = f16_to_f32(dtype.big_endian ? swap_bytes(bits) : bits);
      }
      break;
  }
}

// Column-major values (the first index fastest) into row-major `c` of the same shape. Element
// (i0, r) of the file, i0 on the first axis and r the other indices, is at i0 + first * F(r),
// and goes to i0 * rest + C(r) (F, C: the column- and row-major offsets over the other axes).
// Blocks of 64 values along the first axis: for each r in row-major order (an odometer keeps
// F(r)), 64 contiguous reads go to 64 output rows, which stay in L1 while r advances. Reading a
// [262144][4][32] file (128 MiB): 0.29 - 0.33 s, against 0.17 - 0.19 in C order and 0.42 - 0.44
// walking c element by element (2026-11-30).
// Axes of length 1 change no offset and are left out: a header may list thousands of them.
std::vector<std::size_t> axes_longer_than_one(const std::vector<std::size_t>& shape) {
  std::vector<std::size_t> len;
  for (std::size_t d : shape) {
    if (d > 1) len.push_back(d);
  }
  return len;
}
// `len`: axes_longer_than_one of the shape, at least two (with fewer the two orders agree).
void to_c_order(const UninitFloats& f, const std::vector<std::size_t>& len, UninitFloats& c) {
  const std::size_t first = len[0], rest = c.size() / first;
  std::vector<std::size_t> f_stride(len.size(), 1), index(len.size(), 0);  // over axes 1.., in rows of `first`
  for (std::size_t a = 2; a < len.size(); ++a) f_stride[a] = f_stride[a - 1] * len[a - 1];
  constexpr std::size_t kBlock = 64;
  for (std::size_t i0 = 0; i0 < first; i0 += kBlock) {
    const std::size_t n = std::min(kBlock, first - i0);
    std::fill(index.begin(), index.end(), 0);
    std::size_t at = 0;  // F(r)
    for (std::size_t r = 0; r < rest; ++r) {
      const float* src = f.data() + at * first + i0;
      float* dst = c.data() + i0 * rest + r;
      for (std::size_t k = 0; k < n; ++k) dst[k * rest] = src[k];
      for (std::size_t a = len.size(); a-- > 1;) {
        if (++index[a] < len[a]) {
          at += f_stride[a];
          break;
        }
        at -= f_stride[a] * (len[a] - 1);
        index[a] = 0;
      }
    }
  }
}

// What the header says and the checks on it: the element type, the shape, the order, and where
// the data starts. `bytes` holds the file's first bytes (all of its header), `size` is the
// whole file's size: the data size is checked against it, not against the bytes held.
struct Layout {
  DType dtype;
  std::vector<std::uint64_t> dims;
  bool fortran = false;
  std::size_t data_offset = 0;
  std::size_t count = 0;
};

Layout parse_layout(std::span<const std::uint8_t> bytes, std::uint64_t size, const std::string& name) {

  // Magic, version, header length.
  const std::size_t magic_have = size < sizeof kMagic ? size : sizeof kMagic;
  if (magic_have > 0 && std::memcmp(bytes.data(), kMagic, magic_have) != 0) {
    throw_bad_input(name + ": not a .npy file (bad magic: expected \\x93NUMPY)");
  }
  if (size < 8) {
    throw_bad_input(name + ": truncated .npy header: file has " + std::to_string(size) +
                    " bytes, the magic and version need 8");
  }
  const unsigned major = bytes[6], minor = bytes[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    throw_bad_input(name + ": unsupported .npy format version " + std::to_string(major) + "." +
                    std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const std::size_t preamble = major == 1 ? 10 : 12;
  if (size < preamble) {
    throw_bad_input(name + ": truncated .npy header: file has " + std::to_string(size) +
                    " bytes, the version " + std::to_string(major) + ".0 preamble needs " +
                    std::to_string(preamble));
  }
  const std::uint64_t header_len =
      major == 1 ? load_u16le(bytes.data() + 8) : load_u32le(bytes.data() + 8);
  if (header_len > size - preamble) {
    throw_bad_input(name + ": .npy header length " + std::to_string(header_len) +
                    " runs past the end of the file (header needs " +
                    std::to_string(preamble + header_len) + " bytes, file has " +
                    std::to_string(size) + ")");
  }
  if (header_len > kMaxHeaderLen) {
    throw_bad_input(name + ": .npy header length " + std::to_string(header_len) +
                    " is over the limit of " + std::to_string(kMaxHeaderLen) +
                    " bytes (a float array's header is a few hundred)");
  }
  const std::size_t data_offset = preamble + static_cast<std::size_t>(header_len);

  // The header dict.
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + preamble,
                              static_cast<std::size_t>(header_len));
  const PyValue dict = HeaderParser(text, name).parse_document();
  if (dict.kind != PyValue::Kind::kDict) {
    throw_bad_input(name + ": malformed .npy header: it is " + std::string(kind_name(dict.kind)) +
                    ", not a dict: \"" + printable(text) + "\"");
  }
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape_v = nullptr;
  for (std::size_t i = 0; i < dict.keys.size(); ++i) {
    const std::string& k = dict.keys[i];
    if (k == "descr") {
      descr = &dict.items[i];
    } else if (k == "fortran_order") {
      fortran = &dict.items[i];
    } else if (k == "shape") {
      shape_v = &dict.items[i];
    } else {
      throw_bad_input(name + ": malformed .npy header: unexpected key '" + printable(k, 32) +
                      "' (expected exactly 'descr', 'fortran_order', 'shape')");
    }
  }
  for (auto [p, key] : {std::pair{descr, "descr"}, std::pair{fortran, "fortran_order"},
                        std::pair{shape_v, "shape"}}) {
    if (p == nullptr) {
      throw_bad_input(name + ": malformed .npy header: missing key '" + key + "': \"" +
                      printable(text) + "\"");
    }
  }

  const DType dtype = classify_dtype(*descr, name);

  if (fortran->kind != PyValue::Kind::kBool) {
    throw_bad_input(name + ": malformed .npy header: 'fortran_order' is " +
                    kind_name(fortran->kind) + ", not True or False");
  }

  if (shape_v->kind != PyValue::Kind::kTuple) {
    throw_bad_input(name + ": malformed .npy header: 'shape' is " + kind_name(shape_v->kind) +
                    ", not a tuple");
  }
  std::vector<std::uint64_t> dims;
  for (const PyValue& d : shape_v->items) {
    if (d.kind != PyValue::Kind::kInt) {
      throw_bad_input(name + ": malformed .npy header: a 'shape' entry is " + kind_name(d.kind) +
                      ", not an int");
    }
    if (d.negative && (d.magnitude != 0 || d.overflow)) {
      throw_bad_input(name + ": malformed .npy header: negative dimension in 'shape'");
    }
    if (d.overflow) {
      throw_bad_input(name + ": shape dimension does not fit 64 bits: shape is too large");
    }
    dims.push_back(d.magnitude);
  }

  // Element count and byte size, overflow-checked, against the bytes present.
  std::uint64_t count = 1;
  bool overflow = false;
  for (std::uint64_t d : dims) {
    if (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / d) overflow = true;
    count *= d;
  }
  // A zero dimension makes the count 0 whatever the others are.
  for (std::uint64_t d : dims) {
    if (d == 0) {
      overflow = false;
      count = 0;
    }
  }
  if (overflow || count > std::numeric_limits<std::uint64_t>::max() / dtype.itemsize) {
    throw_bad_input(name + ": shape " + shape_text(dims) +
                    " is too large: its element count or byte size overflows 64 bits");
  }
  const std::uint64_t need = count * dtype.itemsize;
  const std::uint64_t have = size - data_offset;
  if (need != have) {
    std::string msg = name + ": data size mismatch: shape " + shape_text(dims) + " of '" +
                      dtype.normalized + "' needs " + std::to_string(need) +
                      " bytes, but " + std::to_string(have) + " bytes follow the header";
    msg += need > have ? " (truncated file)"
                       : " (" + std::to_string(have - need) + " trailing bytes)";
    throw_bad_input(msg);
  }

  // From here on the sizes are bounded by the file's size.
  return Layout{dtype, std::move(dims), fortran->boolean, data_offset, static_cast<std::size_t>(count)};
}

// An array for the layout's values, not yet filled; `fill(out)` decodes them into out. Large
// arrays are checked against the free memory (allocate_aligned) and refused naming the file.
NpyArray decode_array(const Layout& l, const std::string& name, const std::function<void(float*)>& fill) {
  NpyArray out;
  out.source_dtype = l.dtype.normalized;
  out.shape.assign(l.dims.begin(), l.dims.end());
  const std::size_t n = l.count;
  try {
    out.values.resize(n);
  } catch (const std::bad_alloc& e) {
    throw_bad_input(name + ": " + std::to_string(n) + " values need more memory than is available" +
                    out_of_memory_note(e));
  }
  fill(out.values.data());
  if (const std::vector<std::size_t> len = axes_longer_than_one(out.shape); l.fortran && len.size() > 1) {
    UninitFloats c_order;
    try {
      c_order.resize(n);
    } catch (const std::bad_alloc& e) {
      throw_bad_input(name + ": " + std::to_string(n) +
                      " values in fortran_order need twice their memory to reorder, more than is available" +
                      out_of_memory_note(e));
    }
    to_c_order(out.values, len, c_order);
    out.values = std::move(c_order);
  }
  return out;
}

}  // namespace

NpyArray parse_npy(std::span<const std::uint8_t> bytes, const std::string& name) {
  const Layout l = parse_layout(bytes, bytes.size(), name);
  return decode_array(l, name, [&](float* out) { decode_values(l.dtype, bytes.data() + l.data_offset, l.count, out); });
}

NpyArray read_npy(const std::string& path) {
  // The header first, then the data straight into the array a chunk at a time: the file's
  // bytes are never held whole beside the values (a 20 GB input held both, 40 GB).
  const FileHead head = read_head(path, kMaxHeaderLen + 12);
  const Layout l = parse_layout(head.bytes, head.file_bytes, path);
  return decode_array(l, path, [&](float* out) {
    constexpr std::size_t kChunkValues = std::size_t{1} << 20;
    read_chunks(path, l.data_offset, l.count * l.dtype.itemsize, kChunkValues * l.dtype.itemsize,
                [&](std::uint64_t at, std::span<const std::uint8_t> bytes) {
                  decode_values(l.dtype, bytes.data(), bytes.size() / l.dtype.itemsize, out + at / l.dtype.itemsize);
                });
  });
}

Tensor npy_tensor(NpyArray&& a, const std::string& name) {
  if (a.shape.size() != 3) {
    // The two layouts people most often have instead, and the NumPy that makes them fit.
    const std::string hint =
        a.shape.size() == 4 ? "; from [batch][heads][seq][dim] (PyTorch's attention layout) save one batch entry "
                              "as x[b].transpose(1, 0, 2)"
        : a.shape.size() == 2 ? "; one head of [seq][dim] is x[:, None, :]"
                              : "";
    throw_bad_input(name + ": expected a 3-d [seq][heads][dim] array, got shape " + shape_str(a.shape) + " (" +
                    std::to_string(a.shape.size()) + "-d" + hint + ")");
  }
  return Tensor(a.shape[0], a.shape[1], a.shape[2], std::move(a.values));
}

Tensor read_npy_tensor(const std::string& path) { return npy_tensor(read_npy(path), path); }

namespace {

// Everything of a .npy file before its data, for `values` of `shape` (checked to agree).
std::string npy_prefix(std::span<const float> values, const std::vector<std::size_t>& shape) {
  std::uint64_t count = 1;
  bool overflow = false, zero = false;
  for (std::size_t d : shape) {
    if (d == 0) zero = true;
    if (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / d) overflow = true;
    count *= d;
  }
  if (zero) count = 0;
  if ((overflow && !zero) || count != values.size()) {
    throw_bad_input("encode_npy: " + std::to_string(values.size()) +
                    " values do not match shape " + shape_str(shape));
  }

  // Exactly what numpy.lib.format writes: sorted keys, repr values, spare spaces for
  // growing axis 0, then spaces and a newline up to a multiple of 64 bytes.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " +
                       shape_str(shape) + ", }";
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) header.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  const std::size_t hlen = header.size() + 1;  // + '\n'
  std::size_t preamble = 10;
  std::size_t padlen = kAlign - ((preamble + hlen) % kAlign);
  if (hlen + padlen > 0xFFFF) {  // does not fit version 1.0's u16: version 2.0
    preamble = 12;
    padlen = kAlign - ((preamble + hlen) % kAlign);
  }
  const std::size_t total_header = hlen + padlen;

  std::string prefix(reinterpret_cast<const char*>(kMagic), sizeof kMagic);
  prefix += static_cast<char>(preamble == 10 ? 1 : 2);
  prefix += '\0';
  for (std::size_t i = 0; i < preamble - 8; ++i) {
    prefix += static_cast<char>((total_header >> (8 * i)) & 0xFF);
  }
  prefix += header;
  prefix.append(padlen, ' ');
  prefix += '\n';
  return prefix;
}

std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}
std::span<const std::uint8_t> as_bytes(std::span<const float> values) {
  return {reinterpret_cast<const std::uint8_t*>(values.data()), values.size_bytes()};
}

}  // namespace

std::vector<std::uint8_t> encode_npy(std::span<const float> values, const std::vector<std::size_t>& shape) {
  const std::string prefix = npy_prefix(values, shape);
  std::vector<std::uint8_t> out(prefix.begin(), prefix.end());
  const auto data = as_bytes(values);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_npy(const std::string& path, std::span<const float> values,
               const std::vector<std::size_t>& shape) {
  // The header and the values as they are (little-endian floats): the file is never built
  // whole in memory beside the output.
  const std::string prefix = npy_prefix(values, shape);
  write_file_atomic(path, {as_bytes(prefix), as_bytes(values)});
}

void write_npy(const std::string& path, const Tensor& t) {
  write_npy(path, t.values(), {t.seq(), t.heads(), t.dim()});
}

}  // namespace rvt::io
