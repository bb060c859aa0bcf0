// AVX-512 exp of LEEP's logit passes (contract: leep_internal.h). Only exp changes: it is the one
// compute-bound primitive (the others are limited by memory bandwidth, so the AVX2 ones serve).
// exp8 performs exactly the operations of exp4 (AVX2) and exp_one (generic) per lane, unfused, so
// all three give the same bits. Intrinsics only: no inline C++ shared with portable code.
// GCC 12 flags the deliberately undefined pass-through operand inside avx512fintrin.h's unmasked
// wrappers (_mm512_undefined_pd) as "may be used uninitialized": a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "leep/cpu/leep_internal.h"

namespace tl {
namespace leep_detail {
namespace {

inline __m512d exp8(__m512d x) {
  const __mmask8 keep = _mm512_cmp_pd_mask(x, _mm512_set1_pd(kExpFlush), _CMP_GE_OQ);
  x = _mm512_maskz_mov_pd(keep, _mm512_min_pd(x, _mm512_set1_pd(kExpMax)));
  const __m512d magic = _mm512_set1_pd(kRoundMagic);
  const __m512d t = _mm512_add_pd(_mm512_mul_pd(x, _mm512_set1_pd(kLog2e)), magic);
  const __m512d kd = _mm512_sub_pd(t, magic);
  const __m512d r = _mm512_sub_pd(_mm512_sub_pd(x, _mm512_mul_pd(kd, _mm512_set1_pd(kLn2Hi))),
                                  _mm512_mul_pd(kd, _mm512_set1_pd(kLn2Lo)));
  __m512d p = _mm512_set1_pd(kExpCoef[13]);
  for (int c = 12; c >= 0; --c) p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(kExpCoef[c]));
  const __m512i k = _mm512_sub_epi64(_mm512_castpd_si512(t), _mm512_castpd_si512(magic));
  const __m512i bits = _mm512_slli_epi64(_mm512_add_epi64(k, _mm512_set1_epi64(1023)), 52);
  return _mm512_maskz_mov_pd(keep, _mm512_mul_pd(p, _mm512_castsi512_pd(bits)));
}

void exp_f32(const float* x, double shift, int64_t len, double* out) {
  const __m512d s = _mm512_set1_pd(shift);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8)
    _mm512_storeu_pd(out + j, exp8(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + j)), s)));
  if (j < len) {  // tail through a masked load and store: the same lane arithmetic
    const __mmask8 m = (__mmask8)((1u << (len - j)) - 1u);
    const __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + j));
    _mm512_mask_storeu_pd(out + j, m, exp8(_mm512_sub_pd(v, s)));
  }
}

void exp_f64(const double* x, double shift, int64_t len, double* out) {
  const __m512d s = _mm512_set1_pd(shift);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) _mm512_storeu_pd(out + j, exp8(_mm512_sub_pd(_mm512_loadu_pd(x + j), s)));
  if (j < len) {
    const __mmask8 m = (__mmask8)((1u << (len - j)) - 1u);
    _mm512_mask_storeu_pd(out + j, m, exp8(_mm512_sub_pd(_mm512_maskz_loadu_pd(m, x + j), s)));
  }
}

LeepIsa make_avx512() {
  LeepIsa isa = *isa_avx2();
  isa.name = "avx512";
  isa.exp_f32 = exp_f32;
  isa.exp_f64 = exp_f64;
  return isa;
}

}  // namespace

const LeepIsa* isa_avx512() {
  static const LeepIsa isa = make_avx512();
  return &isa;
}

}  // namespace leep_detail
}  // namespace tl
