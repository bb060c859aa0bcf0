// CUDA leave-one-out k-NN with a TF32 tensor-core first pass (contract: knn/knn.h; the bound, the
// candidate rule and why the result is the exact path's: knn/cuda/knn_tc.h).
//
// Launches, all on the caller's stream:
//   1. norms: per row the exact path's norm (the fma chain of knn_tiles.h), its float32 root, the
//      row's candidate state; any input outside tc_in_range sets a flag (then the exact path runs).
//   2. TF32 tiles over the exact path's round-robin schedule (diagonal tiles, then the rounds), so a
//      CTA owns the rows of its two blocks and updates their candidate state without atomics: WMMA
//      m16n16k8 TF32 dot products of a 128 x 128 tile (8 warps, 64 x 32 each), then 2T threads run
//      cand_scan on the row side and the column side.
//   3. finish: per row, the exact re-check of its candidates (tc_recheck_row) into the outputs; a row
//      whose candidates overflowed is listed.
//   4. overflowed rows, 64 at a time: every exact distance of the row (one CTA per row), then the exact
//      running top-k over them (the exact path for that row). When more than n / 64 rows overflow
//      (e.g. all rows equal), the whole exact path (knn_cuda.cu) runs instead.
// Requires compute capability >= 8.0 (TF32 MMA); elsewhere, and for n >= 2^31 or d >= 2^15 (the
// bound's validity), the exact path runs. Results never differ from the exact path's.
// Performance: not yet measured (no GPU was lent when this was written; docs/gpu.md). The next slab is
// prefetched into registers while the current one is multiplied; the scan is the exact path's.
#include <mma.h>

#include <algorithm>
#include <cstdlib>

#include "common/cuda_check.cuh"
#include "common/cuda_load.cuh"
#include "knn/cuda/knn_tc.h"
#include "knn/cuda/knn_tiles.h"
#include "knn/knn.h"

