// CUDA kernels of csrc/lda (contract: lda/lda.h; decomposition: lda/cuda/lda_tiles.h).
//
//   class sums: the stable class CSR (common/cuda/class_rows.cuh), then one thread per
//               (class, column) adding the class's rows in row order: no atomics.
//   Gram:       one CTA per upper tile (64 x 64) of the d x d output, float64 SIMT fma chains
//               over row slabs of 16 through shared memory (4 x 4 micro-tile per thread); the
//               off-diagonal tiles also write their mirror.
//   project:    the same float64 tile product, out (n x K) = X W^T + b.
// Every output element is one chain in a fixed order: deterministic for any launch.
#include <cstdint>

#include "common/cuda/class_rows.cuh"
#include "common/cuda_check.cuh"
#include "common/cuda_load.cuh"
#include "lda/cuda/lda_tiles.h"
#include "lda/lda.h"

namespace tl {
namespace {

using namespace lda_tiles;

constexpr int TB = 64;   // output tile edge
constexpr int RS = 16;   // rows (Gram) or features (project) per shared-memory slab
constexpr int NT = 256;  // 16 x 16 threads, 4 x 4 outputs each
constexpr int TM = TB / 16;

template <DType DT>
__global__ void class_sums_kernel(MatrixView x, const int32_t* order, const int64_t* starts, const int64_t* totals,
                                  int64_t n_classes, const double* shift, const double* w, double* sums) {
  const int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (j >= x.cols) return;
  for (int64_t c = blockIdx.y; c < n_classes; c += gridDim.y) {
    double acc = sums[c * x.cols + j];
    for (int64_t idx = starts[c]; idx < starts[c] + totals[c]; ++idx) {
      const int64_t i = order[idx];
      acc = class_sum_step(acc, load_f64<DT>(x.data, i * x.row_stride + j), shift, j, w, i);
    }
    sums[c * x.cols + j] = acc;
  }
}

__global__ void add_counts_kernel(const int64_t* totals, int64_t n_classes, int64_t* counts) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c < n_classes) counts[c] += totals[c];
}

// Register prefetch of one operand's slab: u of rows [r0, r0 + RS) x columns [c0, c0 + TB),
// element e = tid + s * NT at (row e / TB, column e % TB): consecutive threads, consecutive columns.
struct Prefetch {
  static constexpr int PER = RS * TB / NT;
  double v[PER];
};

template <DType DT>
__device__ __forceinline__ void fetch_u(const MatrixView& x, int64_t r0, int64_t c0, const double* shift,
                                        const double* scale, Prefetch& f) {
#pragma unroll
  for (int s = 0; s < Prefetch::PER; ++s) {
    const int e = threadIdx.x + s * NT;
    const int64_t i = r0 + e / TB, j = c0 + e % TB;
    f.v[s] = (i < x.rows && j < x.cols) ? centred(load_f64<DT>(x.data, i * x.row_stride + j), shift, j, scale, i)
                                        : 0.0;
  }
}

__device__ __forceinline__ void stash_u(const Prefetch& f, double* slab) {
#pragma unroll
  for (int s = 0; s < Prefetch::PER; ++s) slab[threadIdx.x + s * NT] = f.v[s];
}

