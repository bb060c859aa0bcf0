// transferlab: types and checks shared by every kernel family.
//
// Contract for all kernels:
//   * Kernels take raw pointers, shapes and strides; they never see Python, numpy or torch.
//   * Matrices are row-major with unit inner stride; the row stride (in elements) may be larger
//     than the number of columns (row slices) or negative (reversed views). Python normalises every
//     other layout by copying once (transferlab/_arrays.py).
//   * Inputs are const: no kernel writes through an input pointer.
//   * Invalid arguments throw std::invalid_argument (arrives in Python as ValueError) with a message
//     that names the argument; other failures throw std::runtime_error (RuntimeError).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace tl {

// Element types a feature or probability matrix may have. Half types are stored as uint16 bit
// patterns and upcast to float32 per tile, never as a whole-bank copy.
enum class DType : int { f32 = 0, f64 = 1, f16 = 2, bf16 = 3 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
  }
  return "unknown";
}

inline int64_t dtype_size(DType t) { return (t == DType::f64) ? 8 : (t == DType::f32 ? 4 : 2); }

// A read-only row-major matrix view: element (i, j) lives at
//   (const char*)data + (i * row_stride + j) * dtype_size(dtype).
struct MatrixView {
  const void* data = nullptr;
  DType dtype = DType::f32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_stride = 0;  // in elements; may be negative

  const char* row_ptr(int64_t i) const {
    return static_cast<const char*>(data) + (i * row_stride) * dtype_size(dtype);
  }
};

#define TL_CHECK_ARG(cond, msg)                                  \
  do {                                                           \
    if (!(cond)) throw std::invalid_argument(std::string(msg));  \
  } while (0)

#define TL_CHECK_RUNTIME(cond, msg)                           \
  do {                                                        \
    if (!(cond)) throw std::runtime_error(std::string(msg));  \
  } while (0)

// IEEE half -> float, portable (the AVX2 paths use F16C instead; both are exact).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal half: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3FFu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Reads element j of row `row` (a row_ptr) as float32. Used by packing routines; float64 is
// rounded to float32 here, which is the documented tile precision.
inline float load_as_float(const char* row, int64_t j, DType t) {
  switch (t) {
    case DType::f32: return reinterpret_cast<const float*>(row)[j];
    case DType::f64: return static_cast<float>(reinterpret_cast<const double*>(row)[j]);
    case DType::f16: return half_to_float(reinterpret_cast<const uint16_t*>(row)[j]);
    case DType::bf16: return bf16_to_float(reinterpret_cast<const uint16_t*>(row)[j]);
  }
  return 0.f;
}

// Reads element j as float64 (exact for every supported dtype).
inline double load_as_double(const char* row, int64_t j, DType t) {
  if (t == DType::f64) return reinterpret_cast<const double*>(row)[j];
  return static_cast<double>(load_as_float(row, j, t));
}

// Converts row i, columns [j0, j0 + len), to float32 into dst.
void load_row_f32(const MatrixView& m, int64_t i, int64_t j0, int64_t len, float* dst);

// Converts row i, columns [j0, j0 + len), to float64 into dst.
void load_row_f64(const MatrixView& m, int64_t i, int64_t j0, int64_t len, double* dst);

}  // namespace tl
