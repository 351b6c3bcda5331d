#include <catch2/catch.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "rvt/core/error.hpp"
#include "rvt/io/file.hpp"
#include "rvt/io/npy.hpp"
#include "rvt/tensor/tensor.hpp"
#include "test_support.hpp"

using namespace rvt;
using rvt::test::TempDir;
using namespace rvt::io;

namespace rvt {
// NpyArray::values (aligned storage) against a plain vector of the expected values.
inline bool operator==(const UninitFloats& got, const std::vector<float>& want) {
  return std::equal(got.begin(), got.end(), want.begin(), want.end());
}
}  // namespace rvt

namespace {

namespace fs = std::filesystem;


using Bytes = std::vector<std::uint8_t>;

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A .npy file with the given header dict text (padded as NumPy does) and data bytes.
Bytes make_npy(const std::string& dict, const Bytes& data, int major = 1) {
  const std::size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  const std::size_t pad = 64 - ((preamble + header.size() + 1) % 64);
  header.append(pad, ' ');
  header += '\n';
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<std::uint8_t>(major), 0};
  for (std::size_t i = 0; i < preamble - 8; ++i) {
    out.push_back(static_cast<std::uint8_t>((header.size() >> (8 * i)) & 0xFF));
  }
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T>
Bytes raw(const std::vector<T>& values) {
  Bytes out(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string f4_dict(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

// parse_npy must throw rvt::Error(kBadInput); returns its message, which must
// name the file.
std::string bad_input_message(const Bytes& bytes, const std::string& name = "q.npy") {
  try {
    (void)parse_npy(bytes, name);
  } catch (const Error& e) {
    INFO(e.what());
    REQUIRE(e.code() == ExitCode::kBadInput);
    const std::string msg = e.what();
    REQUIRE(msg.rfind(name + ": ", 0) == 0);
    return msg;
  }
  FAIL("parse_npy did not throw");
  return "";
}

void require_rejected(const Bytes& bytes, const std::string& fragment) {
  const std::string msg = bad_input_message(bytes);
  INFO("message: " << msg << "\nexpected fragment: " << fragment);
  REQUIRE(msg.find(fragment) != std::string::npos);
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.25f - 3.0f;
  return v;
}

bool python_has_numpy() {
  const std::string cmd = std::string(RVT_PYTHON) + " -c \"import numpy\" >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Runs a Python script (written to dir/script.py) with numpy, returns its stdout.
std::string run_python(const TempDir& dir, const std::string& script) {
  const std::string path = dir.file("script.py");
  {
    std::ofstream f(path);
    f << "import numpy as np\nimport sys\n" << script;
  }
  const std::string cmd = std::string(RVT_PYTHON) + " " + path + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  const int status = ::pclose(pipe);
  INFO("python output:\n" << out);
  REQUIRE(status == 0);
  return out;
}

std::size_t data_offset_of(const Bytes& file) {
  REQUIRE(file.size() >= 10);
  REQUIRE(file[6] == 1);
  return 10 + (file[8] | (file[9] << 8));
}

}  // namespace

TEST_CASE("npy round trip keeps shape and values: 3-d, 1-d, 0-d, empty", "[npy]") {
  const std::vector<std::vector<std::size_t>> shapes = {
      {2, 3, 4}, {5}, {}, {0, 3, 4}, {1, 1, 1}, {7, 0}, {3, 2}};
  for (const auto& shape : shapes) {
    std::size_t n = 1;
    for (auto d : shape) n *= d;
    const std::vector<float> values = ramp(n);
    const Bytes file = encode_npy(values, shape);
    INFO("shape " << shape_str(shape));
    REQUIRE(data_offset_of(file) % 64 == 0);
    REQUIRE(file.size() == data_offset_of(file) + 4 * n);
    const NpyArray a = parse_npy(file, "rt.npy");
    REQUIRE(a.shape == shape);
    REQUIRE(a.source_dtype == "<f4");
    REQUIRE(a.values == values);
  }
  // Specials survive bit-exactly.
  const std::vector<float> specials = {0.0f, -0.0f, std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       std::numeric_limits<float>::denorm_min(),
                                       std::numeric_limits<float>::max()};
  const NpyArray s = parse_npy(encode_npy(specials, {specials.size()}), "s.npy");
  REQUIRE(std::memcmp(s.values.data(), specials.data(), specials.size() * 4) == 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const NpyArray n = parse_npy(encode_npy(std::vector<float>{nan}, {1}), "n.npy");
  REQUIRE(std::isnan(n.values[0]));
}

TEST_CASE("npy header text and alignment are what NumPy writes", "[npy]") {
  const Bytes file = encode_npy(ramp(24), {2, 3, 4});
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }";
  // NumPy adds 21 - len(repr(shape[0])) spare spaces, then pads to 64 with a newline.
  std::string header = dict + std::string(20, ' ');
  header += std::string(128 - 10 - header.size() - 1, ' ') + "\n";
  std::string expected = std::string("\x93NUMPY\x01\x00", 8);
  expected += static_cast<char>(header.size());
  expected += '\0';
  expected += header;
  REQUIRE(file.size() == 128 + 24 * 4);
  REQUIRE(std::string(file.begin(), file.begin() + 128) == expected);

  // 1-d and 0-d spellings.
  const Bytes one = encode_npy(ramp(5), {5});
  const std::string one_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
  REQUIRE(std::string(one.begin() + 10, one.begin() + 128) ==
          one_dict + std::string(117 - one_dict.size(), ' ') + "\n");
  const Bytes zero = encode_npy(ramp(1), {});
  const std::string zero_header(zero.begin() + 10, zero.begin() + 128);
  REQUIRE(zero_header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0) == 0);
  REQUIRE(zero_header.back() == '\n');
  REQUIRE(zero.size() == 128 + 4);

  // Whatever the shape, the data starts at a multiple of 64 and the header ends in '\n'.
  // The 9-digit first dim comes with a trailing 0 dim (no data): only the header matters here,
  // and 12 arrays of 123,456,789 floats made this test take a minute of CI.
  for (std::size_t d0 : {std::size_t{0}, std::size_t{9}, std::size_t{123456789}}) {
    for (std::size_t rank = 1; rank <= 12; ++rank) {
      std::vector<std::size_t> shape(rank, 1);
      shape[0] = d0;
      if (d0 > 9) {
        if (rank == 1) continue;
        shape[rank - 1] = 0;
      }
      std::size_t count = 1;
      for (std::size_t n : shape) count *= n;
      const Bytes f = encode_npy(ramp(count), shape);
      const std::size_t off = data_offset_of(f);
      REQUIRE(off % 64 == 0);
      REQUIRE(f[off - 1] == '\n');
      REQUIRE(parse_npy(f, "a.npy").shape == shape);
    }
  }
}

TEST_CASE("npy write_npy / read_npy / read_npy_tensor on files", "[npy]") {
  TempDir dir;
  Tensor t(3, 2, 5);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(i) - 7.5f;
  write_npy(dir.file("t.npy"), t);
  const Tensor back = read_npy_tensor(dir.file("t.npy"));
  REQUIRE(back.shape() == t.shape());
  REQUIRE(std::memcmp(back.data(), t.data(), t.size() * 4) == 0);
  REQUIRE(back.at(2, 1, 4) == t.at(2, 1, 4));

  // An empty sequence is a valid tensor.
  write_npy(dir.file("empty.npy"), Tensor(0, 4, 8));
  const Tensor e = read_npy_tensor(dir.file("empty.npy"));
  REQUIRE(e.shape() == TensorShape{0, 4, 8});
  REQUIRE(e.empty());

  const std::vector<float> v = ramp(6);
  write_npy(dir.file("v.npy"), v, {6});
  const NpyArray a = read_npy(dir.file("v.npy"));
  REQUIRE(a.shape == std::vector<std::size_t>{6});
  REQUIRE(a.values == v);

  // Writing over a directory is an I/O error.
  REQUIRE(test::code_of([&] { write_npy(dir.file(""), v, {6}); }) == ExitCode::kIo);
  // Values that do not match the shape are refused.
  REQUIRE(test::code_of([&] { (void)encode_npy(v, {2, 2}); }) == ExitCode::kBadInput);
  REQUIRE(test::code_of([&] { (void)encode_npy(v, {}); }) == ExitCode::kBadInput);
  REQUIRE(test::code_of([&] {
            (void)encode_npy(v, {std::size_t{1} << 40, std::size_t{1} << 40, 4});
          }) == ExitCode::kBadInput);
}

TEST_CASE("npy read_npy_tensor requires exactly 3-d and names the shape", "[npy]") {
  TempDir dir;
  write_npy(dir.file("two.npy"), ramp(6), {2, 3});
  write_npy(dir.file("four.npy"), ramp(24), {1, 2, 3, 4});
  write_npy(dir.file("scalar.npy"), ramp(1), {});
  // The 2-d and 4-d messages add the NumPy that makes such an array [seq][heads][dim].
  for (auto [file, shape, hint] : {std::tuple{"two.npy", "(2, 3)", "x[:, None, :]"},
                                   std::tuple{"four.npy", "(1, 2, 3, 4)", "x[b].transpose(1, 0, 2)"},
                                   std::tuple{"scalar.npy", "()", ""}}) {
    const std::string path = dir.file(file);
    try {
      (void)read_npy_tensor(path);
      FAIL("no error for " << file);
    } catch (const Error& e) {
      const std::string msg = e.what();
      INFO(msg);
      REQUIRE(e.code() == ExitCode::kBadInput);
      REQUIRE(msg.find(path) != std::string::npos);
      REQUIRE(msg.find(std::string("shape ") + shape) != std::string::npos);
      REQUIRE(msg.find("3-d") != std::string::npos);
      REQUIRE(msg.find(hint) != std::string::npos);
      CHECK((msg.find("; ") != std::string::npos) == (std::string(hint) != ""));
    }
  }
}

TEST_CASE("npy read_npy on a missing file or a directory is an I/O error", "[npy]") {
  TempDir dir;
  const std::string missing = dir.file("missing.npy");
  try {
    (void)read_npy(missing);
    FAIL("no error");
  } catch (const Error& e) {
    REQUIRE(e.code() == ExitCode::kIo);
    REQUIRE(std::string(e.what()).find(missing) != std::string::npos);
  }
  REQUIRE(test::code_of([&] { (void)read_npy(dir.path.string()); }) == ExitCode::kIo);
  REQUIRE(test::code_of([&] { (void)read_npy_tensor(missing); }) == ExitCode::kIo);
  // A malformed file read from disk is bad input, not I/O.
  write_file_atomic(dir.file("junk.npy"), std::string("hello, not numpy"));
  REQUIRE(test::code_of([&] { (void)read_npy(dir.file("junk.npy")); }) == ExitCode::kBadInput);
}

TEST_CASE("npy header parsing is tolerant of what Python literals allow", "[npy]") {
  const std::vector<float> v = ramp(6);
  const Bytes data = raw(v);
  const std::vector<std::string> dicts = {
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
      "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
      "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,3)}",
      "{ 'descr' :'<f4' ,'fortran_order':False,\n 'shape' : ( 2 , 3 , ) , }",
      "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }",
      "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }",
      "{'descr': u'<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
      "{'descr':'<f4','fortran_order':False,'shape':(2,3)}",
      "\t{'descr': '<f4', 'fortran_order': False, 'shape': (+2, 3), }\r\n",
  };
  for (const auto& dict : dicts) {
    INFO(dict);
    const NpyArray a = parse_npy(make_npy(dict, data), "t.npy");
    REQUIRE(a.shape == std::vector<std::size_t>{2, 3});
    REQUIRE(a.values == v);
    REQUIRE(a.source_dtype == "<f4");
  }
  // A dimension of 0 (or "00", zero in Python 3 too) is a zero, not a leading one.
  REQUIRE(parse_npy(make_npy(f4_dict("(0, 3)"), {}), "t.npy").shape == std::vector<std::size_t>{0, 3});
  REQUIRE(parse_npy(make_npy(f4_dict("(00, 3)"), {}), "t.npy").shape == std::vector<std::size_t>{0, 3});
  // 1-d with trailing comma, 0-d, and versions 2.0 and 3.0 (u32 header length).
  REQUIRE(parse_npy(make_npy(f4_dict("(6,)"), data), "t.npy").shape ==
          std::vector<std::size_t>{6});
  REQUIRE(parse_npy(make_npy(f4_dict("()"), raw(std::vector<float>{2.5f})), "t.npy").values ==
          std::vector<float>{2.5f});
  for (int major : {2, 3}) {
    const NpyArray a = parse_npy(make_npy(f4_dict("(3, 2)"), data, major), "t.npy");
    REQUIRE(a.shape == std::vector<std::size_t>{3, 2});
    REQUIRE(a.values == v);
  }
  // Empty dimensions: no data at all, even when another dimension is huge.
  const NpyArray empty = parse_npy(make_npy(f4_dict("(0, 1099511627776)"), {}), "t.npy");
  REQUIRE(empty.shape == std::vector<std::size_t>{0, std::size_t{1} << 40});
  REQUIRE(empty.values.empty());
}

TEST_CASE("npy converts float64 and float16 data to f32", "[npy]") {
  const std::vector<double> d = {0.1, -2.5, 1e300, -1e-300, 3.0};
  const NpyArray a = parse_npy(
      make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }", raw(d)), "d.npy");
  REQUIRE(a.source_dtype == "<f8");
  REQUIRE(a.values.size() == 5);
  REQUIRE(a.values[0] == static_cast<float>(0.1));
  REQUIRE(a.values[1] == -2.5f);
  REQUIRE(a.values[2] == std::numeric_limits<float>::infinity());
  REQUIRE(a.values[3] == 0.0f);
  REQUIRE(std::signbit(a.values[3]));
  REQUIRE(a.values[4] == 3.0f);

  const std::vector<std::uint16_t> h = {0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00};
  const NpyArray b = parse_npy(
      make_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (5,), }", raw(h)), "h.npy");
  REQUIRE(b.source_dtype == "<f2");
  REQUIRE(b.values == std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24), 65504.0f,
                                         std::numeric_limits<float>::infinity()});
}

TEST_CASE("npy rejects bad magic, versions, truncated or overlong headers", "[npy]") {
  const Bytes good = encode_npy(ramp(24), {2, 3, 4});
  Bytes bad = good;
  bad[0] = 0x92;
  require_rejected(bad, "bad magic");
  require_rejected(to_bytes("PK\x03\x04 a zip file"), "bad magic");
  require_rejected(to_bytes("NUMPY"), "bad magic");
  require_rejected({}, "truncated");
  require_rejected(Bytes(good.begin(), good.begin() + 4), "truncated");
  require_rejected(Bytes(good.begin(), good.begin() + 7), "truncated");
  require_rejected(Bytes(good.begin(), good.begin() + 9), "truncated");
  for (auto [major, minor] : {std::pair{4, 0}, std::pair{0, 0}, std::pair{1, 1}, std::pair{255, 255}}) {
    bad = good;
    bad[6] = static_cast<std::uint8_t>(major);
    bad[7] = static_cast<std::uint8_t>(minor);
    require_rejected(bad, "unsupported .npy format version " + std::to_string(major) + "." +
                              std::to_string(minor));
  }
  // Version 2.0 needs 12 bytes of preamble.
  Bytes v2 = make_npy(f4_dict("(1,)"), raw(ramp(1)), 2);
  require_rejected(Bytes(v2.begin(), v2.begin() + 11), "preamble needs 12");
  // Header length beyond the file.
  bad = good;
  bad[8] = 0xFF;
  bad[9] = 0xFF;
  require_rejected(bad, "header length 65535 runs past the end of the file");
  v2[8] = v2[9] = v2[10] = v2[11] = 0xFF;
  require_rejected(v2, "header length 4294967295 runs past the end of the file");
  require_rejected(Bytes(good.begin(), good.begin() + 100), "runs past the end");
  // A huge (but present) header is refused before it is parsed.
  Bytes huge_header = make_npy(f4_dict("(1,)") + std::string(2u << 20, ' '), raw(ramp(1)), 2);
  require_rejected(huge_header, "is over the limit of 1048576 bytes");
  // So is a header with an absurd number of values (each would cost memory).
  std::string many = "(";
  for (int i = 0; i < 5000; ++i) many += "1, ";
  require_rejected(make_npy(f4_dict(many + ")"), raw(ramp(1)), 2), "more than 4096 values");
}

TEST_CASE("npy rejects malformed header dicts and missing keys", "[npy]") {
  const Bytes data = raw(ramp(3));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{'descr': '<f4', 'fortran_order': False 'shape': (3,), }", "expected ',' or '}'"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (3,), }", "expected ':'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } x", "unexpected text after"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ", "missing '}'"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (3,), }", "malformed .npy header"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,, }", "malformed .npy header"},
      {"{'descr': '<f4', 'fortran_order': false, 'shape': (3,), }", "unknown name 'false'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,), }", "number literal"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'descr': '<f4'}", "duplicate key"},
      {"{1: '<f4', 'fortran_order': False, 'shape': (3,), }", "key is not a string"},
      {"['descr', '<f4']", "not a dict"},
      {"", "unexpected end of header"},
      {"   ", "unexpected end of header"},
      {std::string(200, '(') , "nesting deeper than"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': False}", "missing key 'shape'"},
      {"{'fortran_order': False, 'shape': (3,)}", "missing key 'descr'"},
      {"{'descr': '<f4', 'shape': (3,)}", "missing key 'fortran_order'"},
      {"{}", "missing key"},
      {"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,), }", "'fortran_order' is an int"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [3], }", "'shape' is a list, not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", "'shape' is an int, not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ('3',), }", "entry is a string"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", "negative dimension"},
      {"{'descr': 4, 'fortran_order': False, 'shape': (3,), }", "'descr' is an int"},
      // Python 3 (np.load) refuses both; "010" was Python 2's octal 8, never ten.
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (03,), }", "leading zero"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3l,), }", "number literal"},
  };
  for (const auto& [dict, fragment] : cases) {
    INFO(dict);
    require_rejected(make_npy(dict, data), fragment);
  }
  // A non-ASCII byte in the header is reported, printably.
  const std::string msg =
      bad_input_message(make_npy("{'descr': '<f4', \xff 'fortran_order': False}", data));
  REQUIRE(msg.find("\\xff") != std::string::npos);
}

