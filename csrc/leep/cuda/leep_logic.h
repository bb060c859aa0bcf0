// transferlab/csrc/leep/cuda: the per-lane and per-element pieces of the CUDA LEEP kernels
// (leep_cuda.cu), host+device so that the CPU test binding runs the same decomposition.
//
//   row statistics and EEP: one warp per row; lane l handles columns z = l, l + 32, ... in order
//     (lane_*), then the 32 partial sums meet in the fixed tree of a shfl_down reduction
//     (lane_tree_sum states that tree for the CPU twin; the kernels do it with shuffles);
//   joint: one thread per element (c, z), adding the rows of class c in increasing row order
//     (class_column_sum over the CSR of common/class_rows.h): no atomics, bitwise the
//     row-by-row order, so accumulating chunk after chunk into J equals one shot.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/tl_hd.h"

namespace tl {
namespace leep_logic {

constexpr int kLanes = 32;

// P[i, z] from a stored value: the probability itself, or exp(logit - lse_i) in float64.
TL_HD double prob_entry(double v, bool from_logits, double lse) { return from_logits ? exp_f64(v - lse) : v; }

// One lane's share of a row's first pass: non-finite / negative flags, plain sum, maximum.
struct LanePass1 {
  bool nonfinite = false, negative = false;
  double sum = 0.0, max = -std::numeric_limits<double>::infinity();
};

template <class Load>
TL_HD LanePass1 lane_pass1(Load load, int64_t z_count, int lane) {
  LanePass1 r;
  for (int64_t z = lane; z < z_count; z += kLanes) {
    const double v = load(z);
    if (!finite_f64(v)) r.nonfinite = true;
    if (v < 0.0) r.negative = true;
    r.sum += v;
    r.max = v > r.max ? v : r.max;
  }
  return r;
}

// One lane's share of sum_z exp(L[i, z] - max) (logits only).
template <class Load>
TL_HD double lane_exp_sum(Load load, int64_t z_count, int lane, double row_max) {
  double s = 0.0;
  for (int64_t z = lane; z < z_count; z += kLanes) s += exp_f64(load(z) - row_max);
  return s;
}

// One lane's share of EEP_i = sum_z P[i, z] * cond[y_i, z] (cond_row = cond + y_i * z_count).
template <class Load>
TL_HD double lane_eep(Load load, const double* cond_row, int64_t z_count, int lane, bool from_logits, double lse) {
  double s = 0.0;
  for (int64_t z = lane; z < z_count; z += kLanes) s = fma_f64(prob_entry(load(z), from_logits, lse), cond_row[z], s);
  return s;
}

// The order in which a shfl_down tree (offsets 16, 8, 4, 2, 1) combines 32 lane values into lane 0.
TL_HD double lane_tree_sum(double* v) {
  for (int o = kLanes / 2; o > 0; o >>= 1)
    for (int l = 0; l < o; ++l) v[l] = v[l] + v[l + o];
  return v[0];
}

// Row verdict bits written by the row-statistics kernel.
enum RowFlag : uint8_t { kNonFinite = 1, kNegative = 2, kBadSum = 4 };

TL_HD uint8_t row_flags(bool nonfinite, bool negative, double sum, bool from_logits, double tol) {
  if (nonfinite) return kNonFinite;  // a row with NaN/inf has no meaningful sum or sign
  if (from_logits) return 0;         // any finite logit is valid
  uint8_t f = negative ? kNegative : 0;
  if (!(sum >= 1.0 - tol && sum <= 1.0 + tol)) f |= kBadSum;
  return f;
}

// joint[c, z] = acc + sum of P[order[idx], z] for idx in [begin, end): the rows of one class, in order.
template <class Load>
TL_HD double class_column_sum(double acc, const int32_t* order, int64_t begin, int64_t end, Load load) {
  for (int64_t idx = begin; idx < end; ++idx) acc += load(order[idx]);
  return acc;
}

}  // namespace leep_logic
}  // namespace tl
