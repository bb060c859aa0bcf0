// transferlab/csrc/knn/cuda: the decomposition of the CUDA leave-one-out k-NN (knn_cuda.cu), as
// host+device functions so that the CPU test binding runs the very same logic serially.
//
// Decomposition (why it is exact and deterministic)
//   * Rows are cut into nb blocks of T rows. Tile (I, J) holds the distances between block I
//     and block J. Only I <= J is computed: n^2 d / 2 multiply-adds.
//   * Diagonal tiles (I, I) run first, in one launch, one CTA per block: the CTA owns rows of I
//     alone. Its dot products x_r . x_r are the squared norms (the same chain, so exact
//     duplicates are at distance exactly 0), which the later tiles read.
//   * Off-diagonal tiles run in nb - 1 (nb even) or nb (nb odd) launches, "rounds", scheduled by
//     the circle method of round-robin tournaments: in one round every block appears in at most
//     one pair, so the CTA of tile (I, J) owns the rows of I and of J exclusively and updates
//     the running top-k of both (row side and column side of the tile) without atomics and
//     without per-tile partial lists. Every unordered pair of blocks meets in exactly one round.
//     This replaces the "partial lists + merge kernel" design: the same n^2 d / 2 work, O(n k)
//     state, no O(n * nb * k) partial buffers.
//   * The running top-k of a row (topk_insert, knn/topk_row.h, shared with the CPU kernel) keeps the k best candidates by (dist, index) and
//     counts every candidate seen at the current boundary distance. Its final state is a
//     function of the SET of candidates only (not of their order), so the result does not depend
//     on T, on the round order or on the scan order, and equals the CPU kernel's result whenever
//     the distances agree.
//   * dist(i, j) = max(0, (|x_i|^2 + |x_j|^2) - (dot + dot)), dot = one fused multiply-add chain
//     over p = 0 .. d - 1 from 0 (fma_f32), the same as the CPU AVX2 / AVX-512 kernels; fma is
//     commutative in its product operands, so dist(i, j) == dist(j, i) bitwise.
#pragma once

#include <cstdint>
#include <limits>

#include "common/tl_hd.h"
#include "knn/topk_row.h"

namespace tl {
namespace knn_tiles {

// ------------------------------------------------------------------ distances
TL_HD float pair_dist(float norm_i, float norm_j, float dot) {
  const float d = (norm_i + norm_j) - (dot + dot);
  return d > 0.f ? d : 0.f;
}

// ------------------------------------------------------------------ round-robin tile schedule
// Slots P = nb rounded up to even (slot nb is a dummy when nb is odd); rounds r = 0 .. P - 2;
// pairs s = 0 .. P / 2 - 1 per round. Slot P - 1 is the fixed one of the circle method.
TL_HD int64_t rr_slots(int64_t nb) { return nb + (nb & 1); }
TL_HD int64_t rr_rounds(int64_t nb) { return nb < 2 ? 0 : rr_slots(nb) - 1; }
TL_HD int64_t rr_pairs(int64_t nb) { return rr_slots(nb) / 2; }

// Pair s of round r as blocks I < J; false when the pair involves the dummy slot.
TL_HD bool rr_pair(int64_t nb, int64_t r, int64_t s, int64_t* I, int64_t* J) {
  const int64_t M = rr_slots(nb) - 1;
  int64_t a, b;
  if (s == 0) {
    a = M;
    b = r;
  } else {
    a = (r + s) % M;
    b = (r - s + M) % M;
  }
  if (a >= nb || b >= nb) return false;
  *I = a < b ? a : b;
  *J = a < b ? b : a;
  return true;
}

// Offers the len candidates line[t * step] with indices idx0 + t (t < len), skipping `self`.
// A row of a distance tile (step 1) or a column (step = the tile's leading dimension).
TL_HD void topk_scan(TopkState& s, float* td, int64_t* ti, int64_t k, const float* line, int64_t step,
                     int64_t len, int64_t idx0, int64_t self, const int32_t* labels, int32_t yi) {
  for (int64_t t = 0; t < len; ++t) {
    const float d = line[t * step];
    if (d <= s.thr && idx0 + t != self) topk_insert(s, td, ti, k, d, idx0 + t, labels, yi);
  }
}

}  // namespace knn_tiles
}  // namespace tl