TEST_CASE("npy rejects unsupported dtypes with precise messages", "[npy]") {
  const auto with_descr = [](const std::string& descr, std::size_t itemsize) {
    return make_npy("{'descr': " + descr + ", 'fortran_order': False, 'shape': (2,), }",
                    Bytes(2 * itemsize, 0));
  };
  require_rejected(with_descr("'<i8'", 8), "unsupported dtype '<i8' (signed integer)");
  require_rejected(with_descr("'|b1'", 1), "unsupported dtype '|b1' (boolean)");
  require_rejected(with_descr("'|u1'", 1), "unsupported dtype '|u1' (unsigned integer)");
  require_rejected(with_descr("'<c8'", 8), "unsupported dtype '<c8' (complex)");
  require_rejected(with_descr("'<f16'", 16), "unsupported dtype '<f16' (float of 16 bytes)");
  require_rejected(with_descr("'<U4'", 16), "unsupported dtype '<U4'");
  require_rejected(with_descr("''", 4), "unsupported dtype ''");
  require_rejected(with_descr("'|O'", 8), "object arrays");
  require_rejected(with_descr("[('a', '<f4'), ('b', '<f4')]", 8), "structured dtype");
  const std::string msg = bad_input_message(with_descr("'<i4'", 4));
  REQUIRE(msg.find("float32 '<f4'") != std::string::npos);
}