// Slabs double buffered (the next one is fetched into registers while this one is multiplied);
// one barrier per slab. Each element's chain runs over rows r0 + r in increasing order.
template <DType DT>
__global__ void __launch_bounds__(NT, 2) gram_kernel(MatrixView x, const double* shift, const double* scale,
                                                     double* gram) {
  __shared__ double As[2][RS * TB], Bs[2][RS * TB];
  const int64_t d = x.cols, nbd = (d + TB - 1) / TB;
  int64_t A, B;
  upper_tile(blockIdx.x, nbd, &A, &B);
  const int64_t a0 = A * TB, b0 = B * TB;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  double acc[TM][TM];
#pragma unroll
  for (int u = 0; u < TM; ++u)
#pragma unroll
    for (int v = 0; v < TM; ++v) {
      const int64_t a = a0 + ty + 16 * u, b = b0 + tx + 16 * v;
      acc[u][v] = (a < d && b < d) ? gram[a * d + b] : 0.0;  // accumulate into the caller's gram
    }
  const bool diag = (A == B);
  Prefetch fa, fb;
  fetch_u<DT>(x, 0, a0, shift, scale, fa);
  if (!diag) fetch_u<DT>(x, 0, b0, shift, scale, fb);
  stash_u(fa, As[0]);
  if (!diag) stash_u(fb, Bs[0]);
  __syncthreads();
  const int64_t slabs = (x.rows + RS - 1) / RS;
  for (int64_t sl = 0; sl < slabs; ++sl) {
    const int cur = sl & 1;
    const bool more = sl + 1 < slabs;
    if (more) {
      fetch_u<DT>(x, (sl + 1) * RS, a0, shift, scale, fa);
      if (!diag) fetch_u<DT>(x, (sl + 1) * RS, b0, shift, scale, fb);
    }
    const double* Ap = As[cur];
    const double* Bp = diag ? As[cur] : Bs[cur];
    const int64_t r0 = sl * RS;
    const int rows = x.rows - r0 < RS ? (int)(x.rows - r0) : RS;  // rows past n are not chained
    if (rows == RS) {
#pragma unroll
      for (int r = 0; r < RS; ++r) {
        double av[TM], bv[TM];
#pragma unroll
        for (int u = 0; u < TM; ++u) av[u] = Ap[r * TB + ty + 16 * u];
#pragma unroll
        for (int v = 0; v < TM; ++v) bv[v] = Bp[r * TB + tx + 16 * v];
#pragma unroll
        for (int u = 0; u < TM; ++u)
#pragma unroll
          for (int v = 0; v < TM; ++v) acc[u][v] = gram_step(acc[u][v], av[u], bv[v]);
      }
    } else {
      for (int r = 0; r < rows; ++r) {
#pragma unroll
        for (int u = 0; u < TM; ++u)
#pragma unroll
          for (int v = 0; v < TM; ++v)
            acc[u][v] = gram_step(acc[u][v], Ap[r * TB + ty + 16 * u], Bp[r * TB + tx + 16 * v]);
      }
    }
    if (more) {  // the other buffer was last read before the previous barrier
      stash_u(fa, As[cur ^ 1]);
      if (!diag) stash_u(fb, Bs[cur ^ 1]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < TM; ++u)
#pragma unroll
    for (int v = 0; v < TM; ++v) {
      const int64_t a = a0 + ty + 16 * u, b = b0 + tx + 16 * v;
      if (a < d && b < d) {
        gram[a * d + b] = acc[u][v];
        if (!diag) gram[b * d + a] = acc[u][v];
      }
    }
}

template <DType DT>
__global__ void __launch_bounds__(NT) project_kernel(MatrixView x, const double* W, const double* bias,
                                                     int64_t n_out, double* out) {
  __shared__ double Xs[RS * TB], Ws[RS * TB];  // [feature][row] and [feature][output]
  const int64_t i0 = blockIdx.x * (int64_t)TB, k0 = blockIdx.y * (int64_t)TB, d = x.cols;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  double acc[TM][TM];
#pragma unroll
  for (int u = 0; u < TM; ++u)
#pragma unroll
    for (int v = 0; v < TM; ++v) acc[u][v] = 0.0;
  for (int64_t j0 = 0; j0 < d; j0 += RS) {
    for (int e = threadIdx.x; e < RS * TB; e += NT) {  // consecutive threads: consecutive features
      const int r = e / RS, f = e % RS;
      const int64_t j = j0 + f;
      Xs[f * TB + r] = (i0 + r < x.rows && j < d) ? load_f64<DT>(x.data, (i0 + r) * x.row_stride + j) : 0.0;
      Ws[f * TB + r] = (k0 + r < n_out && j < d) ? W[(k0 + r) * d + j] : 0.0;
    }
    __syncthreads();
    const int feats = d - j0 < RS ? (int)(d - j0) : RS;
#pragma unroll 4
    for (int f = 0; f < feats; ++f) {
      double xv[TM], wv[TM];
#pragma unroll
      for (int u = 0; u < TM; ++u) xv[u] = Xs[f * TB + ty + 16 * u];
#pragma unroll
      for (int v = 0; v < TM; ++v) wv[v] = Ws[f * TB + tx + 16 * v];
#pragma unroll
      for (int u = 0; u < TM; ++u)
#pragma unroll
        for (int v = 0; v < TM; ++v) acc[u][v] = fma_f64(xv[u], wv[v], acc[u][v]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < TM; ++u)
#pragma unroll
    for (int v = 0; v < TM; ++v) {
      const int64_t i = i0 + ty + 16 * u, k = k0 + tx + 16 * v;
      if (i < x.rows && k < n_out) out[i * n_out + k] = bias ? acc[u][v] + bias[k] : acc[u][v];
    }
}

void check_x(const MatrixView& x) {
  TL_CHECK_ARG(x.rows >= 1, "empty feature bank: n_samples=0");
  TL_CHECK_ARG(x.cols >= 1, "empty feature bank: n_features=0");
  TL_CHECK_ARG(x.rows < (int64_t(1) << 31), "lda_cuda: more than 2^31 rows");
  TL_CHECK_ARG(x.data != nullptr, "lda_cuda: null device pointer for x");
}

}  // namespace

void lda_class_sums_cuda(const MatrixView& x, const int32_t* labels, int64_t n_classes, const double* shift,
                         const double* row_weight, int64_t* counts, double* sums, void* stream_ptr) {
  check_x(x);
  TL_CHECK_ARG(n_classes >= 1, "n_classes must be >= 1");
  TL_CHECK_ARG(labels != nullptr && counts != nullptr && sums != nullptr, "lda_class_sums_cuda: null device pointer");
  const cudaStream_t stream = as_stream(stream_ptr);
  DeviceBuffer<int32_t> order(x.rows, stream);
  DeviceBuffer<int64_t> starts(n_classes, stream), totals(n_classes, stream);
  cuda_detail::build_class_rows(labels, x.rows, n_classes, order.get(), starts.get(), totals.get(), stream);
  add_counts_kernel<<<(unsigned)((n_classes + 127) / 128), 128, 0, stream>>>(totals.get(), n_classes, counts);
  TL_CUDA_CHECK_LAUNCH();
  const dim3 grid((unsigned)((x.cols + 127) / 128), (unsigned)(n_classes < 65535 ? n_classes : 65535));
  dispatch_dtype(x.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    class_sums_kernel<DT><<<grid, 128, 0, stream>>>(x, order.get(), starts.get(), totals.get(), n_classes, shift,
                                                    row_weight, sums);
  });
  TL_CUDA_CHECK_LAUNCH();
}

void lda_gram_cuda(const MatrixView& x, const double* shift, const double* row_scale, double* gram,
                   void* stream_ptr) {
  check_x(x);
  TL_CHECK_ARG(gram != nullptr, "lda_gram_cuda: null device pointer for gram");
  const cudaStream_t stream = as_stream(stream_ptr);
  const int64_t nbd = (x.cols + TB - 1) / TB;
  dispatch_dtype(x.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    gram_kernel<DT><<<(unsigned)num_upper_tiles(nbd), NT, 0, stream>>>(x, shift, row_scale, gram);
  });
  TL_CUDA_CHECK_LAUNCH();
}

void lda_project_cuda(const MatrixView& x, const double* w, const double* b, int64_t n_out, double* out,
                      void* stream_ptr) {
  check_x(x);
  TL_CHECK_ARG(n_out >= 1, "n_out must be >= 1");
  TL_CHECK_ARG(w != nullptr && out != nullptr, "lda_project_cuda: null device pointer");
  const cudaStream_t stream = as_stream(stream_ptr);
  const dim3 grid((unsigned)((x.rows + TB - 1) / TB), (unsigned)((n_out + TB - 1) / TB));
  TL_CHECK_ARG(grid.y <= 65535, "lda_project_cuda: n_out too large");
  dispatch_dtype(x.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    project_kernel<DT><<<grid, NT, 0, stream>>>(x, w, b, n_out, out);
  });
  TL_CUDA_CHECK_LAUNCH();
}

}  // namespace tl