namespace tl {
namespace {

using namespace knn_tiles;
using namespace knn_tc;

constexpr int TT = 128;       // tile edge
constexpr int KT = 32;        // feature slab per shared-memory stage
constexpr int LDS = KT + 4;   // slab leading dimension (a multiple of 4, as WMMA needs)
constexpr int LDC = TT + 4;   // dot tile leading dimension
constexpr int NTT = 256;      // 8 warps
constexpr int SLAB = TT * LDS;
constexpr int TILE_FLOATS = TT * LDC > 2 * SLAB ? TT * LDC : 2 * SLAB;
constexpr size_t TC_SMEM = (TILE_FLOATS + 4 * TT) * sizeof(float);
constexpr int OVF_ROWS = 64;  // overflowed rows per exact batch

struct TcArgs {
  const void* x;
  int64_t n, d, stride, k, cap;
  const int32_t* labels;
  TcBound b;
  float* norms;
  float* roots;
  float* ub;      // n x k
  int32_t* cidx;  // n x cap
  float* clo;     // n x cap
  CandState* cs;  // n
  int* bad;       // 1: some input outside tc_in_range
};

struct Outs {
  int64_t* ti;
  float* td;
  int64_t* cnt;
  int64_t* same;  // nullptr without labels
  int64_t* ovf;   // overflowed rows (list)
  int* novf;
};

template <DType DT>
struct DevRows {
  const void* x;
  int64_t stride;
  TL_HD float operator()(int64_t i, int64_t p) const {
#if defined(__CUDA_ARCH__)
    return load_f32<DT>(x, i * stride + p);
#else
    (void)i, (void)p;
    return 0.f;
#endif
  }
};

template <DType DT>
__global__ void tc_norms(TcArgs a) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  const DevRows<DT> rows{a.x, a.stride};
  float acc = 0.f;
  bool ok = true;
  for (int64_t p = 0; p < a.d; ++p) {
    const float v = rows(i, p);
    ok = ok && tc_in_range(v);
    acc = fma_f32(v, v, acc);  // the exact path's norm chain (the diagonal of its diagonal tile)
  }
  a.norms[i] = acc;
  a.roots[i] = sqrtf(acc);  // IEEE rounded (no fast math here)
  a.cs[i] = cand_empty();
  if (!ok) atomicOr(a.bad, 1);
}

// One CTA per tile (I, J) of the exact path's schedule; round < 0: the diagonal tile blockIdx.x.
template <DType DT>
__global__ void __launch_bounds__(NTT, 1) tc_tile_kernel(TcArgs a, int64_t nb, int64_t round) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  extern __shared__ __align__(128) float smem[];
  float* As = smem;
  float* Bs = smem + SLAB;
  float* c = smem;  // aliases the slabs once they are consumed
  float* ni = smem + TILE_FLOATS;
  float* ri = ni + TT;
  float* nj = ri + TT;
  float* rj = nj + TT;
  int64_t I, J;
  if (round < 0) {
    I = J = blockIdx.x;
  } else if (!rr_pair(nb, round, blockIdx.x, &I, &J)) {
    return;
  }
  const int64_t i0 = I * TT, j0 = J * TT;
  const int64_t na = a.n - i0 < TT ? a.n - i0 : TT, nbv = a.n - j0 < TT ? a.n - j0 : TT;
  const int warp = threadIdx.x / 32, wr = warp / 4, wc = warp % 4;  // rows 64 wr.., columns 32 wc..
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[4][2];
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 2; ++v) wmma::fill_fragment(acc[u][v], 0.f);
  const DevRows<DT> rows{a.x, a.stride};
  // Register prefetch: the next slab's global loads are in flight while this slab is multiplied.
  // Element e = threadIdx.x + s * NTT of a slab is (row e / KT, feature e % KT): 32 threads read 32
  // consecutive features of a row. Zero padding past n and d leaves the sums unchanged.
  constexpr int PER = TT * KT / NTT;
  float pa[PER], pb[PER];
  auto fetch = [&](int64_t p0) {
#pragma unroll
    for (int s = 0; s < PER; ++s) {
      const int e = threadIdx.x + s * NTT, r = e / KT;
      const int64_t p = p0 + e % KT;
      pa[s] = (i0 + r < a.n && p < a.d) ? rows(i0 + r, p) : 0.f;
      pb[s] = (j0 + r < a.n && p < a.d) ? rows(j0 + r, p) : 0.f;
    }
  };
  auto stash = [&]() {
#pragma unroll
    for (int s = 0; s < PER; ++s) {
      const int e = threadIdx.x + s * NTT;
      As[(e / KT) * LDS + e % KT] = wmma::__float_to_tf32(pa[s]);
      Bs[(e / KT) * LDS + e % KT] = wmma::__float_to_tf32(pb[s]);
    }
  };
  fetch(0);
  stash();
  __syncthreads();
  for (int64_t p0 = 0; p0 < a.d; p0 += KT) {
    const bool more = p0 + KT < a.d;
    if (more) fetch(p0 + KT);
#pragma unroll 1  // unrolled, the prefetch registers spill (ptxas -v, sm_90)
    for (int kk = 0; kk < KT; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb[2];
#pragma unroll
      for (int u = 0; u < 4; ++u) wmma::load_matrix_sync(fa[u], As + (64 * wr + 16 * u) * LDS + kk, LDS);
#pragma unroll
      for (int v = 0; v < 2; ++v) wmma::load_matrix_sync(fb[v], Bs + (32 * wc + 16 * v) * LDS + kk, LDS);
#pragma unroll
      for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 2; ++v) wmma::mma_sync(acc[u][v], fa[u], fb[v], acc[u][v]);
    }
    __syncthreads();  // every warp is done with this slab
    if (more) {
      stash();
      __syncthreads();
    }
  }
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 2; ++v)
      wmma::store_matrix_sync(c + (64 * wr + 16 * u) * LDC + 32 * wc + 16 * v, acc[u][v], LDC, wmma::mem_row_major);
  for (int t = threadIdx.x; t < TT; t += NTT) {
    ni[t] = t < na ? a.norms[i0 + t] : 0.f;
    ri[t] = t < na ? a.roots[i0 + t] : 0.f;
    nj[t] = t < nbv ? a.norms[j0 + t] : 0.f;
    rj[t] = t < nbv ? a.roots[j0 + t] : 0.f;
  }
  __syncthreads();
  // Row side (t < T): row i0 + t against J's columns; column side: row j0 + q against I's rows.
  const int sides = round < 0 ? 1 : 2;
  for (int t = threadIdx.x; t < sides * TT; t += NTT) {
    const bool row_side = t < TT;
    const int r = row_side ? t : t - TT;
    if (r >= (row_side ? na : nbv)) continue;
    const int64_t g = (row_side ? i0 : j0) + r;
    const float* own_n = row_side ? ni : nj;  // this row's block
    const float* own_r = row_side ? ri : rj;
    CandState s = a.cs[g];
    cand_scan(s, a.ub + g * a.k, a.cidx + g * a.cap, a.clo + g * a.cap, a.k, a.cap, a.b, own_n[r], own_r[r],
              row_side ? c + r * LDC : c + r, row_side ? 1 : LDC, row_side ? nj : ni, row_side ? rj : ri, 1,
              row_side ? nbv : na, row_side ? j0 : i0, g);
    a.cs[g] = s;
  }