TEST_CASE("npy reads big-endian floats, byte-swapped", "[npy]") {
  const auto big = [](const Bytes& little, std::size_t itemsize) {
    Bytes b = little;
    for (std::size_t i = 0; i < b.size(); i += itemsize) std::reverse(b.begin() + i, b.begin() + i + itemsize);
    return b;
  };
  const std::vector<float> f{1.5f, -2.0f, 3.0e-5f};
  const NpyArray a = parse_npy(make_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", big(raw(f), 4)), "b4");
  REQUIRE(a.values == f);
  REQUIRE(a.source_dtype == "<f4");  // the element type; the byte order is the file's business

  const std::vector<double> d{0.1, -1e300, 2.5};
  Bytes d_bytes(d.size() * 8);
  std::memcpy(d_bytes.data(), d.data(), d_bytes.size());
  const NpyArray a8 = parse_npy(make_npy("{'descr': '>f8', 'fortran_order': False, 'shape': (3,), }", big(d_bytes, 8)), "b8");
  REQUIRE(a8.source_dtype == "<f8");
  REQUIRE(a8.values == std::vector<float>{0.1f, -std::numeric_limits<float>::infinity(), 2.5f});

  const std::vector<std::uint16_t> h{0x3C00, 0xC000, 0x7BFF};  // 1, -2, 65504
  Bytes h_bytes(h.size() * 2);
  std::memcpy(h_bytes.data(), h.data(), h_bytes.size());
  const NpyArray a2 = parse_npy(make_npy("{'descr': '>f2', 'fortran_order': False, 'shape': (3,), }", big(h_bytes, 2)), "b2");
  REQUIRE(a2.values == std::vector<float>{1.0f, -2.0f, 65504.0f});
}

TEST_CASE("npy reads fortran_order arrays into C order", "[npy]") {
  // A (2, 3) array [[0, 1, 2], [3, 4, 5]] stored column by column.
  const NpyArray m = parse_npy(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                                        raw(std::vector<float>{0, 3, 1, 4, 2, 5})), "f.npy");
  REQUIRE(m.shape == std::vector<std::size_t>{2, 3});
  REQUIRE(m.values == std::vector<float>{0, 1, 2, 3, 4, 5});

  // (2, 3, 4): element [i][j][k] = 100 i + 10 j + k, at i + 2 (j + 3 k) in the file.
  std::vector<float> column_major(24), row_major(24);
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      for (std::size_t k = 0; k < 4; ++k) {
        const auto value = static_cast<float>(100 * i + 10 * j + k);
        column_major[i + 2 * (j + 3 * k)] = value;
        row_major[(i * 3 + j) * 4 + k] = value;
      }
    }
  }
  const NpyArray t = parse_npy(make_npy("{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3, 4), }", [&] {
                                 Bytes b = raw(column_major);
                                 for (std::size_t i = 0; i < b.size(); i += 4) std::reverse(b.begin() + i, b.begin() + i + 4);
                                 return b;
                               }()),
                               "t.npy");
  REQUIRE(t.values == row_major);

  // Past one block of 64 along the first axis, and with length-1 axes between: (130, 1, 3, 5) and
  // (2, 70, 1, 2, 3), element [i][..][k] at its column-major offset.
  for (const std::vector<std::size_t>& shape : {std::vector<std::size_t>{130, 1, 3, 5}, std::vector<std::size_t>{2, 70, 1, 2, 3}}) {
    std::size_t n = 1;
    for (std::size_t d : shape) n *= d;
    std::vector<float> file(n), want(n);
    std::vector<std::size_t> idx(shape.size(), 0);
    for (std::size_t c_at = 0; c_at < n; ++c_at) {  // idx: the C-order multi-index of c_at
      std::size_t f_at = 0, stride = 1;
      for (std::size_t a = 0; a < shape.size(); ++a) {
        f_at += idx[a] * stride;
        stride *= shape[a];
      }
      file[f_at] = static_cast<float>(c_at);
      want[c_at] = static_cast<float>(c_at);
      for (std::size_t a = shape.size(); a-- > 0;) {
        if (++idx[a] < shape[a]) break;
        idx[a] = 0;
      }
    }
    std::string dims;
    for (std::size_t d : shape) dims += std::to_string(d) + ", ";
    const NpyArray big = parse_npy(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (" + dims + "), }", raw(file)), "b.npy");
    REQUIRE(big.values == want);
  }

  // One dimension, none, or an empty one: the order does not matter.
  REQUIRE(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", raw(ramp(3))), "1").values == ramp(3));
  REQUIRE(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (), }", raw(ramp(1))), "0").values == ramp(1));
  REQUIRE(parse_npy(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (0, 3), }", Bytes{}), "e").values.empty());
  // Length-1 axes by the thousand (a header may hold 4096 values) cost nothing per element.
  std::string ones;
  for (int i = 0; i < 4000; ++i) ones += "1, ";
  const NpyArray wide = parse_npy(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, " + ones + "3), }",
                                           raw(std::vector<float>{0, 3, 1, 4, 2, 5})),
                                  "w.npy");
  REQUIRE(wide.shape.size() == 4002);
  REQUIRE(wide.values == std::vector<float>{0, 1, 2, 3, 4, 5});
  // A size mismatch is still refused.
  require_rejected(make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", raw(ramp(5))),
                   "data size mismatch");
}

