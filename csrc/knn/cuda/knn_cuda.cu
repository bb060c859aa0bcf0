// CUDA leave-one-out k-NN (contract: knn/knn.h; decomposition: knn/cuda/knn_tiles.h).
//
// Launches, all on the caller's stream:
//   1. init: running top-k state of every row (thr = +inf, m = 0, counts 0). The lists live in the
//      outputs themselves (nbr_dist / nbr_index, tie_count, tie_same): O(n) scratch beyond them.
//   2. diagonal tiles (I, I), one CTA each: their diagonal gives the squared norms.
//   3. rounds of the circle-method schedule: one CTA per off-diagonal tile (I, J), which owns the
//      rows of I and J during that launch and updates both from its tile.
// A CTA computes its T x T dot products with a register-blocked SIMT float32 GEMM (K slabs of 16
// through shared memory, a TM x TM micro-tile per thread), one fused multiply-add chain per pair
// in increasing feature order (tensor cores would change that chain), turns them into distances
// in shared memory, then 2T threads scan the tile's rows (row side) and columns (column side)
// against the rows' running top-k. The n x n matrix never exists.
// T = 128 unless the rounds would leave most SMs idle (small n), then T = 64. The environment
// variable TRANSFERLAB_KNN_CUDA_TILE=64|128 forces one (tuning and tests; results never depend on T).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "common/cuda_check.cuh"
#include "common/cuda_load.cuh"
#include "knn/cuda/knn_tiles.h"
#include "knn/knn.h"

namespace tl {
namespace {

using namespace knn_tiles;

constexpr int KS = 16;   // feature slab per shared-memory stage
constexpr int NT = 256;  // threads per CTA: a 16 x 16 grid of TM x TM micro-tiles

struct KnnArgs {
  const void* x;
  int64_t n, d, stride, k;
  const int32_t* labels;
  float* norms;
  float* td;  // = nbr_dist, n x k
  int64_t* ti;  // = nbr_index, n x k
  int32_t* m;
  float* thr;
  int64_t* cnt;   // = tie_count
  int64_t* same;  // = tie_same, or scratch without labels
};


__global__ void init_state(KnnArgs a) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  const TopkState s = topk_empty();
  a.thr[i] = s.thr;
  a.m[i] = s.m;
  a.cnt[i] = s.cnt;
  a.same[i] = s.same;
}

// Shared-memory slabs: [KS][LDS] floats per operand, LDS = T + 4 keeps float4 alignment and
// limits the transposing stores to 2-way bank conflicts. Two buffers per operand (double buffering).
template <int T>
constexpr int lds() {
  return T + 4;
}
template <int T>
constexpr int slab_floats() {
  return KS * lds<T>();
}

// Register prefetch of one operand's slab: rows [r0, r0 + T) x features [p0, p0 + KS), element
// e = tid + s * NT at (row e / KS, feature e % KS): 16 threads read 16 consecutive features of a row.
template <int T>
struct Prefetch {
  static constexpr int PER = T * KS / NT;
  float v[PER];
};

template <DType DT, int T>
__device__ __forceinline__ void fetch(const KnnArgs& a, int64_t r0, int64_t p0, Prefetch<T>& f) {
#pragma unroll
  for (int s = 0; s < Prefetch<T>::PER; ++s) {
    const int e = threadIdx.x + s * NT;
    const int64_t i = r0 + e / KS, p = p0 + e % KS;
    f.v[s] = (i < a.n && p < a.d) ? load_f32<DT>(a.x, i * a.stride + p) : 0.f;  // zero: chains unchanged
  }
}

template <int T>
__device__ __forceinline__ void stash(const Prefetch<T>& f, float* slab) {
#pragma unroll
  for (int s = 0; s < Prefetch<T>::PER; ++s) {
    const int e = threadIdx.x + s * NT;
    slab[(e % KS) * lds<T>() + e / KS] = f.v[s];
  }
}

// Thread (ty, tx) owns rows ty*4 + {0..3} + 64 g and columns tx*4 + {0..3} + 64 h (g, h < TM/4):
// its fragments are float4 loads, contiguous across a quarter warp (no bank conflicts).
template <int T>
__device__ __forceinline__ int frag(int lane16, int u) {
  return (u >> 2) * 64 + lane16 * 4 + (u & 3);
}

// c[r * (T + 1) + q] = x_{i0 + r} . x_{j0 + q}: one fma chain per element, p = 0, 1, ... in order
// (the slabs, the prefetching and the fragments only move data). smem: 4 slabs (A, B double
// buffered); c may alias them (written after the last slab is consumed).
template <DType DT, int T>
__device__ __forceinline__ void dot_tile(const KnnArgs& a, int64_t i0, int64_t j0, float* smem, float* c) {
  constexpr int TM = T / 16;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const bool diag = (i0 == j0);
  // Slab b of A at smem + b * slab, of B at smem + (2 + b) * slab (b = slab index & 1).
  constexpr int SL = slab_floats<T>();
  float acc[TM][TM];
#pragma unroll
  for (int u = 0; u < TM; ++u)
#pragma unroll
    for (int v = 0; v < TM; ++v) acc[u][v] = 0.f;
  Prefetch<T> fa, fb;
  fetch<DT, T>(a, i0, 0, fa);
  if (!diag) fetch<DT, T>(a, j0, 0, fb);
  stash<T>(fa, smem);
  if (!diag) stash<T>(fb, smem + 2 * SL);
  __syncthreads();
  const int64_t slabs = (a.d + KS - 1) / KS;
  for (int64_t sl = 0; sl < slabs; ++sl) {
    const int cur = sl & 1;
    const bool more = sl + 1 < slabs;
    if (more) {  // global loads in flight while this slab is multiplied
      fetch<DT, T>(a, i0, (sl + 1) * KS, fa);
      if (!diag) fetch<DT, T>(a, j0, (sl + 1) * KS, fb);
    }
    const float* A = smem + cur * SL;
    const float* B = diag ? A : smem + (2 + cur) * SL;
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) {
      float av[TM], bv[TM];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 x4 = *reinterpret_cast<const float4*>(A + kk * lds<T>() + frag<T>(ty, 4 * g));
        const float4 y4 = *reinterpret_cast<const float4*>(B + kk * lds<T>() + frag<T>(tx, 4 * g));
        av[4 * g] = x4.x, av[4 * g + 1] = x4.y, av[4 * g + 2] = x4.z, av[4 * g + 3] = x4.w;
        bv[4 * g] = y4.x, bv[4 * g + 1] = y4.y, bv[4 * g + 2] = y4.z, bv[4 * g + 3] = y4.w;
      }
#pragma unroll
      for (int u = 0; u < TM; ++u)
#pragma unroll
        for (int v = 0; v < TM; ++v) acc[u][v] = fma_f32(av[u], bv[v], acc[u][v]);
    }
    if (more) {  // the other buffer was last read before the previous barrier
      stash<T>(fa, smem + (cur ^ 1) * SL);
      if (!diag) stash<T>(fb, smem + (2 + (cur ^ 1)) * SL);
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < TM; ++u)
#pragma unroll
    for (int v = 0; v < TM; ++v) c[frag<T>(ty, u) * (T + 1) + frag<T>(tx, v)] = acc[u][v];
}

