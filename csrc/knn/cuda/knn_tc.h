// transferlab/csrc/knn/cuda: the tensor-core (TF32) first pass of the exact leave-one-out k-NN
// (knn_tc.cu): a rigorous per-pair error bound and the per-row candidate selection, as host+device
// functions, so that the test-only module _cuda_logic_testing runs the very same logic serially.
//
// Contract
//   The result is exactly the exact path's (knn_cuda.cu / knn_tiles.h): neighbours, distances and
//   tie counts. A TF32 pass gives each pair an approximate distance a_ij and a bound B_ij with
//       |a_ij - e_ij| <= B_ij,  e_ij = the exact path's float32 distance (pair_dist of the fma-chain
//                                      norms and dot, knn_tiles.h), before its clamp at 0
//   (the clamp is 1-Lipschitz, so the bound holds after it too). Per row i, U_k(i) = the k-th
//   smallest upper bound a_ij + B_ij over j != i; the candidates are every j != i with
//   a_ij - B_ij <= U_k(i). Then each candidate is re-checked in the exact path's arithmetic
//   (float32 fma chain, pair_dist) and offered to the exact path's running top-k (topk_row.h).
//   Why that is exact: at least k rows have e <= U_k, so the exact k-th distance thr <= U_k; every j
//   with e_ij <= thr has lower bound <= e_ij <= thr <= U_k, so it is a candidate. The top-k state
//   (list, boundary, tie counts) is a function of the set of rows at distance <= thr only, which
//   the candidates contain: same neighbours, same distances, same tie counts, same tie rule.
//   A row whose candidates overflow the per-row buffer (cap), e.g. all-equal rows, is flagged and
//   computed by the exact path instead: never a wrong answer, only a slower one.
//
// The bound (u = 2^-24, float32 unit roundoff; D = n_features; P = sum_p |x_p y_p|)
//   Exact path: dot_e = fma chain from 0; D roundings, so |dot_e - x.y| <= g_D P, g_D = D u / (1 - D u)
//     (Higham, Accuracy and Stability, Thm 3.1 / eq. 3.5); the norms n_i are the same chain (x = y).
//   TF32 pass: each float32 input is rounded to TF32 (10 stored mantissa bits). We allow relative
//     error t = 2^-10 (truncation; round-to-nearest, which __float_to_tf32 does, needs only 2^-11),
//     so |x~ y~ - x y| <= (2t + t^2) |x y|. A TF32 x TF32 product has <= 22 significant bits: exact
//     in float32. The tensor core adds the products into a float32 accumulator with its own order,
//     alignment and rounding (measured to truncate, Fasi et al. 2021, "Numerical behavior of NVIDIA
//     tensor cores", PeerJ CS 7:e330). We allow each of its steps (a block of m <= 8 products, zero
//     padding included, plus the accumulator) an error of (m + 2) 2^-23 times the sum of the
//     magnitudes of its operands. The kernel runs 4 ceil(D / 32) <= D / 8 + 4 steps, each with
//     |accumulator| <= sum |x~ y~| (1 + small), so the whole accumulation is within
//     10 (D / 8 + 5) 2^-23 <= g_acc = (4 D + 64) 2^-23 of sum |x~ y~| <= (1 + t)^2 P.
//     Hence |dot~ - dot_e| <= K P,  K = g_D + (2t + t^2) + g_acc (1 + t)^2.
//   Distance: S = n_i + n_j (float32, the same value on both paths), e = fl(S - 2 dot_e) and
//     a = fl(S - 2 dot~) (doubling is exact), each one rounding: |e - a| <= 2 K P + u (2 S + 2|dot_e|
//     + 2|dot~|) with |dot_e| <= (1 + g_D) P and |dot~| <= (1 + g_D + K) P.
//   P from the norms: P <= |x| |y| (Cauchy-Schwarz) and n_i >= |x_i|^2 (1 - g_D) (positive terms),
//     so with r_i = sqrt(n_i) in float32 (correctly rounded) P <= fl(r_i r_j) / ((1 - u)^3 (1 - g_D)).
//   Evaluating B = C1 fl(r_i r_j) + C2 S + C3 in float32 and forming a - B, a + B in float32 cost a
//     few more roundings of magnitude <= u (|a| + B), |a| <= S + 2 (1 + g_D + K) P: folded into C1
//     (C1 = (2 K + 2u (1 + g_D) + 4u (1 + g_D + K)) / ((1 - u)^3 (1 - g_D)) and C2 = 3u, both times
//     (1 + 4u) for B's own roundings and (1 + 2^-16) of slack).
//   C3 = (D + 64) 2^-124 covers absolute errors near underflow, doubled by the distance: a tensor
//     core may flush a subnormal accumulator to zero (<= 2^-126 per step, <= D / 8 + 5 steps) and an
//     fma of the exact chain may land below 2^-126 (<= 2^-150 each, D of them).
//   Range: the relative models above need normal TF32 inputs and no overflow. The norms pass flags
//     any nonzero |x| outside [2^-60, 2^50] (products then stay >= 2^-120, norms <= D 2^100) or a
//     non-finite value, and such a bank runs the exact path whole. (knn_loo rescales banks to unit
//     scale by a power of two first, so real banks are far inside.)
//   Size: for unit rows (n = 1) and D = 2048, K ~ 3.1e-3 and B ~ 6.1e-3: the pass excludes every j
//   whose approximate distance is more than ~0.012 above the row's k-th one (squared distances of
//   unit rows lie in [0, 4]); the exact re-check costs
//   (#candidates) D per row.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "common/tl_hd.h"
#include "knn/cuda/knn_tiles.h"
#include "knn/topk_row.h"

