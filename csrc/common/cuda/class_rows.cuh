// transferlab: the stable class CSR (rows of each class in row order) built on the device, used by
// the kernels that reduce over the rows of a class without atomics (leep joint, lda class sums).
// Logic and its CPU twin: common/class_rows.h.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace tl {
namespace cuda_detail {

// order[starts[c] .. starts[c] + totals[c]) = the rows with labels[i] == c, increasing. All device
// pointers (order: n, starts / totals: n_classes); queued on `stream`. labels must be in [0, C).
void build_class_rows(const int32_t* labels, int64_t n, int64_t n_classes, int32_t* order, int64_t* starts,
                      int64_t* totals, cudaStream_t stream);

}  // namespace cuda_detail
}  // namespace tl
