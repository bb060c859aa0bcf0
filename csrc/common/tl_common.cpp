#include "common/tl_common.h"

namespace tl {

void load_row_f32(const MatrixView& m, int64_t i, int64_t j0, int64_t len, float* dst) {
  const char* row = m.row_ptr(i);
  if (m.dtype == DType::f32) {
    std::memcpy(dst, reinterpret_cast<const float*>(row) + j0, sizeof(float) * len);
    return;
  }
  for (int64_t j = 0; j < len; ++j) dst[j] = load_as_float(row, j0 + j, m.dtype);
}

void load_row_f64(const MatrixView& m, int64_t i, int64_t j0, int64_t len, double* dst) {
  const char* row = m.row_ptr(i);
  if (m.dtype == DType::f64) {
    std::memcpy(dst, reinterpret_cast<const double*>(row) + j0, sizeof(double) * len);
    return;
  }
  for (int64_t j = 0; j < len; ++j) dst[j] = load_as_double(row, j0 + j, m.dtype);
}

}  // namespace tl
