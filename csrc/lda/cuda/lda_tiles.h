// transferlab/csrc/lda/cuda: the decomposition of the CUDA Gram and class sums (lda_cuda.cu),
// host+device so that the CPU test binding runs the same logic.
//
//   Gram: the d x d output is cut into B x B tiles; only the upper triangle of tiles (A <= Bt) is
//   computed, one CTA per tile, enumerated row-major (upper_tile); element (a, b) is one fused
//   multiply-add chain over the rows in increasing order, starting from the value already in
//   gram (accumulation), acc = fma(u_ia, u_ib, acc) with u_ia = s_i (x_ia - shift_a) in float64.
//   fma is symmetric in its product operands, so the chain of (a, b) equals that of (b, a): the
//   CTA of an off-diagonal tile writes both gram[a, b] and the mirror gram[b, a] (gram must be
//   symmetric on entry: zeros or an earlier result). Deterministic for any launch configuration.
//   Class sums: one thread per (class, column), rows of the class in order (common/class_rows.h),
//   acc += w_i (x_ij - shift_j) (fma with the weight).
#pragma once

#include <cstdint>

#include "common/tl_hd.h"

namespace tl {
namespace lda_tiles {

TL_HD int64_t num_upper_tiles(int64_t nbd) { return nbd * (nbd + 1) / 2; }

// The t-th tile (A, B), A <= B, of the upper triangle in row-major order.
TL_HD void upper_tile(int64_t t, int64_t nbd, int64_t* A, int64_t* B) {
  int64_t a = 0;
  while (t >= nbd - a) {
    t -= nbd - a;
    ++a;
  }
  *A = a;
  *B = a + t;
}

// u_ij = s_i (x_ij - shift_j) in float64 (shift / scale optional).
TL_HD double centred(double x, const double* shift, int64_t j, const double* row_scale, int64_t i) {
  double u = shift ? x - shift[j] : x;
  return row_scale ? row_scale[i] * u : u;
}

TL_HD double gram_step(double acc, double ua, double ub) { return fma_f64(ua, ub, acc); }

// sums[c, j] chain step: acc + w_i (x_ij - shift_j).
TL_HD double class_sum_step(double acc, double x, const double* shift, int64_t j, const double* w, int64_t i) {
  const double v = shift ? x - shift[j] : x;
  return w ? fma_f64(w[i], v, acc) : acc + v;
}

}  // namespace lda_tiles
}  // namespace tl
