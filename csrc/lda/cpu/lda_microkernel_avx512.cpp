// AVX-512F float64 micro-kernel of the LDA Gram and projection (see lda_internal.h).
// 8 x 24 register tile: 24 zmm accumulators, 3 zmm of B and 1 broadcast of A per step
// (24 FMAs per 11 loads; 28 of the 32 zmm registers).
#include <immintrin.h>

#include "lda/cpu/lda_internal.h"

namespace tl {
namespace lda_detail {
namespace {

constexpr int MR = 8;
constexpr int NR = 24;

#define TL_LDA_ROW(r)                                                   \
  {                                                                     \
    const __m512d av = _mm512_set1_pd(a[r]);                            \
    acc[r][0] = _mm512_fmadd_pd(av, b0, acc[r][0]);                     \
    acc[r][1] = _mm512_fmadd_pd(av, b1, acc[r][1]);                     \
    acc[r][2] = _mm512_fmadd_pd(av, b2, acc[r][2]);                     \
  }

void micro_avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc) {
  __m512d acc[MR][3];
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 3; ++q) acc[r][q] = _mm512_loadu_pd(c + r * ldc + 8 * q);
  for (int64_t p = 0; p < kc; ++p) {
    const __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8), b2 = _mm512_load_pd(b + 16);
    TL_LDA_ROW(0) TL_LDA_ROW(1) TL_LDA_ROW(2) TL_LDA_ROW(3)
    TL_LDA_ROW(4) TL_LDA_ROW(5) TL_LDA_ROW(6) TL_LDA_ROW(7)
    a += MR;
    b += NR;
  }
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 3; ++q) _mm512_storeu_pd(c + r * ldc + 8 * q, acc[r][q]);
}

#undef TL_LDA_ROW

const LdaIsa kAvx512 = {"avx512", MR, NR, true, micro_avx512};

}  // namespace

const LdaIsa* isa_avx512() { return &kAvx512; }

}  // namespace lda_detail
}  // namespace tl
