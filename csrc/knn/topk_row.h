// transferlab/csrc/knn: the running top-k of one row, shared by the CPU leave-one-out kernel
// (cpu/knn_cpu.cpp) and the CUDA one (cuda/knn_tiles.h, knn_cuda.cu): host+device (TL_HD), so
// both run the same insertion and tie-counting code and the CPU test binding checks it serially.
// (knn_cross_cpu.cpp keeps its own RowTopK: its partial lists count ties at the last listed
// distance even before the list is full, which its min-merge of partial results needs.)
#pragma once

#include <cstdint>
#include <limits>

#include "common/tl_hd.h"

namespace tl {
namespace knn_tiles {

// ------------------------------------------------------------------ running top-k of one row
// The list td/ti (k entries, sorted by (dist, index)) holds the m <= k best candidates so far.
// thr is the k-th distance once m == k (+inf before); cnt counts every candidate seen at exactly
// thr, listed or not, and same those of them with the row's label. Invariant: every candidate
// with dist < thr is listed, and every candidate at thr that is not listed was counted.
struct TopkState {
  float thr;
  int32_t m;
  int64_t cnt;
  int64_t same;
};

// Inserts (d, j) into the list td/ti sorted by (dist, index), whose entries [0, p) are kept and
// entry p is free (or the one that falls off). Shared by every running top-k of the project.
TL_HD void sorted_insert(float* td, int64_t* ti, int64_t p, float d, int64_t j) {
  while (p > 0 && (td[p - 1] > d || (td[p - 1] == d && ti[p - 1] > j))) {
    td[p] = td[p - 1];
    ti[p] = ti[p - 1];
    --p;
  }
  td[p] = d;
  ti[p] = j;
}

TL_HD TopkState topk_empty() {
  return TopkState{std::numeric_limits<float>::infinity(), 0, 0, 0};
}

TL_HD bool same_label(const int32_t* labels, int32_t yi, int64_t j) {
  return labels != nullptr && labels[j] == yi;
}

TL_HD void topk_recount(TopkState& s, const float* td, const int64_t* ti, int64_t k,
                        const int32_t* labels, int32_t yi) {
  int64_t c = 0, sm = 0;
  for (int64_t p = 0; p < k; ++p) {
    if (td[p] == s.thr) {
      ++c;
      if (same_label(labels, yi, ti[p])) ++sm;
    }
  }
  s.cnt = c;
  s.same = sm;
}

// Offers candidate (d, j) to the row whose label is yi.
TL_HD void topk_insert(TopkState& s, float* td, int64_t* ti, int64_t k, float d, int64_t j,
                       const int32_t* labels, int32_t yi) {
  if (!(d <= s.thr)) return;
  if (s.m == k && d == s.thr) {
    ++s.cnt;
    if (same_label(labels, yi, j)) ++s.same;
    if (j > ti[k - 1]) return;  // at the boundary but later by index: counted, not listed
  }
  sorted_insert(td, ti, (s.m == k) ? k - 1 : s.m, d, j);  // when full, the last entry falls off
  if (s.m < k) ++s.m;
  if (s.m == k && td[k - 1] != s.thr) {
    // The boundary moved down (or the list just filled): every candidate at the new boundary
    // was below the old one, hence listed, so the list alone gives the counts.
    s.thr = td[k - 1];
    topk_recount(s, td, ti, k, labels, yi);
  }
}

}  // namespace knn_tiles
}  // namespace tl
