// Python bindings of csrc/knn for _cuda (see knn/knn.h for the contract). Device pointers arrive
// as ints (torch's data_ptr()), outputs are preallocated by Python; the kernels are queued on
// `stream` and the caller synchronises.
#include "bindings/bindings.h"
#include "bindings/cuda_device.h"
#include "knn/knn.h"

namespace tl {

namespace {

void knn_loo(uintptr_t x, int dtype_code, int64_t rows, int64_t cols, int64_t row_stride, uintptr_t labels,
             int64_t k, uintptr_t nbr_index, uintptr_t nbr_dist, uintptr_t tie_count, uintptr_t tie_same,
             uintptr_t stream) {
  require_cuda_device();
  const MatrixView v = device_matrix(x, dtype_code, rows, cols, row_stride);
  if (k < 1 || k > rows - 1) throw std::invalid_argument("k must be in [1, n_samples-1]");
  py::gil_scoped_release release;
  knn_loo_cuda(v, device_ptr<const int32_t>(labels), k, device_ptr<int64_t>(nbr_index),
               device_ptr<float>(nbr_dist), device_ptr<int64_t>(tie_count), device_ptr<int64_t>(tie_same),
               reinterpret_cast<void*>(stream));
}

}  // namespace

void bind_knn_cuda(py::module_& m) {
  m.def("knn_loo", &knn_loo, py::arg("x"), py::arg("dtype_code"), py::arg("rows"), py::arg("cols"),
        py::arg("row_stride"), py::arg("labels"), py::arg("k"), py::arg("nbr_index"), py::arg("nbr_dist"),
        py::arg("tie_count"), py::arg("tie_same"), py::arg("stream"),
        "Fused leave-one-out k-NN on the device: fills nbr_index (n,k) int64, nbr_dist (n,k) float32, "
        "tie_count (n,) int64 and, with labels, tie_same (n,) int64 (device pointers; labels 0 = None). "
        "Queued on `stream` (a cudaStream_t as int). See csrc/knn/knn.h.");
}

}  // namespace tl
