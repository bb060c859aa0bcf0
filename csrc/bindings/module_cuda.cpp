// transferlab._cuda: the CUDA extension. Importable without a GPU (cudart is static); every
// entry point reports a clear RuntimeError when no device is present.
#include <cuda_runtime.h>

#include "bindings/bindings.h"

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "transferlab CUDA kernels";
  m.attr("architectures") = TL_CUDA_ARCHS;
  m.attr("compiler") = TL_CUDA_COMPILER;
  m.def("device_count", [] {
    int n = 0;
    // No driver or no device: report zero rather than raising, so show_config works everywhere.
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  });
  m.def("device_name", [](int i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("no CUDA device " + std::to_string(i));
    }
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
  });
  m.def("runtime_version", [] {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return v;
  });
  tl::bind_knn_cuda(m);
  tl::bind_leep_cuda(m);
  tl::bind_lda_cuda(m);
}
