// AVX2 + FMA micro-kernel of the fused leave-one-out k-NN (see knn_internal.h).
// 6 x 16 register tile: 12 ymm accumulators, 2 ymm of B and 1 broadcast of A per k step
// (the BLIS Haswell/Zen shape: 12 FMAs per 8 loads keeps both FMA pipes busy).
#include <immintrin.h>

#include "knn/cpu/knn_internal.h"

namespace tl {
namespace knn_detail {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

void micro_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first) {
  __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
  if (first) {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
  } else {
    c00 = _mm256_loadu_ps(c + 0 * ldc), c01 = _mm256_loadu_ps(c + 0 * ldc + 8);
    c10 = _mm256_loadu_ps(c + 1 * ldc), c11 = _mm256_loadu_ps(c + 1 * ldc + 8);
    c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 av;
    av = _mm256_broadcast_ss(a + 0), c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1), c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2), c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3), c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4), c40 = _mm256_fmadd_ps(av, b0, c40), c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5), c50 = _mm256_fmadd_ps(av, b0, c50), c51 = _mm256_fmadd_ps(av, b1, c51);
    a += MR;
    b += NR;
  }
  _mm256_storeu_ps(c + 0 * ldc, c00), _mm256_storeu_ps(c + 0 * ldc + 8, c01);
  _mm256_storeu_ps(c + 1 * ldc, c10), _mm256_storeu_ps(c + 1 * ldc + 8, c11);
  _mm256_storeu_ps(c + 2 * ldc, c20), _mm256_storeu_ps(c + 2 * ldc + 8, c21);
  _mm256_storeu_ps(c + 3 * ldc, c30), _mm256_storeu_ps(c + 3 * ldc + 8, c31);
  _mm256_storeu_ps(c + 4 * ldc, c40), _mm256_storeu_ps(c + 4 * ldc + 8, c41);
  _mm256_storeu_ps(c + 5 * ldc, c50), _mm256_storeu_ps(c + 5 * ldc + 8, c51);
}

// Vectorised epilogue: 8 distances at a time, one compare against the row's threshold and one
// against the 8 columns' thresholds; the scalar callback runs only for lanes that may enter a
// top-k (rare once the thresholds have settled). Thresholds are re-read for every row, so updates
// made by the callback prune the rest of the tile.
void scan_avx2(const ScanArgs& s) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t i = s.i0 + r;
    const float* crow = s.c + r * s.ldc;
    const __m256 ni = _mm256_set1_ps(s.norm_i[r]);
    // Columns that count: j0 + col < j0 + cols, and (diagonal tiles) j > i.
    int64_t first_col = 0;
    if (s.diagonal) {
      first_col = i + 1 - s.j0;
      if (first_col < 0) first_col = 0;
    }
    for (int64_t c0 = (first_col / 8) * 8; c0 < s.cols; c0 += 8) {
      const __m256 dot = _mm256_loadu_ps(crow + c0);
      const __m256 sum = _mm256_add_ps(ni, _mm256_loadu_ps(s.norm_j + c0));
      __m256 d = _mm256_sub_ps(sum, _mm256_add_ps(dot, dot));
      d = _mm256_max_ps(d, zero);  // d > 0 ? d : 0, the twin's clamp
      const __m256 ti = _mm256_set1_ps(s.thr[i]);
      const __m256 tj = _mm256_loadu_ps(s.thr + s.j0 + c0);
      const __m256 m = _mm256_or_ps(_mm256_cmp_ps(d, ti, _CMP_LE_OQ), _mm256_cmp_ps(d, tj, _CMP_LE_OQ));
      int bits = _mm256_movemask_ps(m);
      if (bits == 0) continue;
      // Drop lanes outside [first_col, cols).
      const __m256i colv = _mm256_add_epi32(lane, _mm256_set1_epi32((int)c0));
      const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)first_col), colv);
      const __m256i hi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)s.cols), colv);
      bits &= _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_andnot_si256(lo, hi)));
      if (bits == 0) continue;
      alignas(32) float dv[8];
      _mm256_store_ps(dv, d);
      while (bits) {
        const int l = __builtin_ctz(bits);
        bits &= bits - 1;
        s.fn(s.ctx, i, s.j0 + c0 + l, dv[l]);
      }
    }
  }
}

float dot_avx2(const float* a, const float* b, int64_t d) {
  __m128 acc = _mm_setzero_ps();
  for (int64_t p = 0; p < d; ++p) acc = _mm_fmadd_ss(_mm_load_ss(a + p), _mm_load_ss(b + p), acc);
  return _mm_cvtss_f32(acc);
}

// F16C / AVX conversions for the packing of half, bfloat16 and float64 banks (dtype codes of
// tl::DType: 1 = f64, 2 = f16, 3 = bf16). Tails go through the same instructions on a padded copy.
void to_f32_avx2(const void* src, int dtype, int64_t len, float* dst) {
  int64_t p = 0;
  if (dtype == 1) {
    const double* s = static_cast<const double*>(src);
    for (; p + 4 <= len; p += 4) _mm_storeu_ps(dst + p, _mm256_cvtpd_ps(_mm256_loadu_pd(s + p)));
    for (; p < len; ++p) _mm_store_ss(dst + p, _mm_cvtsd_ss(_mm_setzero_ps(), _mm_load_sd(s + p)));
  } else if (dtype == 2) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (; p + 8 <= len; p += 8)
      _mm256_storeu_ps(dst + p, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + p))));
    for (; p < len; ++p) _mm_store_ss(dst + p, _mm_cvtph_ps(_mm_cvtsi32_si128(s[p])));
  } else {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (; p + 8 <= len; p += 8) {
      const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + p)));
      _mm256_storeu_ps(dst + p, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; p < len; ++p) {
      const uint32_t bits = (uint32_t)s[p] << 16;
      __builtin_memcpy(dst + p, &bits, 4);
    }
  }
}

const KnnIsa kIsa = {"avx2", MR, NR, true, micro_avx2, scan_avx2, dot_avx2, to_f32_avx2};

}  // namespace

const KnnIsa* isa_avx2() { return &kIsa; }

}  // namespace knn_detail
}  // namespace tl
