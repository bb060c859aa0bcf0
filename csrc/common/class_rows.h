// transferlab: the rows of each class, in row order (a stable counting sort of the labels), built
// in parallel pieces that a GPU runs one thread per piece and the CPU test binding runs in loops.
//
// The CUDA kernels that reduce over the rows of a class (leep joint, lda class sums) give each
// output element (class c, column z) to one thread, which adds the rows of class c in increasing
// row order: deterministic without atomics, and bitwise the row-by-row order the CPU kernels use.
// To walk the rows of a class they need this CSR: order[starts[c] .. starts[c] + counts[c]) are
// the rows with label c, increasing.
//
// Steps (the result is the unique stable sort, whatever the chunking):
//   1. hist_chunk(t):     hist[t * C + c] = #rows of chunk t with label c
//   2. scan_class(c):     hist[t * C + c] = #rows of class c in chunks < t; total[c] = #rows of c
//   3. class_starts():    starts[c] = sum_{c' < c} total[c'] (serial, C steps)
//   4. scatter_chunk(t):  order[starts[y_i] + rank of i among its class] = i
// Labels are codes in [0, C) (validated in Python).
#pragma once

#include <cstdint>

#include "common/tl_hd.h"

namespace tl {
namespace class_rows {

// Number of chunks: enough parallel pieces, but hist (chunks x C int32) kept under ~16 MB.
TL_HD int64_t num_chunks(int64_t n, int64_t n_classes) {
  int64_t by_rows = (n + 255) / 256;
  int64_t by_mem = (int64_t(1) << 22) / (n_classes > 0 ? n_classes : 1);
  int64_t c = by_rows < by_mem ? by_rows : by_mem;
  return c > 0 ? c : 1;
}

TL_HD int64_t chunk_rows(int64_t n, int64_t chunks) { return (n + chunks - 1) / chunks; }

TL_HD void hist_chunk(const int32_t* labels, int64_t n, int64_t chunk, int64_t t, int64_t C, int32_t* hist) {
  int32_t* h = hist + t * C;
  for (int64_t c = 0; c < C; ++c) h[c] = 0;
  const int64_t end = (t + 1) * chunk < n ? (t + 1) * chunk : n;
  for (int64_t i = t * chunk; i < end; ++i) ++h[labels[i]];
}

TL_HD void scan_class(int32_t* hist, int64_t chunks, int64_t C, int64_t c, int64_t* total) {
  int64_t run = 0;
  for (int64_t t = 0; t < chunks; ++t) {
    const int32_t v = hist[t * C + c];
    hist[t * C + c] = static_cast<int32_t>(run);
    run += v;
  }
  total[c] = run;
}

TL_HD void class_starts(const int64_t* total, int64_t C, int64_t* starts) {
  int64_t run = 0;
  for (int64_t c = 0; c < C; ++c) {
    starts[c] = run;
    run += total[c];
  }
}

TL_HD void scatter_chunk(const int32_t* labels, int64_t n, int64_t chunk, int64_t t, int64_t C,
                         const int64_t* starts, int32_t* hist, int32_t* order) {
  int32_t* h = hist + t * C;
  const int64_t end = (t + 1) * chunk < n ? (t + 1) * chunk : n;
  for (int64_t i = t * chunk; i < end; ++i) {
    const int32_t c = labels[i];
    order[starts[c] + h[c]++] = static_cast<int32_t>(i);
  }
}

}  // namespace class_rows
}  // namespace tl
