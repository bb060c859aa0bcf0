#include "bindings/bindings.h"

namespace tl {

MatrixView host_matrix(const py::array& a, const char* name, bool is_bf16) {
  const std::string n(name);
  if (a.ndim() != 2) throw std::invalid_argument(n + " must be 2-D (n_samples, n_features), got ndim=" + std::to_string(a.ndim()));
  MatrixView v;
  const char kind = a.dtype().kind();
  const auto item = a.itemsize();
  if (kind == 'f' && item == 4) v.dtype = DType::f32;
  else if (kind == 'f' && item == 8) v.dtype = DType::f64;
  else if (kind == 'f' && item == 2) v.dtype = DType::f16;
  else if (kind == 'u' && item == 2 && is_bf16) v.dtype = DType::bf16;
  else throw std::invalid_argument(n + " has unsupported dtype " + py::str(a.dtype()).cast<std::string>() +
                                   " (kernels take float16/bfloat16/float32/float64)");
  v.rows = a.shape(0);
  v.cols = a.shape(1);
  if (v.cols > 1 && a.strides(1) != (py::ssize_t)item)
    throw std::invalid_argument(n + " must have unit inner stride (row-major rows); copy it with np.ascontiguousarray");
  if (a.strides(0) % (py::ssize_t)item != 0)
    throw std::invalid_argument(n + " row stride is not a multiple of its item size");
  v.row_stride = a.strides(0) / (py::ssize_t)item;
  v.data = a.data();
  return v;
}

MatrixView device_matrix(uintptr_t ptr, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride) {
  if (dtype_code < 0 || dtype_code > 3) throw std::invalid_argument("unknown dtype code " + std::to_string(dtype_code));
  MatrixView v;
  v.data = reinterpret_cast<const void*>(ptr);
  v.dtype = static_cast<DType>(dtype_code);
  v.rows = rows;
  v.cols = cols;
  v.row_stride = row_stride;
  return v;
}

}  // namespace tl
