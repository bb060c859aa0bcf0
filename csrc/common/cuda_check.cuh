// transferlab: CUDA error checks and RAII device buffers, for csrc/*/cuda/*.cu only.
// Every CUDA call and kernel launch is checked; failures throw std::runtime_error naming the call.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#define TL_CUDA_CHECK(expr)                                                                  \
  do {                                                                                       \
    cudaError_t tl_err_ = (expr);                                                            \
    if (tl_err_ != cudaSuccess)                                                              \
      throw std::runtime_error(std::string("CUDA error in ") + #expr + ": " +                \
                               cudaGetErrorString(tl_err_) + " (" + __FILE__ + ":" +         \
                               std::to_string(__LINE__) + ")");                             \
  } while (0)

#define TL_CUDA_CHECK_LAUNCH() TL_CUDA_CHECK(cudaGetLastError())

namespace tl {

// Device buffer owned by RAII; allocated on `stream` with cudaMallocAsync so that it follows
// the stream order of the kernels that use it.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(size_t n, cudaStream_t stream) : n_(n), stream_(stream) {
    if (n_ > 0) TL_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ptr_), n_ * sizeof(T), stream_));
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_;
  cudaStream_t stream_;
};

}  // namespace tl
