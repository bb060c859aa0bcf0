// transferlab/csrc/leep: the two passes behind LEEP (Nguyen et al. 2020) and NCE.
//
//   J[y, z] = sum_{i : y_i = y} P[i, z]          (float64; the caller divides by N)
//   EEP_i   = sum_z P[i, z] * cond[y_i, z]       (float64; cond = P(y | z) built from J)
//
// P is n x z_count source probabilities (any DType, unit inner stride) or, with from_logits,
// logits whose softmax is taken in float64 per row via log-sum-exp (never materialised).
//
// Determinism and chunking: leep_joint_* splits the work over *columns* of P and adds rows in
// row order, so J is bitwise the same for any thread count, and accumulating chunk after chunk
// into the same J gives bitwise the one-shot result. EEP is per row.
//
// Validation happens in the same pass as the row statistics (leep_row_stats_*), before J:
// non-finite entries, negative entries, and row sums outside [1 - tol, 1 + tol].
#pragma once

#include <cstdint>

#include "common/tl_common.h"

namespace tl {

// Per-row statistics of P (first pass). Counts are over rows; first_* are row indices or -1.
struct ProbRowStats {
  int64_t nonfinite_rows = 0, first_nonfinite_row = -1;
  int64_t negative_rows = 0, first_negative_row = -1;
  int64_t bad_sum_rows = 0, first_bad_sum_row = -1;
  double min_row_sum = 0.0, max_row_sum = 0.0;
};

// Fills stats. With from_logits the sums/negatives checks are skipped (any real logit is valid)
// and row_lse[n] receives log sum_z exp(L[i, z]) in float64 for the later passes; otherwise
// row_lse may be nullptr.
void leep_row_stats_cpu(const MatrixView& p, bool from_logits, double sum_tolerance,
                        ProbRowStats* stats, double* row_lse, int num_threads);

// joint[c * z_count + z] += sum over rows i with labels[i] == c of P[i, z].
// row_lse: required when from_logits (from leep_row_stats_cpu), else ignored.
void leep_joint_cpu(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                    const double* row_lse, double* joint, int num_threads);

// eep[i] = sum_z P[i, z] * cond[labels[i] * z_count + z].
void leep_eep_cpu(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                  const double* row_lse, const double* cond, double* eep, int num_threads);

// CUDA variants: same contracts, device pointers, `stream` is a cudaStream_t. joint/eep are
// float64 on the device. The CUDA joint uses atomics-free column ownership as on the CPU.
void leep_row_stats_cuda(const MatrixView& p, bool from_logits, double sum_tolerance,
                         ProbRowStats* stats_host, double* row_lse, void* stream);
void leep_joint_cuda(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                     const double* row_lse, double* joint, void* stream);
void leep_eep_cuda(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                   const double* row_lse, const double* cond, double* eep, void* stream);

}  // namespace tl
