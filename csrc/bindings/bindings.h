// transferlab bindings: one small wrapper file per kernel family and extension module
// (cpu_knn.cpp, cuda_knn.cpp, ...). A wrapper validates, allocates outputs, releases the GIL and
// calls the kernel; no algorithm lives here. The test-only module _cuda_logic_testing keeps its
// bindings in its own file (module_cuda_logic_testing.cpp) and shares only the helpers below.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "common/tl_common.h"

namespace py = pybind11;

namespace tl {

// Views a host numpy array as a MatrixView without copying. Requires ndim == 2, unit inner
// stride (or a single column), and dtype float32/float64/float16, or uint16 with is_bf16 (numpy
// has no bfloat16: Python passes the bit pattern). Throws std::invalid_argument naming `name`.
MatrixView host_matrix(const py::array& a, const char* name, bool is_bf16 = false);

// A device matrix described by Python (pointer from torch/cupy, dtype code = int(DType)).
MatrixView device_matrix(uintptr_t ptr, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride);

// Requires a 1-D contiguous array of `n` elements of type T; returns its data pointer.
template <class T>
const T* host_vector(const py::array& a, int64_t n, const char* name) {
  if (a.ndim() != 1 || a.shape(0) != n)
    throw std::invalid_argument(std::string(name) + " must be 1-D of length " + std::to_string(n));
  if (!py::isinstance<py::array_t<T>>(a) || (a.strides(0) != (py::ssize_t)sizeof(T) && n > 1))
    throw std::invalid_argument(std::string(name) + " must be a contiguous array of " +
                                py::str(py::dtype::of<T>()).cast<std::string>());
  return static_cast<const T*>(a.data());
}

void bind_knn_cpu(py::module_& m);
void bind_knn_cross_cpu(py::module_& m);
void bind_leep_cpu(py::module_& m);
void bind_lda_cpu(py::module_& m);

void bind_knn_cuda(py::module_& m);
void bind_leep_cuda(py::module_& m);
void bind_lda_cuda(py::module_& m);

}  // namespace tl