#else
  __trap();  // never launched: the host checks the compute capability
#endif
}

// Per row: the exact re-check of its candidates into the outputs, or the row goes on the list.
template <DType DT>
__global__ void tc_finish(TcArgs a, Outs o) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  const CandState c = a.cs[i];
  if (cand_overflow(c, a.ub + i * a.k, a.k)) {
    o.ovf[atomicAdd(o.novf, 1)] = i;
    return;
  }
  TopkState s = topk_empty();
  tc_recheck_row(DevRows<DT>{a.x, a.stride}, a.d, a.norms, i, c, a.ub + i * a.k, a.cidx + i * a.cap,
                 a.clo + i * a.cap, a.k, s, o.td + i * a.k, o.ti + i * a.k, a.labels);
  o.cnt[i] = s.cnt;
  if (o.same) o.same[i] = s.same;
}

// Exact distances of overflowed row ovf[r0 + blockIdx.x] to every row (the exact path's arithmetic).
template <DType DT>
__global__ void tc_row_dists(TcArgs a, const int64_t* ovf, int64_t r0, float* line) {
  const int64_t g = ovf[r0 + blockIdx.x];
  const DevRows<DT> rows{a.x, a.stride};
  float* out = line + blockIdx.x * a.n;
  for (int64_t j = threadIdx.x; j < a.n; j += blockDim.x)
    out[j] = pair_dist(a.norms[g], a.norms[j], exact_dot(rows, g, j, a.d));
}

__global__ void tc_row_topk(TcArgs a, Outs o, int64_t r0, int64_t rows, const float* line) {
  const int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= rows) return;
  const int64_t g = o.ovf[r0 + b];
  TopkState s = topk_empty();
  topk_scan(s, o.td + g * a.k, o.ti + g * a.k, a.k, line + b * a.n, 1, a.n, 0, g, a.labels,
            a.labels ? a.labels[g] : 0);
  o.cnt[g] = s.cnt;
  if (o.same) o.same[g] = s.same;
}