TEST_CASE("npy rejects data whose size does not match the shape, without allocating", "[npy]") {
  // 2^40 * 2^40 * 4 elements overflows 64 bits; the file is tiny.
  require_rejected(make_npy(f4_dict("(1099511627776, 1099511627776, 4)"), raw(ramp(4))),
                   "shape (1099511627776, 1099511627776, 4) is too large");
  // Fits 64 bits as a count but not as bytes.
  require_rejected(make_npy(f4_dict("(4611686018427387904,)"), raw(ramp(4))), "too large");
  // A dimension that does not fit 64 bits at all.
  require_rejected(make_npy(f4_dict("(18446744073709551616,)"), raw(ramp(4))), "too large");
  // Huge but representable: the size check fires before any allocation.
  require_rejected(make_npy(f4_dict("(1099511627776, 1024)"), raw(ramp(4))),
                   "needs 4503599627370496 bytes, but 16 bytes follow the header (truncated file)");
  require_rejected(make_npy(f4_dict("(2, 3)"), raw(ramp(5))),
                   "shape (2, 3) of '<f4' needs 24 bytes, but 20 bytes follow the header "
                   "(truncated file)");
  require_rejected(make_npy(f4_dict("(2, 3)"), raw(ramp(7))),
                   "needs 24 bytes, but 28 bytes follow the header (4 trailing bytes)");
  require_rejected(make_npy(f4_dict("(3,)"), Bytes(13, 0)), "(1 trailing bytes)");
  require_rejected(make_npy(f4_dict("()"), {}), "needs 4 bytes, but 0 bytes");
  require_rejected(make_npy(f4_dict("(0, 3)"), raw(ramp(1))), "(4 trailing bytes)");
  require_rejected(
      make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", raw(ramp(2))),
      "of '<f8' needs 16 bytes, but 8 bytes");
}

