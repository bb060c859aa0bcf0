// AVX-512 micro-kernel of the fused leave-one-out k-NN (see knn_internal.h).
// 12 x 32 register tile: 24 zmm accumulators, 2 zmm of B and 1 broadcast of A per k step
// (27 of 32 registers; the BLIS SkylakeX shape transposed to our row-panel packing).
#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_*() pass-through operand of unmasked AVX-512 intrinsics as
// "may be used uninitialized" (a known false positive); nothing here reads an undefined value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "knn/cpu/knn_internal.h"

namespace tl {
namespace knn_detail {
namespace {

constexpr int MR = 12;
constexpr int NR = 32;

void micro_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    if (first) {
      acc0[r] = _mm512_setzero_ps();
      acc1[r] = _mm512_setzero_ps();
    } else {
      acc0[r] = _mm512_loadu_ps(c + r * ldc);
      acc1[r] = _mm512_loadu_ps(c + r * ldc + 16);
    }
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(c + r * ldc, acc0[r]);
    _mm512_storeu_ps(c + r * ldc + 16, acc1[r]);
  }
}

void scan_avx512(const ScanArgs& s) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t i = s.i0 + r;
    const float* crow = s.c + r * s.ldc;
    const __m512 ni = _mm512_set1_ps(s.norm_i[r]);
    int64_t first_col = 0;
    if (s.diagonal) {
      first_col = i + 1 - s.j0;
      if (first_col < 0) first_col = 0;
    }
    for (int64_t c0 = (first_col / 16) * 16; c0 < s.cols; c0 += 16) {
      const __m512 dot = _mm512_loadu_ps(crow + c0);
      const __m512 sum = _mm512_add_ps(ni, _mm512_loadu_ps(s.norm_j + c0));
      __m512 d = _mm512_sub_ps(sum, _mm512_add_ps(dot, dot));
      d = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, zero, _CMP_GT_OQ), d);  // d > 0 ? d : 0, the twin's clamp
      const __m512 ti = _mm512_set1_ps(s.thr[i]);
      const __m512 tj = _mm512_loadu_ps(s.thr + s.j0 + c0);
      const __m512i colv = _mm512_add_epi32(lane, _mm512_set1_epi32((int)c0));
      __mmask16 valid = _mm512_cmpge_epi32_mask(colv, _mm512_set1_epi32((int)first_col)) &
                        _mm512_cmplt_epi32_mask(colv, _mm512_set1_epi32((int)s.cols));
      unsigned bits = (unsigned)(valid & (_mm512_cmp_ps_mask(d, ti, _CMP_LE_OQ) |
                                          _mm512_cmp_ps_mask(d, tj, _CMP_LE_OQ)));
      if (bits == 0) continue;
      alignas(64) float dv[16];
      _mm512_store_ps(dv, d);
      while (bits) {
        const int l = __builtin_ctz(bits);
        bits &= bits - 1;
        s.fn(s.ctx, i, s.j0 + c0 + l, dv[l]);
      }
    }
  }
}

float dot_avx512(const float* a, const float* b, int64_t d) {
  __m128 acc = _mm_setzero_ps();
  for (int64_t p = 0; p < d; ++p) acc = _mm_fmadd_ss(_mm_load_ss(a + p), _mm_load_ss(b + p), acc);
  return _mm_cvtss_f32(acc);
}

// Conversions for packing (dtype codes of tl::DType: 1 = f64, 2 = f16, 3 = bf16).
void to_f32_avx512(const void* src, int dtype, int64_t len, float* dst) {
  int64_t p = 0;
  if (dtype == 1) {
    const double* s = static_cast<const double*>(src);
    for (; p + 8 <= len; p += 8) _mm256_storeu_ps(dst + p, _mm512_cvtpd_ps(_mm512_loadu_pd(s + p)));
    for (; p < len; ++p) _mm_store_ss(dst + p, _mm_cvtsd_ss(_mm_setzero_ps(), _mm_load_sd(s + p)));
  } else if (dtype == 2) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (; p + 16 <= len; p += 16)
      _mm512_storeu_ps(dst + p, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + p))));
    for (; p < len; ++p) _mm_store_ss(dst + p, _mm_cvtph_ps(_mm_cvtsi32_si128(s[p])));
  } else {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (; p + 16 <= len; p += 16) {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + p)));
      _mm512_storeu_ps(dst + p, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
    for (; p < len; ++p) {
      const uint32_t bits = (uint32_t)s[p] << 16;
      __builtin_memcpy(dst + p, &bits, 4);
    }
  }
}

const KnnIsa kIsa = {"avx512", MR, NR, true, micro_avx512, scan_avx512, dot_avx512, to_f32_avx512};

}  // namespace

const KnnIsa* isa_avx512() { return &kIsa; }

}  // namespace knn_detail
}  // namespace tl