namespace tl {
namespace knn_tc {

// ------------------------------------------------------------------ the bound
struct TcBound {
  float c1;  // times fl(r_i r_j)
  float c2;  // times S = n_i + n_j
  float c3;  // absolute (subnormal results)
};

// The constants for D features, rounded up to float32 (computed in float64: every step is an
// upward-biased over-estimate, see the header). Valid for 1 <= D < 2^15.
TL_HD TcBound tc_bound(int64_t d) {
  const double u = 0x1p-24, t = 0x1p-10, D = (double)d;
  const double gD = D * u / (1.0 - D * u);
  const double gacc = (4.0 * D + 64.0) * 0x1p-23;
  const double K = gD + (2.0 * t + t * t) + gacc * (1.0 + t) * (1.0 + t);
  const double Pscale = 1.0 / ((1.0 - u) * (1.0 - u) * (1.0 - u) * (1.0 - gD));
  const double slack = 1.0 + 0x1p-16;
  // |dot_e| <= (1 + gD) P, |dot~| <= (1 + gD + K) P, |a| <= S + 2 (1 + gD + K) P; the rounding of
  // B's own evaluation and of a -/+ B adds u (|a| + B) (see the header).
  const double c1 = (2.0 * K + 2.0 * u * (1.0 + gD) + 4.0 * u * (1.0 + gD + K)) * Pscale * slack * (1.0 + 4.0 * u);
  const double c2 = 3.0 * u * slack * (1.0 + 4.0 * u);
  const double c3 = (D + 64.0) * 0x1p-124;
  TcBound b;
  // float(v) rounds to nearest: nudge up by 2^-20 relative so the float is >= the double.
  b.c1 = (float)(c1 * (1.0 + 0x1p-20));
  b.c2 = (float)(c2 * (1.0 + 0x1p-20));
  b.c3 = (float)(c3 * (1.0 + 0x1p-20)) + std::numeric_limits<float>::denorm_min();
  return b;
}

// Magnitudes the bound's relative models cover (the norms pass checks every input against them).
TL_HD bool tc_in_range(float v) {
  const float a = v < 0.f ? -v : v;
  if (!(a <= 0x1p50f)) return false;  // also NaN / inf
  return a == 0.f || a >= 0x1p-60f;
}

// The pair's approximate distance a and bound B (both float32), then its interval [lo, up] around
// the exact distance e (before the clamp at 0). s = n_i + n_j as float32, rr = r_i * r_j as float32,
// dot = the TF32 dot product.
TL_HD void tc_approx(const TcBound& b, float s, float rr, float dot, float* a, float* bnd) {
  *a = s - (dot + dot);
  *bnd = (b.c1 * rr + b.c2 * s) + b.c3;
}

TL_HD void tc_interval(const TcBound& b, float s, float rr, float dot, float* lo, float* up) {
  float a, bnd;
  tc_approx(b, s, rr, dot, &a, &bnd);
  *lo = a - bnd;
  *up = a + bnd;
}

// Host twin of the TF32 input rounding (round to nearest, ties away: cvt.rna.tf32.f32 /
// wmma::__float_to_tf32): keeps 10 mantissa bits. Used by the CPU emulation of the pass only.
inline float tf32_round_host(float v) {
  if (!std::isfinite(v)) return v;
  uint32_t b;
  static_assert(sizeof(b) == sizeof(v), "float32");
  __builtin_memcpy(&b, &v, 4);
  b = (b + 0x1000u) & ~0x1fffu;
  float r;
  __builtin_memcpy(&r, &b, 4);
  return r;
}

// ------------------------------------------------------------------ candidate selection of one row
// ub[0 .. nu) = the nu <= k smallest upper bounds seen (ascending); cidx / clo[0 .. nc) = the
// candidates kept (index, lower bound), nc <= cap. A candidate is kept when its lower bound is <=
// the current k-th upper bound (+inf before k were seen). That threshold only decreases, so a kept
// entry whose lower bound exceeds it later can never be a final candidate: when the buffer is full
// those are pruned first; if none can be, the entry with the largest lower bound (the new one
// included) is dropped and `dropped` keeps the smallest lower bound ever dropped. Every kept entry
// has a lower bound <= every dropped one's, so the row is exact iff dropped > the final threshold
// (cand_overflow); otherwise it runs the exact path. A needed candidate (lower bound <= the final
// threshold) is only dropped when cap others, all needed too, are kept: a row overflows iff more
// than cap rows j != i have a lower bound <= its final threshold, whatever the order of the offers.
struct CandState {
  int32_t nu;
  int32_t nc;
  float dropped;  // +inf: nothing dropped; -inf: the row must run the exact path
};

TL_HD CandState cand_empty() { return CandState{0, 0, std::numeric_limits<float>::infinity()}; }

TL_HD float cand_threshold(const CandState& s, const float* ub, int64_t k) {
  return s.nu == k ? ub[k - 1] : std::numeric_limits<float>::infinity();
}

// True when a candidate that may be needed was dropped: the row then runs the exact path.
TL_HD bool cand_overflow(const CandState& s, const float* ub, int64_t k) {
  return s.dropped <= cand_threshold(s, ub, k);
}

TL_HD void cand_offer(CandState& s, float* ub, int32_t* cidx, float* clo, int64_t k, int64_t cap, float lo,
                      float up, int64_t j) {
  float thr = cand_threshold(s, ub, k);
  if (up < thr) {  // insert into the k smallest upper bounds (the largest falls off when full)
    int64_t p = s.nu == k ? k - 1 : s.nu;
    while (p > 0 && ub[p - 1] > up) {
      ub[p] = ub[p - 1];
      --p;
    }
    ub[p] = up;
    if (s.nu < k) ++s.nu;
    thr = cand_threshold(s, ub, k);
  }
  if (!(lo <= thr) || !(lo < s.dropped)) return;  // excluded, or no better than one already dropped
  if (s.nc == cap) {  // prune what the lowered threshold has excluded since it was kept
    int32_t w = 0;
    for (int32_t r = 0; r < s.nc; ++r)
      if (clo[r] <= thr) {
        cidx[w] = cidx[r];
        clo[w] = clo[r];
        ++w;
      }
    s.nc = w;
  }
  if (s.nc == cap) {  // still full: drop the largest lower bound (this one's if it is the largest)
    int32_t m = 0;
    for (int32_t r = 1; r < s.nc; ++r)
      if (clo[r] > clo[m]) m = r;
    if (clo[m] <= lo) {
      s.dropped = lo;
      return;
    }
    s.dropped = clo[m] < s.dropped ? clo[m] : s.dropped;
    cidx[m] = (int32_t)j;
    clo[m] = lo;
    return;
  }
  cidx[s.nc] = (int32_t)j;
  clo[s.nc] = lo;
  ++s.nc;
}

// Offers the len pairs of one tile line: dot[t * step] is the TF32 dot product with row idx0 + t,
// whose norm and root are nrm[t * nstep], rt[t * nstep]; `self` is skipped.
TL_HD void cand_scan(CandState& s, float* ub, int32_t* cidx, float* clo, int64_t k, int64_t cap, const TcBound& b,
                     float n_i, float r_i, const float* dot, int64_t step, const float* nrm, const float* rt,
                     int64_t nstep, int64_t len, int64_t idx0, int64_t self) {
  for (int64_t t = 0; t < len; ++t) {
    if (idx0 + t == self) continue;
    float lo, up;
    tc_interval(b, n_i + nrm[t * nstep], r_i * rt[t * nstep], dot[t * step], &lo, &up);
    cand_offer(s, ub, cidx, clo, k, cap, lo, up, idx0 + t);
  }
}

// Candidate buffer size per row for k neighbours: room for the k plus near ties; rows with more
// candidates run the exact path.
TL_HD int64_t cand_cap(int64_t k) { return k + 32 + (k < 32 ? k : 32); }

// ------------------------------------------------------------------ the exact re-check of one row
// The exact path's dot product: one fma chain from 0 in increasing feature order (knn_tiles.h).
// `x(i, p)` reads feature p of row i as float32 (the exact path's input rounding).
template <class Rows>
TL_HD float exact_dot(const Rows& x, int64_t i, int64_t j, int64_t d) {
  float acc = 0.f;
  for (int64_t p = 0; p < d; ++p) acc = fma_f32(x(i, p), x(j, p), acc);
  return acc;
}

// Row i's exact top-k from its candidates: each kept candidate whose lower bound is <= the final
// k-th upper bound gets the exact path's distance (pair_dist of the exact norms and dot) and is
// offered to the exact running top-k (td / ti / state, as knn_tiles' topk_scan).
template <class Rows>
TL_HD void tc_recheck_row(const Rows& x, int64_t d, const float* norms, int64_t i, const CandState& c,
                          const float* ub, const int32_t* cidx, const float* clo, int64_t k,
                          knn_tiles::TopkState& s, float* td, int64_t* ti, const int32_t* labels) {
  const float thr = cand_threshold(c, ub, k);
  const int32_t yi = labels ? labels[i] : 0;
  for (int32_t r = 0; r < c.nc; ++r) {
    if (!(clo[r] <= thr)) continue;
    const int64_t j = cidx[r];
    const float e = knn_tiles::pair_dist(norms[i], norms[j], exact_dot(x, i, j, d));
    if (e <= s.thr) knn_tiles::topk_insert(s, td, ti, k, e, j, labels, yi);
  }
}

}  // namespace knn_tc
}  // namespace tl
