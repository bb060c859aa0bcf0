// transferlab bindings: what every _cuda entry point does before touching device pointers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace tl {

// Throws RuntimeError (std::runtime_error) when no CUDA device is usable, instead of letting the
// first kernel launch fail with a driver error.
inline void require_cuda_device() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0) {
    cudaGetLastError();  // clear the sticky error of a failed query
    throw std::runtime_error(std::string("transferlab._cuda: no CUDA device is visible (") +
                             (err != cudaSuccess ? cudaGetErrorString(err) : "0 devices") +
                             "); pass device='cpu'");
  }
}

// A device pointer passed from Python as an int (0 = None).
template <class T>
T* device_ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

}  // namespace tl