template <int T>
constexpr int tile_floats() {
  return T * (T + 1) > 4 * slab_floats<T>() ? T * (T + 1) : 4 * slab_floats<T>();
}
template <int T>
constexpr size_t smem_bytes() {
  return (tile_floats<T>() + 2 * T) * sizeof(float);
}

// Offers a tile line to row g's running top-k (state round-tripped through registers).
__device__ __forceinline__ void scan_line(const KnnArgs& a, int64_t g, const float* line, int64_t step,
                                          int64_t len, int64_t idx0) {
  TopkState s{a.thr[g], a.m[g], a.cnt[g], a.same[g]};
  const int32_t yi = a.labels ? a.labels[g] : 0;
  topk_scan(s, a.td + g * a.k, a.ti + g * a.k, a.k, line, step, len, idx0, g, a.labels, yi);
  a.thr[g] = s.thr;
  a.m[g] = s.m;
  a.cnt[g] = s.cnt;
  a.same[g] = s.same;
}

// round < 0: diagonal tile blockIdx.x; else pair blockIdx.x of that round.
template <DType DT, int T>
__global__ void __launch_bounds__(NT, T == 128 ? 1 : 2) knn_tile_kernel(KnnArgs a, int64_t nb, int64_t round) {
  extern __shared__ __align__(16) float smem[];
  float* c = smem;  // the distance tile aliases the slabs (both fit in tile_floats)
  float* ni = smem + tile_floats<T>();
  float* nj = ni + T;
  int64_t I, J;
  if (round < 0) {
    I = J = blockIdx.x;
  } else if (!rr_pair(nb, round, blockIdx.x, &I, &J)) {
    return;  // the dummy slot of an odd block count (uniform over the CTA)
  }
  const int64_t i0 = I * T, j0 = J * T;
  const int64_t na = a.n - i0 < T ? a.n - i0 : T, nbv = a.n - j0 < T ? a.n - j0 : T;
  dot_tile<DT, T>(a, i0, j0, smem, c);
  __syncthreads();
  for (int t = threadIdx.x; t < T; t += NT) {
    if (round < 0) {
      const float v = t < na ? c[t * (T + 1) + t] : 0.f;
      if (t < na) a.norms[i0 + t] = v;
      ni[t] = nj[t] = v;
    } else {
      ni[t] = t < na ? a.norms[i0 + t] : 0.f;
      nj[t] = t < nbv ? a.norms[j0 + t] : 0.f;
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < T * T; e += NT) {
    const int r = e / T, q = e % T;
    c[r * (T + 1) + q] = pair_dist(ni[r], nj[q], c[r * (T + 1) + q]);
  }
  __syncthreads();
  // Row side (t < T): row i0 + t against J's columns. Column side: row j0 + q against I's rows.
  // A diagonal tile has only the row side (it holds both orders of every pair).
  const int sides = round < 0 ? 1 : 2;
  for (int t = threadIdx.x; t < sides * T; t += NT) {
    if (t < T) {
      if (t < na) scan_line(a, i0 + t, c + t * (T + 1), 1, nbv, j0);
    } else {
      const int q = t - T;
      if (q < nbv) scan_line(a, j0 + q, c + q, T + 1, na, i0);
    }
  }
}

template <DType DT, int T>
void run_tiles(const KnnArgs& a, cudaStream_t stream) {
  const int64_t nb = (a.n + T - 1) / T;
  constexpr size_t smem = smem_bytes<T>();
  TL_CUDA_CHECK(cudaFuncSetAttribute(knn_tile_kernel<DT, T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)smem));
  knn_tile_kernel<DT, T><<<(unsigned)nb, NT, smem, stream>>>(a, nb, -1);
  TL_CUDA_CHECK_LAUNCH();
  const int64_t rounds = rr_rounds(nb), pairs = rr_pairs(nb);
  for (int64_t r = 0; r < rounds; ++r) {
    knn_tile_kernel<DT, T><<<(unsigned)pairs, NT, smem, stream>>>(a, nb, r);
    TL_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

// TRANSFERLAB_KNN_CUDA_PRECISION=exact (default) | tf32 picks the first pass: the float32 CUDA-core
// tiles below, or the TF32 tensor-core pass with an exact re-check (knn_tc.cu). Both give the same
// result; tf32 stays opt-in until a GPU has measured it (docs/gpu.md).
void knn_loo_cuda(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                  float* nbr_dist, int64_t* tie_count, int64_t* tie_same, void* stream_ptr) {
  std::string p = "exact";
  if (const char* env = std::getenv("TRANSFERLAB_KNN_CUDA_PRECISION")) p = env;
  TL_CHECK_ARG(p == "exact" || p == "tf32",
               "TRANSFERLAB_KNN_CUDA_PRECISION must be 'exact' or 'tf32', got '" + p + "'");
  if (p == "tf32")
    knn_loo_cuda_tf32(x, labels, k, nbr_index, nbr_dist, tie_count, tie_same, stream_ptr);
  else
    knn_loo_cuda_exact(x, labels, k, nbr_index, nbr_dist, tie_count, tie_same, stream_ptr);
}

void knn_loo_cuda_exact(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                        float* nbr_dist, int64_t* tie_count, int64_t* tie_same, void* stream_ptr) {
  const int64_t n = x.rows, d = x.cols;
  TL_CHECK_ARG(n >= 2 && k >= 1 && k <= n - 1, "k must be in [1, n_samples-1]");
  TL_CHECK_ARG(d >= 1, "empty feature bank: n_features=0");
  TL_CHECK_ARG(x.data != nullptr && nbr_index != nullptr && nbr_dist != nullptr && tie_count != nullptr &&
                   (labels == nullptr || tie_same != nullptr),
               "knn_loo_cuda: null device pointer");
  const cudaStream_t stream = as_stream(stream_ptr);
  int dev = 0, sms = 0;
  TL_CUDA_CHECK(cudaGetDevice(&dev));
  TL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));

  // Big tiles reuse each loaded slab more; small ones keep more SMs busy when a round has few
  // pairs. Measured on an H100 (132 SMs, D = 768): T = 128 wins already at N = 20000 (78 tiles per
  // round: 20.0 ms vs 24.6 ms) and at N = 100000 (0.270 s vs 0.348 s).
  bool big = (n / 128) / 2 >= sms / 2;
  if (const char* env = std::getenv("TRANSFERLAB_KNN_CUDA_TILE")) {
    const std::string t(env);
    TL_CHECK_ARG(t == "64" || t == "128", "TRANSFERLAB_KNN_CUDA_TILE must be 64 or 128, got '" + t + "'");
    big = (t == "128");
  }

  DeviceBuffer<float> norms(n, stream), thr(n, stream);
  DeviceBuffer<int32_t> m(n, stream);
  DeviceBuffer<int64_t> same_scratch(labels ? 0 : n, stream);
  KnnArgs a;
  a.x = x.data;
  a.n = n;
  a.d = d;
  a.stride = x.row_stride;
  a.k = k;
  a.labels = labels;
  a.norms = norms.get();
  a.td = nbr_dist;
  a.ti = nbr_index;
  a.m = m.get();
  a.thr = thr.get();
  a.cnt = tie_count;
  a.same = labels ? tie_same : same_scratch.get();

  init_state<<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(a);
  TL_CUDA_CHECK_LAUNCH();
  dispatch_dtype(x.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    if (big)
      run_tiles<DT, 128>(a, stream);
    else
      run_tiles<DT, 64>(a, stream);
  });
}

}  // namespace tl
