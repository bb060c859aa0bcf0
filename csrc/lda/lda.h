// transferlab/csrc/lda: class statistics and scatter (Gram) matrices for the LDA family
// (SFDA, and later LogME, H-score, GBC, TransRate), for one model or many models in one call.
//
//   counts[c]        += number of rows with labels[i] == c
//   sums[c, j]       += sum_{i : y_i = c} w_i (x_ij - shift_j)             (float64)
//   gram[a, b]       += sum_i s_i^2 (x_ia - shift_a)(x_ib - shift_b)       (float64, d x d, full)
//   out[i, k]         = sum_j x_ij W[k, j] + b[k]                          (float64 projection)
//
// shift (length d), w and s (length n) are optional (nullptr = 0 / 1 / 1). Passing the mean as
// shift keeps the centred Gram accurate; s_i = p_i gives SFDA's re-weighted second fit without
// materialising the mixed features.
//
// Precision: products of float32 (or upcast half) inputs are exact in float64 and every sum is
// float64; float64 inputs are used as they are.
// Determinism: the work is split over output blocks (classes x feature blocks for the sums,
// d x d tiles for the Gram, row blocks for the projection); each output element is summed over
// rows in one fixed order, so results are bitwise identical for any thread count.
// Complexity: sums O(n d); Gram n d (d + 1) / 2 multiply-adds (upper tiles only, mirrored);
// projection O(n d k). Memory: outputs plus O(threads * tile) scratch; never n x C one-hot.
#pragma once

#include <cstdint>

#include "common/tl_common.h"

namespace tl {

void lda_class_sums_cpu(const MatrixView& x, const int32_t* labels, int64_t n_classes,
                        const double* shift, const double* row_weight, int64_t* counts,
                        double* sums, int num_threads);

void lda_gram_cpu(const MatrixView& x, const double* shift, const double* row_scale, double* gram,
                  int num_threads);

// Many models at once (the "batched SFDA" kernel): gram_m += Gram(xs[m], shifts[m], row_scale)
// for m in [0, n_models). shifts may be nullptr (no shift for any model) or hold nullptrs.
void lda_gram_batched_cpu(const MatrixView* xs, int64_t n_models, const double* const* shifts,
                          const double* row_scale, double* const* grams, int num_threads);

void lda_project_cpu(const MatrixView& x, const double* w, const double* b, int64_t n_out,
                     double* out, int num_threads);

// CUDA variants: same contracts, device pointers, `stream` is a cudaStream_t.
void lda_class_sums_cuda(const MatrixView& x, const int32_t* labels, int64_t n_classes,
                         const double* shift, const double* row_weight, int64_t* counts,
                         double* sums, void* stream);
void lda_gram_cuda(const MatrixView& x, const double* shift, const double* row_scale, double* gram,
                   void* stream);
void lda_project_cuda(const MatrixView& x, const double* w, const double* b, int64_t n_out,
                      double* out, void* stream);

}  // namespace tl
