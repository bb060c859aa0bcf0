// AVX2 + F16C row primitives of LEEP (contract: leep_internal.h). The 8 float64 lanes live in two
// __m256d registers (lanes 0-3 and 4-7); multiplies and adds stay separate (no FMA), so every lane
// rounds exactly as the generic code does. Intrinsics only: no inline C++ shared with portable code.
#include <immintrin.h>

#include <cstring>

#include "leep/cpu/leep_internal.h"

namespace tl {
namespace leep_detail {
namespace {

inline void load_lanes(const double* lanes, __m256d& a, __m256d& b) {
  a = _mm256_loadu_pd(lanes);
  b = _mm256_loadu_pd(lanes + 4);
}

inline void store_lanes(double* lanes, __m256d a, __m256d b) {
  _mm256_storeu_pd(lanes, a);
  _mm256_storeu_pd(lanes + 4, b);
}

inline void cvt8(const float* p, __m256d& lo, __m256d& hi) {
  const __m256 v = _mm256_loadu_ps(p);
  lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}

void accum_f32(const float* src, int64_t len, double* dst) {
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    __m256d lo, hi;
    cvt8(src + j, lo, hi);
    _mm256_storeu_pd(dst + j, _mm256_add_pd(_mm256_loadu_pd(dst + j), lo));
    _mm256_storeu_pd(dst + j + 4, _mm256_add_pd(_mm256_loadu_pd(dst + j + 4), hi));
  }
  for (; j < len; ++j) dst[j] = dst[j] + (double)src[j];
}

void accum_f64(const double* src, int64_t len, double* dst) {
  int64_t j = 0;
  for (; j + 4 <= len; j += 4)
    _mm256_storeu_pd(dst + j, _mm256_add_pd(_mm256_loadu_pd(dst + j), _mm256_loadu_pd(src + j)));
  for (; j < len; ++j) dst[j] = dst[j] + src[j];
}

void dot_f32(const float* p, const double* w, int64_t len, double* lanes) {
  __m256d a, b;
  load_lanes(lanes, a, b);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    __m256d lo, hi;
    cvt8(p + j, lo, hi);
    a = _mm256_add_pd(a, _mm256_mul_pd(lo, _mm256_loadu_pd(w + j)));
    b = _mm256_add_pd(b, _mm256_mul_pd(hi, _mm256_loadu_pd(w + j + 4)));
  }
  store_lanes(lanes, a, b);
  for (int64_t l = 0; j < len; ++j, ++l) lanes[l] = lanes[l] + (double)p[j] * w[j];
}

void dot_f64(const double* p, const double* w, int64_t len, double* lanes) {
  __m256d a, b;
  load_lanes(lanes, a, b);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    a = _mm256_add_pd(a, _mm256_mul_pd(_mm256_loadu_pd(p + j), _mm256_loadu_pd(w + j)));
    b = _mm256_add_pd(b, _mm256_mul_pd(_mm256_loadu_pd(p + j + 4), _mm256_loadu_pd(w + j + 4)));
  }
  store_lanes(lanes, a, b);
  for (int64_t l = 0; j < len; ++j, ++l) lanes[l] = lanes[l] + p[j] * w[j];
}

// x - x is NaN exactly for NaN and +-inf; x < 0 is false for NaN and -0.
inline void flag(__m256d x, __m256d& nonfinite, __m256d& negative) {
  const __m256d d = _mm256_sub_pd(x, x);
  nonfinite = _mm256_or_pd(nonfinite, _mm256_cmp_pd(d, d, _CMP_UNORD_Q));
  negative = _mm256_or_pd(negative, _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ));
}

inline int flags_of(__m256d nonfinite, __m256d negative, double tail_d, bool tail_neg) {
  int bad = 0;
  if (_mm256_movemask_pd(nonfinite) != 0 || tail_d != tail_d) bad |= 1;
  if (_mm256_movemask_pd(negative) != 0 || tail_neg) bad |= 2;
  return bad;
}

void scan_f32(const float* p, int64_t len, double* lanes, int* bad) {
  __m256d a, b;
  load_lanes(lanes, a, b);
  __m256d nf = _mm256_setzero_pd(), ng = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    __m256d lo, hi;
    cvt8(p + j, lo, hi);
    flag(lo, nf, ng);
    flag(hi, nf, ng);
    a = _mm256_add_pd(a, lo);
    b = _mm256_add_pd(b, hi);
  }
  store_lanes(lanes, a, b);
  double tail_d = 0.0;
  bool tail_neg = false;
  for (int64_t l = 0; j < len; ++j, ++l) {
    const double x = (double)p[j];
    tail_d = tail_d + (x - x);
    tail_neg = tail_neg || x < 0.0;
    lanes[l] = lanes[l] + x;
  }
  *bad |= flags_of(nf, ng, tail_d, tail_neg);
}

