// The class CSR on the device (declared in common/cuda/class_rows.cuh; logic in common/class_rows.h):
// one thread per chunk for the histogram and the scatter, one per class for the scan.
#include "common/class_rows.h"
#include "common/cuda/class_rows.cuh"
#include "common/cuda_check.cuh"

namespace tl {

namespace cuda_detail {
namespace {

__global__ void hist_kernel(const int32_t* labels, int64_t n, int64_t chunk, int64_t chunks, int64_t C,
                            int32_t* hist) {
  const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t < chunks) class_rows::hist_chunk(labels, n, chunk, t, C, hist);
}

__global__ void scan_kernel(int32_t* hist, int64_t chunks, int64_t C, int64_t* totals) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c < C) class_rows::scan_class(hist, chunks, C, c, totals);
}

__global__ void starts_kernel(const int64_t* totals, int64_t C, int64_t* starts) {
  class_rows::class_starts(totals, C, starts);
}

__global__ void scatter_kernel(const int32_t* labels, int64_t n, int64_t chunk, int64_t chunks, int64_t C,
                               const int64_t* starts, int32_t* hist, int32_t* order) {
  const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t < chunks) class_rows::scatter_chunk(labels, n, chunk, t, C, starts, hist, order);
}

}  // namespace

void build_class_rows(const int32_t* labels, int64_t n, int64_t C, int32_t* order, int64_t* starts,
                      int64_t* totals, cudaStream_t stream) {
  const int64_t chunks = class_rows::num_chunks(n, C), chunk = class_rows::chunk_rows(n, chunks);
  DeviceBuffer<int32_t> hist(chunks * C, stream);
  hist_kernel<<<(unsigned)((chunks + 127) / 128), 128, 0, stream>>>(labels, n, chunk, chunks, C, hist.get());
  TL_CUDA_CHECK_LAUNCH();
  scan_kernel<<<(unsigned)((C + 127) / 128), 128, 0, stream>>>(hist.get(), chunks, C, totals);
  TL_CUDA_CHECK_LAUNCH();
  starts_kernel<<<1, 1, 0, stream>>>(totals, C, starts);
  TL_CUDA_CHECK_LAUNCH();
  scatter_kernel<<<(unsigned)((chunks + 127) / 128), 128, 0, stream>>>(labels, n, chunk, chunks, C, starts,
                                                                       hist.get(), order);
  TL_CUDA_CHECK_LAUNCH();
}

}  // namespace cuda_detail
}  // namespace tl
