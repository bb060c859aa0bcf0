// CUDA kernels of csrc/leep (contract: leep/leep.h; decomposition: leep/cuda/leep_logic.h).
//
//   row stats: one warp per row (flags, float64 sum, log-sum-exp), then one block folds the
//              per-row verdicts into ProbRowStats with order-independent operations (integer
//              counts, minimum row index, min / max), copied to the host: deterministic.
//   joint:     the stable class CSR (common/class_rows.h), then one thread per (class, column)
//              adds the class's rows in row order into joint: no float atomics, deterministic,
//              chunk-accumulable. Parallelism is C x Z threads.
//   eep:       one warp per row, fixed shuffle tree.
#include <cstdint>

#include "common/cuda/class_rows.cuh"
#include "common/cuda_check.cuh"
#include "common/cuda_load.cuh"
#include "leep/cuda/leep_logic.h"
#include "leep/leep.h"

namespace tl {

namespace {

using namespace leep_logic;
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ double warp_sum(double v) {  // lane 0 gets lane_tree_sum's order
  for (int o = kLanes / 2; o > 0; o >>= 1) v += __shfl_down_sync(kFull, v, o);
  return v;
}

__device__ __forceinline__ double warp_max_all(double v) {  // every lane gets the maximum
  for (int o = kLanes / 2; o > 0; o >>= 1) {
    const double w = __shfl_xor_sync(kFull, v, o);
    v = w > v ? w : v;
  }
  return v;
}

template <DType DT>
struct RowLoader {
  const void* base;
  int64_t offset;
  __device__ double operator()(int64_t z) const { return load_f64<DT>(base, offset + z); }
};

template <DType DT>
__global__ void row_stats_kernel(MatrixView p, bool from_logits, double tol, uint8_t* flags, double* sums,
                                 double* row_lse) {
  const int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / kLanes;
  const int lane = threadIdx.x % kLanes;
  if (i >= p.rows) return;  // whole warps exit together (blockDim is a multiple of 32)
  const RowLoader<DT> load{p.data, i * p.row_stride};
  LanePass1 r = lane_pass1(load, p.cols, lane);
  const bool nonfinite = __any_sync(kFull, r.nonfinite);
  const bool negative = __any_sync(kFull, r.negative);
  const double sum = warp_sum(r.sum);
  double lse = 0.0;
  if (from_logits) {
    const double mx = warp_max_all(r.max);
    const double e = warp_sum(nonfinite ? 0.0 : lane_exp_sum(load, p.cols, lane, mx));
    lse = mx + log_f64(e);
  }
  if (lane == 0) {
    flags[i] = row_flags(nonfinite, negative, sum, from_logits, tol);
    sums[i] = sum;
    if (from_logits && row_lse) row_lse[i] = nonfinite ? __longlong_as_double(0x7ff8000000000000ll) : lse;
  }
}

constexpr int kFold = 512;  // 5 x 512 x 8 bytes of shared memory

// One block: the per-row verdicts into a ProbRowStats (counts, first rows, min / max row sums of
// the rows that are finite; 0 when there is none).
__global__ void fold_stats_kernel(int64_t n, bool from_logits, const uint8_t* flags, const double* sums,
                                  ProbRowStats* out) {
  __shared__ int64_t cnt[3][kFold], first[3][kFold];
  __shared__ double lo[kFold], hi[kFold];
  const int t = threadIdx.x;
  int64_t c[3] = {0, 0, 0}, f[3] = {-1, -1, -1};
  double mn = __longlong_as_double(0x7ff0000000000000ll), mx = -mn;
  for (int64_t i = t; i < n; i += kFold) {
    const uint8_t fl = flags[i];
    for (int b = 0; b < 3; ++b)
      if (fl & (1 << b)) {
        ++c[b];
        if (f[b] < 0) f[b] = i;  // i increases within a thread
      }
    if (!(fl & kNonFinite) && !from_logits) {
      mn = sums[i] < mn ? sums[i] : mn;
      mx = sums[i] > mx ? sums[i] : mx;
    }
  }
  for (int b = 0; b < 3; ++b) cnt[b][t] = c[b], first[b][t] = f[b];
  lo[t] = mn;
  hi[t] = mx;
  __syncthreads();
  for (int s = kFold / 2; s > 0; s >>= 1) {
    if (t < s) {
      for (int b = 0; b < 3; ++b) {
        cnt[b][t] += cnt[b][t + s];
        const int64_t o = first[b][t + s];
        if (o >= 0 && (first[b][t] < 0 || o < first[b][t])) first[b][t] = o;
      }
      lo[t] = lo[t + s] < lo[t] ? lo[t + s] : lo[t];
      hi[t] = hi[t + s] > hi[t] ? hi[t + s] : hi[t];
    }
    __syncthreads();
  }
  if (t == 0) {
    ProbRowStats s;
    s.nonfinite_rows = cnt[0][0], s.first_nonfinite_row = first[0][0];
    s.negative_rows = cnt[1][0], s.first_negative_row = first[1][0];
    s.bad_sum_rows = cnt[2][0], s.first_bad_sum_row = first[2][0];
    const bool any = lo[0] <= hi[0];
    s.min_row_sum = any ? lo[0] : 0.0;
    s.max_row_sum = any ? hi[0] : 0.0;
    *out = s;
  }
}

template <DType DT>
__global__ void joint_kernel(MatrixView p, const int32_t* order, const int64_t* starts, const int64_t* totals,
                             int64_t n_classes, bool from_logits, const double* row_lse, double* joint) {
  const int64_t z = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (z >= p.cols) return;
  for (int64_t c = blockIdx.y; c < n_classes; c += gridDim.y) {
    auto load = [&](int32_t i) {
      return prob_entry(load_f64<DT>(p.data, i * p.row_stride + z), from_logits, from_logits ? row_lse[i] : 0.0);
    };
    double* out = joint + c * p.cols + z;
    *out = class_column_sum(*out, order, starts[c], starts[c] + totals[c], load);
  }
}

template <DType DT>
__global__ void eep_kernel(MatrixView p, const int32_t* labels, bool from_logits, const double* row_lse,
                           const double* cond, double* eep) {
  const int64_t i = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / kLanes;
  const int lane = threadIdx.x % kLanes;
  if (i >= p.rows) return;
  const RowLoader<DT> load{p.data, i * p.row_stride};
  const double lse = from_logits ? row_lse[i] : 0.0;
  const double s = warp_sum(lane_eep(load, cond + labels[i] * p.cols, p.cols, lane, from_logits, lse));
  if (lane == 0) eep[i] = s;
}

unsigned warp_blocks(int64_t rows) { return (unsigned)((rows * kLanes + 255) / 256); }

void check_p(const MatrixView& p) {
  TL_CHECK_ARG(p.rows >= 1, "empty probability matrix: n_samples=0");
  TL_CHECK_ARG(p.cols >= 1, "empty probability matrix: n_source_classes=0");
  TL_CHECK_ARG(p.rows < (int64_t(1) << 31), "leep_cuda: more than 2^31 rows");
}

}  // namespace

void leep_row_stats_cuda(const MatrixView& p, bool from_logits, double sum_tolerance, ProbRowStats* stats_host,
                         double* row_lse, void* stream_ptr) {
  check_p(p);
  TL_CHECK_ARG(stats_host != nullptr, "leep_row_stats_cuda: stats is null");
  TL_CHECK_ARG(!from_logits || row_lse != nullptr, "leep_row_stats_cuda: row_lse is required with from_logits");
  const cudaStream_t stream = as_stream(stream_ptr);
  DeviceBuffer<uint8_t> flags(p.rows, stream);
  DeviceBuffer<double> sums(p.rows, stream);
  DeviceBuffer<ProbRowStats> out(1, stream);
  dispatch_dtype(p.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    row_stats_kernel<DT><<<warp_blocks(p.rows), 256, 0, stream>>>(p, from_logits, sum_tolerance, flags.get(),
                                                                   sums.get(), row_lse);
  });
  TL_CUDA_CHECK_LAUNCH();
  fold_stats_kernel<<<1, kFold, 0, stream>>>(p.rows, from_logits, flags.get(), sums.get(), out.get());
  TL_CUDA_CHECK_LAUNCH();
  TL_CUDA_CHECK(cudaMemcpyAsync(stats_host, out.get(), sizeof(ProbRowStats), cudaMemcpyDeviceToHost, stream));
  TL_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void leep_joint_cuda(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                     const double* row_lse, double* joint, void* stream_ptr) {
  check_p(p);
  TL_CHECK_ARG(n_classes >= 1, "n_classes must be >= 1");
  TL_CHECK_ARG(labels != nullptr && joint != nullptr, "leep_joint_cuda: null device pointer");
  TL_CHECK_ARG(!from_logits || row_lse != nullptr, "leep_joint_cuda: row_lse is required with from_logits");
  const cudaStream_t stream = as_stream(stream_ptr);
  DeviceBuffer<int32_t> order(p.rows, stream);
  DeviceBuffer<int64_t> starts(n_classes, stream), totals(n_classes, stream);
  cuda_detail::build_class_rows(labels, p.rows, n_classes, order.get(), starts.get(), totals.get(), stream);
  const dim3 grid((unsigned)((p.cols + 127) / 128), (unsigned)(n_classes < 65535 ? n_classes : 65535));
  dispatch_dtype(p.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    joint_kernel<DT><<<grid, 128, 0, stream>>>(p, order.get(), starts.get(), totals.get(), n_classes, from_logits,
                                               row_lse, joint);
  });
  TL_CUDA_CHECK_LAUNCH();
}

void leep_eep_cuda(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                   const double* row_lse, const double* cond, double* eep, void* stream_ptr) {
  check_p(p);
  TL_CHECK_ARG(n_classes >= 1, "n_classes must be >= 1");
  TL_CHECK_ARG(labels != nullptr && cond != nullptr && eep != nullptr, "leep_eep_cuda: null device pointer");
  TL_CHECK_ARG(!from_logits || row_lse != nullptr, "leep_eep_cuda: row_lse is required with from_logits");
  const cudaStream_t stream = as_stream(stream_ptr);
  dispatch_dtype(p.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    eep_kernel<DT><<<warp_blocks(p.rows), 256, 0, stream>>>(p, labels, from_logits, row_lse, cond, eep);
  });
  TL_CUDA_CHECK_LAUNCH();
}

}  // namespace tl
