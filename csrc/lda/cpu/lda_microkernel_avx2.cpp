// AVX2 + FMA float64 micro-kernel of the LDA Gram and projection (see lda_internal.h).
// 6 x 8 register tile: 12 ymm accumulators, 2 ymm of B and 1 broadcast of A per step (the BLIS
// Haswell dgemm shape: 12 FMAs per 8 loads keeps both FMA pipes busy).
#include <immintrin.h>

#include "lda/cpu/lda_internal.h"

namespace tl {
namespace lda_detail {
namespace {

constexpr int MR = 6;
constexpr int NR = 8;

void micro_avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc) {
  __m256d c00 = _mm256_loadu_pd(c + 0 * ldc), c01 = _mm256_loadu_pd(c + 0 * ldc + 4);
  __m256d c10 = _mm256_loadu_pd(c + 1 * ldc), c11 = _mm256_loadu_pd(c + 1 * ldc + 4);
  __m256d c20 = _mm256_loadu_pd(c + 2 * ldc), c21 = _mm256_loadu_pd(c + 2 * ldc + 4);
  __m256d c30 = _mm256_loadu_pd(c + 3 * ldc), c31 = _mm256_loadu_pd(c + 3 * ldc + 4);
  __m256d c40 = _mm256_loadu_pd(c + 4 * ldc), c41 = _mm256_loadu_pd(c + 4 * ldc + 4);
  __m256d c50 = _mm256_loadu_pd(c + 5 * ldc), c51 = _mm256_loadu_pd(c + 5 * ldc + 4);
  for (int64_t p = 0; p < kc; ++p) {
    const __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
    __m256d av;
    av = _mm256_broadcast_sd(a + 0), c00 = _mm256_fmadd_pd(av, b0, c00), c01 = _mm256_fmadd_pd(av, b1, c01);
    av = _mm256_broadcast_sd(a + 1), c10 = _mm256_fmadd_pd(av, b0, c10), c11 = _mm256_fmadd_pd(av, b1, c11);
    av = _mm256_broadcast_sd(a + 2), c20 = _mm256_fmadd_pd(av, b0, c20), c21 = _mm256_fmadd_pd(av, b1, c21);
    av = _mm256_broadcast_sd(a + 3), c30 = _mm256_fmadd_pd(av, b0, c30), c31 = _mm256_fmadd_pd(av, b1, c31);
    av = _mm256_broadcast_sd(a + 4), c40 = _mm256_fmadd_pd(av, b0, c40), c41 = _mm256_fmadd_pd(av, b1, c41);
    av = _mm256_broadcast_sd(a + 5), c50 = _mm256_fmadd_pd(av, b0, c50), c51 = _mm256_fmadd_pd(av, b1, c51);
    a += MR;
    b += NR;
  }
  _mm256_storeu_pd(c + 0 * ldc, c00), _mm256_storeu_pd(c + 0 * ldc + 4, c01);
  _mm256_storeu_pd(c + 1 * ldc, c10), _mm256_storeu_pd(c + 1 * ldc + 4, c11);
  _mm256_storeu_pd(c + 2 * ldc, c20), _mm256_storeu_pd(c + 2 * ldc + 4, c21);
  _mm256_storeu_pd(c + 3 * ldc, c30), _mm256_storeu_pd(c + 3 * ldc + 4, c31);
  _mm256_storeu_pd(c + 4 * ldc, c40), _mm256_storeu_pd(c + 4 * ldc + 4, c41);
  _mm256_storeu_pd(c + 5 * ldc, c50), _mm256_storeu_pd(c + 5 * ldc + 4, c51);
}

const LdaIsa kAvx2 = {"avx2", MR, NR, true, micro_avx2};

}  // namespace

const LdaIsa* isa_avx2() { return &kAvx2; }

}  // namespace lda_detail
}  // namespace tl
