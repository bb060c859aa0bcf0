// transferlab/csrc/knn: fused leave-one-out k-nearest neighbours.
//
// What it computes
//   For every row i of X (n x d), the k nearest *other* rows j != i (self is excluded by index,
//   never by distance == 0: duplicate rows are common in real banks), with the squared distance
//       dist(i, j) = max(0, |x_i|^2 + |x_j|^2 - 2 x_i . x_j)        (all in float32)
//   Candidates are ordered by (dist, j) lexicographically, so the result is a pure function of
//   the data: independent of tiling, thread count and scheduling.
//
// Determinism of the distance itself
//   x_i . x_j is accumulated with one fixed K-blocking and one fixed per-lane order (see
//   knn_pair_dist_cpu, the scalar twin of the micro-kernels), so dist(i, j) is bitwise equal to
//   dist(j, i), bitwise equal for duplicate rows, and the same in every tile. This is what makes
//   "tied at exactly the same distance" a well-defined notion for the tie rule of SCORES.md.
//
// How (CPU)
//   Rows are cut into blocks; only tiles (I, J) with I <= J are computed, and each off-diagonal
//   tile updates the running top-k of both its rows and its columns (N^2 D work, not 2 N^2 D).
//   Tiles are float32 GEMM micro-kernels chosen at run time (generic / AVX2 / AVX-512) over packed
//   panels; the N x N matrix never exists (memory O(threads * (tile + n * k))).
//
// Outputs (caller-allocated, written entirely)
//   nbr_index[n * k]  int64   the k nearest others of row i, sorted by (dist, index)
//   nbr_dist [n * k]  float32 their distances
//   tie_count[n]      int64   number of others j != i whose distance equals the boundary distance
//                             nbr_dist[i * k + k - 1] (for k = 1: how many tie at the minimum),
//                             including the listed ones
//   tie_same [n]      int64   how many of those tie_count rows have labels[j] == labels[i];
//                             only written when labels != nullptr
//
// Arguments
//   x          n x d, any DType, unit inner stride (float64 is rounded to float32 per tile, half
//              types upcast per tile)
//   labels     n int32 class codes in [0, C), or nullptr
//   k          1 <= k <= n - 1 (std::invalid_argument otherwise)
//   num_threads  <= 0: OpenMP default
//
// Complexity: n^2 d / 2 multiply-adds (symmetry), O(n k) output, O(threads * n * k) scratch.
#pragma once

#include <cstdint>
#include <vector>

#include "common/tl_common.h"

namespace tl {

void knn_loo_cpu(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                 float* nbr_dist, int64_t* tie_count, int64_t* tie_same, int num_threads);

// The exact scalar twin of the tile distance: bitwise equal to the distance knn_loo_cpu uses
// for the pair (i, j) at the SIMD level currently selected. Used by tie-rule rescans and tests.
float knn_pair_dist_cpu(const MatrixView& x, int64_t i, int64_t j);

// Exact rescan for the k > 1 tie rule: for each requested row i = rows[r], the label histogram
// of the rows j != i whose distance (the same float32 value knn_loo_cpu computes) equals
// boundary[r] exactly. Output in CSR form: entries offsets[r] .. offsets[r + 1] hold (label, count)
// pairs sorted by label. Cost O(len(rows) * n * d).
void knn_boundary_labels_cpu(const MatrixView& x, const int32_t* labels, const int64_t* rows,
                             const float* boundary, int64_t nrows, std::vector<int64_t>& offsets,
                             std::vector<int32_t>& out_labels, std::vector<int64_t>& out_counts,
                             int num_threads);

// CUDA variant: same contract; all pointers are device pointers; `stream` is a cudaStream_t.
// The CUDA distance uses its own fixed accumulation order, so it is deterministic run to run
// and symmetric, but may differ from the CPU distance in the last bits.
void knn_loo_cuda(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                  float* nbr_dist, int64_t* tie_count, int64_t* tie_same, void* stream);

}  // namespace tl
