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
//   x_i . x_j is one sequential multiply-add chain per pair, acc = 0; acc = acc + x_i[p] * x_j[p]
//   for p = 0 .. d-1 (fused, as std::fma, on the AVX2 / AVX-512 paths; a rounded multiply then a
//   rounded add on the generic path), with inputs rounded to float32 first. The micro-kernels keep
//   that chain per (row, column) element and carry it across the K blocks (KC = 256) through the
//   C tile, so the blocking never changes a bit. |x_i|^2 is the same chain with j = i, and
//       dist = (|x_i|^2 + |x_j|^2) - (dot + dot), then d > 0 ? d : 0
//   in that order. Hence dist(i, j) == dist(j, i) bitwise, exact duplicates are at distance
//   exactly 0 and at bitwise-equal distances from every other row, and knn_pair_dist_cpu (a scalar
//   re-statement) reproduces every distance. This is what makes "tied at exactly the same
//   distance" a well-defined notion for the tie rule of SCORES.md.
//   The SIMD level (tl::simd_level(), capped by TRANSFERLAB_SIMD) selects fused vs unfused, so
//   distances may differ in the last bit between levels, never within one process.
//
// How (CPU)
//   Rows are cut into blocks of T rows (T = a multiple of lcm(MR, NR) near 240: AVX2 6 x 16
//   micro-tile -> T = 240, AVX-512 12 x 32 -> 288, generic 4 x 8 -> 240). A task (dynamic
//   schedule) is one block-row I: its A block is packed once (float32, MR-row panels per K block)
//   and reused for every tile (I, J), J >= I; each B block is packed (NR-row panels) per tile,
//   converting the input dtype to float32 there. Only tiles with I <= J are computed (micro-tiles
//   entirely below the diagonal are skipped) and each pair updates the running top-k of both its
//   row and its column: n^2 d / 2 multiply-adds. A vectorised scan of each finished tile compares
//   distances with the per-row thresholds (the current k-th distance) and calls the scalar top-k
//   update only for pairs that can enter. Every thread keeps a private top-k state for all n rows
//   (list sorted by (dist, index), boundary distance, counts at the boundary); the states are
//   merged row by row at the end with the total order (dist, index), so the output is bitwise
//   identical for any thread count. The n x n matrix never exists.
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
// Complexity: n^2 d / 2 multiply-adds (symmetry); memory O(n k) output, O(threads * n * (k + 3))
// top-k state and O(threads * T * (2 d + T)) packing buffers (about 3.7 MB per thread at d = 768).
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
// TRANSFERLAB_KNN_CUDA_PRECISION=exact (default) | tf32 selects one of the two below; same result.
void knn_loo_cuda(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                  float* nbr_dist, int64_t* tie_count, int64_t* tie_same, void* stream);
// The float32 CUDA-core tiles (knn/cuda/knn_cuda.cu).
void knn_loo_cuda_exact(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                        float* nbr_dist, int64_t* tie_count, int64_t* tie_same, void* stream);
// A TF32 tensor-core pass with a rigorous per-pair bound, then the exact re-check of the candidates
// it cannot exclude (knn/cuda/knn_tc.h, knn_tc.cu): bitwise the result of knn_loo_cuda_exact.
void knn_loo_cuda_tf32(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                       float* nbr_dist, int64_t* tie_count, int64_t* tie_same, void* stream);

}  // namespace tl