TEST_CASE("npy parser never crashes: truncations and header byte flips", "[npy]") {
  const std::vector<Bytes> seeds = {encode_npy(ramp(24), {2, 3, 4}), encode_npy(ramp(1), {}),
                                    make_npy(f4_dict("(3, 2)"), raw(ramp(6)), 2),
                                    make_npy("{'descr': '<f8', 'fortran_order': False, "
                                             "'shape': (2,), }",
                                             raw(std::vector<double>{1.0, 2.0}), 3)};
  std::size_t parsed = 0, rejected = 0;
  const auto attempt = [&](const Bytes& b) {
    try {
      const NpyArray a = parse_npy(b, "fuzz.npy");
      std::size_t n = 1;
      for (auto d : a.shape) n *= d;
      REQUIRE(a.values.size() == n);
      ++parsed;
    } catch (const Error& e) {
      REQUIRE(e.code() == ExitCode::kBadInput);
      REQUIRE(std::string(e.what()).rfind("fuzz.npy: ", 0) == 0);
      ++rejected;
    } catch (const std::exception& e) {
      FAIL("unexpected exception type: " << e.what());
    }
  };
  std::mt19937 rng(12345);
  for (const Bytes& seed : seeds) {
    REQUIRE_NOTHROW(parse_npy(seed, "seed.npy"));
    // Every strict prefix is invalid and must be rejected cleanly.
    for (std::size_t len = 0; len < seed.size(); ++len) {
      const std::size_t before = rejected;
      attempt(Bytes(seed.begin(), seed.begin() + static_cast<std::ptrdiff_t>(len)));
      REQUIRE(rejected == before + 1);
    }
    const std::size_t header_end = seed[6] == 1 ? 10 + (seed[8] | (seed[9] << 8))
                                                : 12 + (seed[8] | (seed[9] << 8));
    for (std::size_t pos = 0; pos < header_end; ++pos) {
      for (unsigned mask : {0x01u, 0x02u, 0x04u, 0x08u, 0x10u, 0x20u, 0x40u, 0x80u, 0xFFu}) {
        Bytes b = seed;
        b[pos] = static_cast<std::uint8_t>(b[pos] ^ mask);
        attempt(b);
      }
    }
    // Random multi-byte corruption of the header, including printable noise.
    static const std::string noise = "{}()[],:'\" 0123456789-TrueFalseNone<f4>|=Oshape";
    for (int iter = 0; iter < 3000; ++iter) {
      Bytes b = seed;
      const int flips = 1 + static_cast<int>(rng() % 6);
      for (int k = 0; k < flips; ++k) {
        const std::size_t pos = rng() % header_end;
        b[pos] = (rng() % 2) ? static_cast<std::uint8_t>(rng())
                             : static_cast<std::uint8_t>(noise[rng() % noise.size()]);
      }
      if (rng() % 4 == 0) b.resize(rng() % (b.size() + 1));
      attempt(b);
    }
  }
  REQUIRE(rejected > 0);
  REQUIRE(parsed > 0);  // some flips (spaces, padding) leave a valid file
}

