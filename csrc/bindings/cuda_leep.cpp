// Python bindings of csrc/leep for _cuda (see leep/leep.h for the contract). Device pointers arrive
// as ints (torch data_ptr(); 0 = None), outputs are preallocated by Python (float64 tensors) and
// kernels are queued on `stream`; leep_row_stats synchronises it (it returns host statistics).
#include "bindings/bindings.h"
#include "bindings/cuda_device.h"
#include "bindings/leep_stats_dict.h"
#include "leep/leep.h"

namespace tl {

namespace {

py::dict row_stats(uintptr_t p, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, bool from_logits,
                   double tol, uintptr_t row_lse, uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(p, dtype_code, rows, cols, row_stride);
  ProbRowStats s;
  {
    py::gil_scoped_release release;
    leep_row_stats_cuda(v, from_logits, tol, &s, device_ptr<double>(row_lse), reinterpret_cast<void*>(stream));
  }
  return prob_row_stats_dict(s);
}

void joint(uintptr_t p, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, uintptr_t labels,
           int64_t n_classes, bool from_logits, uintptr_t row_lse, uintptr_t joint_out, uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(p, dtype_code, rows, cols, row_stride);
  py::gil_scoped_release release;
  leep_joint_cuda(v, device_ptr<const int32_t>(labels), n_classes, from_logits, device_ptr<const double>(row_lse),
                  device_ptr<double>(joint_out), reinterpret_cast<void*>(stream));
}

void eep(uintptr_t p, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, uintptr_t labels,
         int64_t n_classes, bool from_logits, uintptr_t row_lse, uintptr_t cond, uintptr_t eep_out, uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(p, dtype_code, rows, cols, row_stride);
  py::gil_scoped_release release;
  leep_eep_cuda(v, device_ptr<const int32_t>(labels), n_classes, from_logits, device_ptr<const double>(row_lse),
                device_ptr<const double>(cond), device_ptr<double>(eep_out), reinterpret_cast<void*>(stream));
}

}  // namespace

void bind_leep_cuda(py::module_& m) {
  m.def("leep_row_stats", &row_stats, py::arg("p"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("from_logits"), py::arg("tol"), py::arg("row_lse"), py::arg("stream"),
        "Row checks of P on the device -> stats dict (as _C.leep_row_stats); with from_logits, fills row_lse "
        "(n,) float64 (device pointer, required then). Synchronises `stream`.");
  m.def("leep_joint", &joint, py::arg("p"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("labels"), py::arg("n_classes"), py::arg("from_logits"), py::arg("row_lse"),
        py::arg("joint"), py::arg("stream"),
        "joint (C, Z) float64 on the device += onehot(labels)^T P, rows in order (zero it for one shot).");
  m.def("leep_eep", &eep, py::arg("p"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("labels"), py::arg("n_classes"), py::arg("from_logits"), py::arg("row_lse"),
        py::arg("cond"), py::arg("eep"), py::arg("stream"),
        "eep (n,) float64 on the device = sum_z P[i, z] cond[y_i, z] (cond: (C, Z) float64 on the device).");
}

}  // namespace tl