template <DType DT>
void run_tc(TcArgs& a, Outs& o, int64_t* nbr_index, float* nbr_dist, int64_t* tie_count, int64_t* tie_same,
            const MatrixView& x, cudaStream_t stream) {
  const int64_t n = a.n;
  tc_norms<DT><<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(a);
  TL_CUDA_CHECK_LAUNCH();
  int bad = 0;
  TL_CUDA_CHECK(cudaMemcpyAsync(&bad, a.bad, sizeof(int), cudaMemcpyDeviceToHost, stream));
  TL_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bad) {  // outside the bound's range: the exact path, whole
    knn_loo_cuda_exact(x, a.labels, a.k, nbr_index, nbr_dist, tie_count, tie_same, stream);
    return;
  }
  TL_CUDA_CHECK(cudaFuncSetAttribute(tc_tile_kernel<DT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)TC_SMEM));
  const int64_t nb = (n + TT - 1) / TT;
  tc_tile_kernel<DT><<<(unsigned)nb, NTT, TC_SMEM, stream>>>(a, nb, -1);
  TL_CUDA_CHECK_LAUNCH();
  for (int64_t r = 0; r < rr_rounds(nb); ++r) {
    tc_tile_kernel<DT><<<(unsigned)rr_pairs(nb), NTT, TC_SMEM, stream>>>(a, nb, r);
    TL_CUDA_CHECK_LAUNCH();
  }
  tc_finish<DT><<<(unsigned)((n + 127) / 128), 128, 0, stream>>>(a, o);
  TL_CUDA_CHECK_LAUNCH();
  int novf = 0;
  TL_CUDA_CHECK(cudaMemcpyAsync(&novf, o.novf, sizeof(int), cudaMemcpyDeviceToHost, stream));
  TL_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (novf == 0) return;
  if ((int64_t)novf * 64 > n) {  // crowded bank: the exact path, whole (it rewrites every output)
    knn_loo_cuda_exact(x, a.labels, a.k, nbr_index, nbr_dist, tie_count, tie_same, stream);
    return;
  }
  DeviceBuffer<float> line((size_t)OVF_ROWS * n, stream);
  for (int64_t r0 = 0; r0 < novf; r0 += OVF_ROWS) {
    const int64_t rows = std::min<int64_t>(OVF_ROWS, novf - r0);
    tc_row_dists<DT><<<(unsigned)rows, 256, 0, stream>>>(a, o.ovf, r0, line.get());
    TL_CUDA_CHECK_LAUNCH();
    tc_row_topk<<<1, OVF_ROWS, 0, stream>>>(a, o, r0, rows, line.get());
    TL_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void knn_loo_cuda_tf32(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index, float* nbr_dist,
                       int64_t* tie_count, int64_t* tie_same, void* stream_ptr) {
  const int64_t n = x.rows, d = x.cols;
  TL_CHECK_ARG(n >= 2 && k >= 1 && k <= n - 1, "k must be in [1, n_samples-1]");
  TL_CHECK_ARG(d >= 1, "empty feature bank: n_features=0");
  const cudaStream_t stream = as_stream(stream_ptr);
  int dev = 0, major = 0;
  TL_CUDA_CHECK(cudaGetDevice(&dev));
  TL_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  if (major < 8 || n >= ((int64_t)1 << 31) || d >= ((int64_t)1 << 15)) {
    knn_loo_cuda_exact(x, labels, k, nbr_index, nbr_dist, tie_count, tie_same, stream_ptr);
    return;
  }
  const int64_t cap = cand_cap(k);
  DeviceBuffer<float> norms(n, stream), roots(n, stream), ub((size_t)n * k, stream), clo((size_t)n * cap, stream);
  DeviceBuffer<int32_t> cidx((size_t)n * cap, stream);
  DeviceBuffer<CandState> cs(n, stream);
  DeviceBuffer<int64_t> ovf(n, stream);
  DeviceBuffer<int> flags(2, stream);  // [0] bad range, [1] overflowed rows
  TL_CUDA_CHECK(cudaMemsetAsync(flags.get(), 0, 2 * sizeof(int), stream));
  TcArgs a;
  a.x = x.data;
  a.n = n;
  a.d = d;
  a.stride = x.row_stride;
  a.k = k;
  a.cap = cap;
  a.labels = labels;
  a.b = tc_bound(d);
  a.norms = norms.get();
  a.roots = roots.get();
  a.ub = ub.get();
  a.cidx = cidx.get();
  a.clo = clo.get();
  a.cs = cs.get();
  a.bad = flags.get();
  Outs o{nbr_index, nbr_dist, tie_count, labels ? tie_same : nullptr, ovf.get(), flags.get() + 1};
  dispatch_dtype(x.dtype, [&](auto tag) {
    constexpr DType DT = decltype(tag)::value;
    run_tc<DT>(a, o, nbr_index, nbr_dist, tie_count, tie_same, x, stream);
  });
}

}  // namespace tl
