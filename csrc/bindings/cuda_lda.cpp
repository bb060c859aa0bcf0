// Python bindings of csrc/lda for _cuda (see lda/lda.h for the contract). Device pointers arrive as
// ints (torch data_ptr(); 0 = None), outputs are preallocated by Python and ACCUMULATED into (zero
// them for one shot; gram must be symmetric on entry); kernels are queued on `stream`.
#include "bindings/bindings.h"
#include "bindings/cuda_device.h"
#include "lda/lda.h"

namespace tl {

namespace {

void class_sums(uintptr_t x, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, uintptr_t labels,
                int64_t n_classes, uintptr_t shift, uintptr_t row_weight, uintptr_t counts, uintptr_t sums,
                uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(x, dtype_code, rows, cols, row_stride);
  py::gil_scoped_release release;
  lda_class_sums_cuda(v, device_ptr<const int32_t>(labels), n_classes, device_ptr<const double>(shift),
                      device_ptr<const double>(row_weight), device_ptr<int64_t>(counts), device_ptr<double>(sums),
                      reinterpret_cast<void*>(stream));
}

void gram(uintptr_t x, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, uintptr_t shift,
          uintptr_t row_scale, uintptr_t gram_out, uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(x, dtype_code, rows, cols, row_stride);
  py::gil_scoped_release release;
  lda_gram_cuda(v, device_ptr<const double>(shift), device_ptr<const double>(row_scale), device_ptr<double>(gram_out),
                reinterpret_cast<void*>(stream));
}

void project(uintptr_t x, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, uintptr_t w, uintptr_t b,
             int64_t n_out, uintptr_t out, uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(x, dtype_code, rows, cols, row_stride);
  py::gil_scoped_release release;
  lda_project_cuda(v, device_ptr<const double>(w), device_ptr<const double>(b), n_out, device_ptr<double>(out),
                   reinterpret_cast<void*>(stream));
}

}  // namespace

void bind_lda_cuda(py::module_& m) {
  m.def("lda_class_sums", &class_sums, py::arg("x"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("labels"), py::arg("n_classes"), py::arg("shift"), py::arg("row_weight"),
        py::arg("counts"), py::arg("sums"), py::arg("stream"),
        "counts (C,) int64 += class sizes; sums (C, D) float64 += per-class sums of w_i (x_i - shift) "
        "(device pointers; shift / row_weight 0 = None).");
  m.def("lda_gram", &gram, py::arg("x"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("shift"), py::arg("row_scale"), py::arg("gram"), py::arg("stream"),
        "gram (D, D) float64 += sum_i s_i^2 (x_i - shift)(x_i - shift)^T on the device (upper tiles, mirrored).");
  m.def("lda_project", &project, py::arg("x"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("w"), py::arg("b"), py::arg("n_out"), py::arg("out"), py::arg("stream"),
        "out (n, K) float64 = X W^T + b on the device (W: (K, D) float64, b: (K,) or 0).");
}

}  // namespace tl
