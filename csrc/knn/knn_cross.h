// transferlab/csrc/knn: cross k-nearest neighbours of a block of query rows against a block of
// candidate rows of the SAME bank, the building block of sharded leave-one-out k-NN
// (transferlab/distributed.py): every worker scores its query block against one candidate block
// (or the whole bank) and the partial lists are min-merged by (dist, index).
//
// What it computes
//   Query row r has global index q_index[r] when q_index is given (scattered query rows, e.g. a
//   random subsample of the bank), else q_offset + r; candidate row c has global index c_offset + c. For each
//   query row, the (at most) k candidates with a different global index (self is excluded by
//   index, exactly as knn_loo_cpu), ordered by (dist, global index), with
//       dist = max(0, (|x_i|^2 + |x_j|^2) - (dot + dot))
//   computed by the SAME packed micro-kernels, K blocking and norm chain as knn_loo_cpu (see
//   knn.h, "Determinism of the distance itself"). fma(a, b, acc) == fma(b, a, acc) and the sum of
//   norms commutes, so every distance is bitwise equal to the one knn_loo_cpu uses for the pair,
//   whichever side is the query. Merging the partial lists of all candidate blocks therefore gives
//   knn_loo_cpu's output bit for bit.
//
// Outputs (caller-allocated, nq rows, written entirely)
//   nbr_index[nq * k] int64   global indices sorted by (dist, index); -1 past n_found
//   nbr_dist [nq * k] float32 their distances; +inf past n_found
//   n_found  [nq]     int64   min(k, number of candidates != self)
//   tie_count[nq]     int64   candidates (listed or not) whose distance equals the last listed one
//                             nbr_dist[r * k + n_found - 1]; 0 when n_found == 0
//   tie_same [nq]     int64   how many of those have c_labels[j] == q_labels[r] (labels given)
//
// Min-merge of partials P (each over disjoint candidate sets): take the k best of the union by
// (dist, index); with bd the merged k-th distance, tie_count = sum over P of (P.last == bd ?
// P.tie_count : #{listed entries of P at bd}) -- a partial whose last distance exceeds bd lists
// every candidate it has at bd, and one whose last distance is below bd (only possible when it
// holds fewer than k candidates) has none.
//
// Arguments
//   q, c       any DType, unit inner stride, same number of columns (std::invalid_argument else)
//   q_labels, c_labels  int32 codes, or both nullptr (tie_same then 0)
//   k >= 1; num_threads <= 0: OpenMP default.
//   q_index    nullptr, or nq global row indices (then q_offset is unused); not with back lists.
//
// How (CPU), and why the result does not depend on the thread count
//   The query rows are packed once (in super-chunks of at most 64 MB of float32 panels, shared by
//   the threads); a task is (candidate tile, group of query tiles): it packs its candidate tile
//   once and runs the packed micro-kernel over the group's query tiles, then knn_loo_cpu's
//   vectorised tile scan, which hands on only the pairs that can enter a list. The query tiles are
//   split into groups only when the candidate tiles are too few to keep every thread busy. Every
//   thread keeps private lists for the super-chunk's query rows (at most 16384) and, for the back
//   lists, all candidate rows, min-merged (after each super-chunk; back lists at the end) with the
//   rule above, which is exact and order-free: the output is bitwise the same for any thread
//   count, split or schedule.
//
// Cost: nq * nc * d multiply-adds; memory O(threads * (min(nq, 16384) + nc) * k) lists (nc only
// with back lists), min(nq, 16384, 64 MB / 4d) * d
// floats of packed queries, O(threads * T * (d + T)) packing buffers (T ~ 240-288 rows).
#pragma once

#include <cstdint>

#include "common/tl_common.h"

namespace tl {

struct KnnCrossOut {
  int64_t* nbr_index;  // rows * k
  float* nbr_dist;     // rows * k
  int64_t* n_found;    // rows
  int64_t* tie_count;  // rows
  int64_t* tie_same;   // rows
};

// fwd: the q rows' lists over the c rows (nq rows). back (optional, nullptr to skip): the c rows'
// lists over the q rows (nc rows), from the same distance tiles (dist is symmetric bitwise), so a
// pair of disjoint blocks costs one tile pass for both directions: sharded k-NN then does
// N^2 d / 2 multiply-adds like knn_loo_cpu.
void knn_cross_cpu(const MatrixView& q, int64_t q_offset, const MatrixView& c, int64_t c_offset,
                   const int32_t* q_labels, const int32_t* c_labels, int64_t k, const KnnCrossOut& fwd,
                   const KnnCrossOut* back, int num_threads, const int64_t* q_index = nullptr);

}  // namespace tl