void scan_f64(const double* p, int64_t len, double* lanes, int* bad) {
  __m256d a, b;
  load_lanes(lanes, a, b);
  __m256d nf = _mm256_setzero_pd(), ng = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const __m256d lo = _mm256_loadu_pd(p + j), hi = _mm256_loadu_pd(p + j + 4);
    flag(lo, nf, ng);
    flag(hi, nf, ng);
    a = _mm256_add_pd(a, lo);
    b = _mm256_add_pd(b, hi);
  }
  store_lanes(lanes, a, b);
  double tail_d = 0.0;
  bool tail_neg = false;
  for (int64_t l = 0; j < len; ++j, ++l) {
    const double x = p[j];
    tail_d = tail_d + (x - x);
    tail_neg = tail_neg || x < 0.0;
    lanes[l] = lanes[l] + x;
  }
  *bad |= flags_of(nf, ng, tail_d, tail_neg);
}

// exp(x - shift) for 4 lanes: the operation sequence of exp_one in leep_cpu.cpp.
inline __m256d exp4(__m256d x) {
  const __m256d keep = _mm256_cmp_pd(x, _mm256_set1_pd(kExpFlush), _CMP_GE_OQ);
  x = _mm256_and_pd(keep, _mm256_min_pd(x, _mm256_set1_pd(kExpMax)));
  const __m256d magic = _mm256_set1_pd(kRoundMagic);
  const __m256d t = _mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(kLog2e)), magic);
  const __m256d kd = _mm256_sub_pd(t, magic);
  const __m256d r = _mm256_sub_pd(_mm256_sub_pd(x, _mm256_mul_pd(kd, _mm256_set1_pd(kLn2Hi))),
                                  _mm256_mul_pd(kd, _mm256_set1_pd(kLn2Lo)));
  __m256d p = _mm256_set1_pd(kExpCoef[13]);
  for (int c = 12; c >= 0; --c) p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(kExpCoef[c]));
  const __m256i k = _mm256_sub_epi64(_mm256_castpd_si256(t), _mm256_castpd_si256(magic));
  const __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(k, _mm256_set1_epi64x(1023)), 52);
  return _mm256_and_pd(keep, _mm256_mul_pd(p, _mm256_castsi256_pd(bits)));
}

void exp_f32(const float* x, double shift, int64_t len, double* out) {
  const __m256d s = _mm256_set1_pd(shift);
  int64_t j = 0;
  for (; j + 4 <= len; j += 4)
    _mm256_storeu_pd(out + j, exp4(_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j)), s)));
  if (j < len) {  // tail through a padded buffer: the same lane arithmetic
    double in[4] = {0, 0, 0, 0}, res[4];
    for (int64_t l = 0; j + l < len; ++l) in[l] = (double)x[j + l];
    _mm256_storeu_pd(res, exp4(_mm256_sub_pd(_mm256_loadu_pd(in), s)));
    for (int64_t l = 0; j + l < len; ++l) out[j + l] = res[l];
  }
}

void exp_f64(const double* x, double shift, int64_t len, double* out) {
  const __m256d s = _mm256_set1_pd(shift);
  int64_t j = 0;
  for (; j + 4 <= len; j += 4) _mm256_storeu_pd(out + j, exp4(_mm256_sub_pd(_mm256_loadu_pd(x + j), s)));
  if (j < len) {
    double in[4] = {0, 0, 0, 0}, res[4];
    for (int64_t l = 0; j + l < len; ++l) in[l] = x[j + l];
    _mm256_storeu_pd(res, exp4(_mm256_sub_pd(_mm256_loadu_pd(in), s)));
    for (int64_t l = 0; j + l < len; ++l) out[j + l] = res[l];
  }
}

inline __m256 half8(const uint16_t* src, bool bf16) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

void half_to_f32(const uint16_t* src, bool bf16, int64_t len, float* dst) {
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) _mm256_storeu_ps(dst + j, half8(src + j, bf16));
  if (j < len) {  // tail through a zero-padded buffer: the same exact conversion
    uint16_t in[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float out[8];
    std::memcpy(in, src + j, (size_t)(len - j) * sizeof(uint16_t));
    _mm256_storeu_ps(out, half8(in, bf16));
    std::memcpy(dst + j, out, (size_t)(len - j) * sizeof(float));
  }
}

const LeepIsa kAvx2 = {"avx2",   accum_f32, accum_f64, dot_f32,    dot_f64,
                       scan_f32, scan_f64,  exp_f32,   exp_f64,    half_to_f32};

}  // namespace

const LeepIsa* isa_avx2() { return &kAvx2; }

}  // namespace leep_detail
}  // namespace tl