TEST_CASE("npy files we write load in NumPy with the same shape and values", "[npy]") {
  if (!python_has_numpy()) {
    WARN("skipping: " << RVT_PYTHON << " cannot import numpy");
    return;
  }
  TempDir dir;
  const std::vector<float> v = ramp(24);
  write_npy(dir.file("a.npy"), v, {2, 3, 4});
  write_npy(dir.file("s.npy"), ramp(1), {});
  write_npy(dir.file("e.npy"), std::vector<float>{}, {0, 3});
  Tensor t(2, 1, 3);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = 1.0f / static_cast<float>(i + 3);
  write_npy(dir.file("t.npy"), t);
  double sum = 0;
  for (float x : v) sum += x;

  const std::string out = run_python(dir, R"PY(
import io
d = sys.argv[0].rsplit('/', 1)[0]
def same_bytes_as_numpy(name):
    a = np.load(d + '/' + name)
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue() == open(d + '/' + name, 'rb').read()
a = np.load(d + '/a.npy')
print('a', a.shape, a.dtype, repr(float(a.astype(np.float64).sum())), repr(float(a[1, 2, 3])),
      a.flags['C_CONTIGUOUS'], same_bytes_as_numpy('a.npy'))
s = np.load(d + '/s.npy')
print('s', s.shape, s.dtype, repr(float(s)), same_bytes_as_numpy('s.npy'))
e = np.load(d + '/e.npy')
print('e', e.shape, e.dtype, e.size, same_bytes_as_numpy('e.npy'))
t = np.load(d + '/t.npy')
print('t', t.shape, t.dtype, bool((t.ravel() == (1.0 / np.arange(3, 9, dtype=np.float32))).all()),
      same_bytes_as_numpy('t.npy'))
)PY");
  INFO(out);
  // sum of i*0.25-3 for i<24 = 0.25*276 - 72 = -3.0
  REQUIRE(sum == -3.0);
  REQUIRE(out.find("a (2, 3, 4) float32 -3.0 2.75 True True\n") != std::string::npos);
  REQUIRE(out.find("s () float32 -3.0 True\n") != std::string::npos);
  REQUIRE(out.find("e (0, 3) float32 0 True\n") != std::string::npos);
  REQUIRE(out.find("t (2, 1, 3) float32 True True\n") != std::string::npos);
}

