// NumPy .npy files: a strict, allocation-safe reader and a writer that produces the
// same bytes NumPy's np.save does for a float32 C-order array.
//
// Reading accepts format versions 1.0, 2.0 and 3.0 holding float16, float32 or float64
// data, little- or big-endian, in C or Fortran order; values come back as f32 in C order
// (float16 exactly, float64 rounded to nearest, out-of-range float64 becoming +-inf).
// Everything else (bad magic, other versions, malformed or truncated headers, non-float,
// object or structured dtypes, data whose size does not match the shape) is an
// rvt::Error(kBadInput) whose message starts with the file's name.
// The reader never allocates based on the header before checking the size it implies
// against the bytes actually present. See docs/npy.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "rvt/tensor/tensor.hpp"

namespace rvt::io {

struct NpyArray {
  std::vector<std::size_t> shape;  // empty for a 0-d (scalar) array
  UninitFloats values;             // C order, product(shape) elements (aligned, memory-checked)
  std::string source_dtype;        // element type in the file: "<f2", "<f4" or "<f8" (also for '>' files)
};

// Parses the bytes of a .npy file. `name` (the file name) starts every error message.
NpyArray parse_npy(std::span<const std::uint8_t> bytes, const std::string& name);

// Reads and parses a .npy file: I/O failures are kIo, format errors kBadInput.
NpyArray read_npy(const std::string& path);

// Reads a .npy file that must hold exactly a 3-d [seq][heads][dim] array (seq may be 0).
Tensor read_npy_tensor(const std::string& path);
// The same check and copy for an array already read; `name` starts the error message.
Tensor npy_tensor(NpyArray&& a, const std::string& name);  // takes a's values

// The bytes of a format 1.0 (2.0 only if the header would not fit) '<f4' C-order .npy
// file, byte-identical to np.save. values.size() must equal the product of shape
// (1 for a 0-d shape), else rvt::Error(kBadInput).
std::vector<std::uint8_t> encode_npy(std::span<const float> values,
                                     const std::vector<std::size_t>& shape);

// encode_npy's bytes, written atomically from the values without building them whole (I/O
// failures are kIo).
void write_npy(const std::string& path, const Tensor& t);
void write_npy(const std::string& path, std::span<const float> values,
               const std::vector<std::size_t>& shape);

// "(2, 3, 4)", "(5,)", "()": a shape as Python prints it (used in messages).
std::string shape_str(const std::vector<std::size_t>& shape);

}  // namespace rvt::io