TEST_CASE("npy files NumPy writes (f4, f8, f2, versions 1-3) parse exactly", "[npy]") {
  if (!python_has_numpy()) {
    WARN("skipping: " << RVT_PYTHON << " cannot import numpy");
    return;
  }
  TempDir dir;
  run_python(dir, R"PY(
d = sys.argv[0].rsplit('/', 1)[0]
f4 = (np.float32(1) / np.arange(1, 61, dtype=np.float32)).reshape(3, 4, 5)
np.save(d + '/f4.npy', f4)
np.save(d + '/f8.npy', np.arange(7, dtype=np.float64) * 0.1)
np.save(d + '/f2.npy', np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16))
np.save(d + '/scalar.npy', np.float32(4.25))
np.save(d + '/empty.npy', np.zeros((0, 2, 3), dtype=np.float32))
for ver in [(2, 0), (3, 0)]:
    with open(d + '/v%d.npy' % ver[0], 'wb') as f:
        np.lib.format.write_array(f, f4, version=ver)
np.save(d + '/big.npy', f4.astype('>f4'))
np.save(d + '/fortran.npy', np.asfortranarray(f4))
np.save(d + '/fortran_big_f8.npy', np.asfortranarray(f4[0].astype('>f8')))
np.save(d + '/transposed.npy', np.ascontiguousarray(f4.transpose(2, 1, 0)).T)  # F-contiguous
np.save(d + '/int.npy', np.arange(6, dtype=np.int64))
np.save(d + '/bool.npy', np.ones(3, dtype=bool))
np.save(d + '/object.npy', np.array([1, 'x'], dtype=object), allow_pickle=True)
)PY");
  std::vector<float> f4(60);
  for (std::size_t i = 0; i < f4.size(); ++i) {
    f4[i] = 1.0f / static_cast<float>(i + 1);
  }
  for (const std::string name : {"f4.npy", "v2.npy", "v3.npy"}) {
    INFO(name);
    const NpyArray a = read_npy(dir.file(name));
    REQUIRE(a.shape == std::vector<std::size_t>{3, 4, 5});
    REQUIRE(a.source_dtype == "<f4");
    REQUIRE(a.values == f4);
  }
  REQUIRE(parse_npy(read_file(dir.file("v2.npy")), "v2.npy").values == f4);
  const Tensor t = read_npy_tensor(dir.file("f4.npy"));
  REQUIRE(t.shape() == TensorShape{3, 4, 5});
  REQUIRE(t.at(2, 3, 4) == f4[59]);

  // Big-endian and column-major files come back as the same C-order values.
  for (const std::string name : {"big.npy", "fortran.npy", "transposed.npy"}) {
    INFO(name);
    const NpyArray a = read_npy(dir.file(name));
    REQUIRE(a.shape == std::vector<std::size_t>{3, 4, 5});
    REQUIRE(a.values == f4);
  }
  const NpyArray fb = read_npy(dir.file("fortran_big_f8.npy"));
  REQUIRE(fb.shape == std::vector<std::size_t>{4, 5});
  REQUIRE(fb.source_dtype == "<f8");
  REQUIRE(fb.values == std::vector<float>(f4.begin(), f4.begin() + 20));

  const NpyArray f8 = read_npy(dir.file("f8.npy"));
  REQUIRE(f8.source_dtype == "<f8");
  REQUIRE(f8.shape == std::vector<std::size_t>{7});
  for (std::size_t i = 0; i < 7; ++i) REQUIRE(f8.values[i] == static_cast<float>(static_cast<double>(i) * 0.1));

  const NpyArray f2 = read_npy(dir.file("f2.npy"));
  REQUIRE(f2.source_dtype == "<f2");
  REQUIRE(f2.values == std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f});

  const NpyArray s = read_npy(dir.file("scalar.npy"));
  REQUIRE(s.shape.empty());
  REQUIRE(s.values == std::vector<float>{4.25f});

  const Tensor e = read_npy_tensor(dir.file("empty.npy"));
  REQUIRE(e.shape() == TensorShape{0, 2, 3});

  const auto rejects = [&](const std::string& name, const std::string& fragment) {
    const std::string path = dir.file(name);
    try {
      (void)read_npy(path);
      FAIL("no error for " << name);
    } catch (const Error& err) {
      const std::string msg = err.what();
      INFO(msg);
      REQUIRE(err.code() == ExitCode::kBadInput);
      REQUIRE(msg.find(path + ": ") == 0);
      REQUIRE(msg.find(fragment) != std::string::npos);
    }
  };
  rejects("int.npy", "unsupported dtype '<i8'");
  rejects("bool.npy", "unsupported dtype '|b1'");
  rejects("object.npy", "object arrays");
}
