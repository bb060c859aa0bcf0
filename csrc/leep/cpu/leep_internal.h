// transferlab/csrc/leep/cpu: what the driver (leep_cpu.cpp) and the ISA-specific row primitives
// (leep_simd_avx2.cpp, leep_simd_avx512.cpp, the generic ones in leep_cpu.cpp) share.
//
// Numerical contract of the primitives (every ISA gives the same bits, so the SIMD level never
// changes a score):
//   * accum: dst[j] = dst[j] + double(src[j]), element by element (exact conversion, one rounded
//     add per element; vector width cannot change an element's chain).
//   * lane sums: kLanes float64 accumulators, element j goes to lane j % kLanes in increasing j,
//     products rounded before the add (never fused). Callers reduce the lanes with reduce_lanes()
//     ((l + 4), then (l + 2), then (l + 1)), the order an 8-wide register reduces in.
//   * exp: out[j] = exp(x[j] - shift) by one fixed sequence of unfused float64 operations
//     (range reduction x = k ln2 + r with a two-part ln2, Taylor polynomial of degree 13 in Horner
//     form, scaling by 2^k through the exponent bits), accurate to a few ulp; arguments below
//     kExpFlush give 0 (values under 2^-1021: no probability that small changes a LEEP digit).
//   Callers that feed a row in pieces (half types converted tile by tile) keep the lanes between
//   pieces; every piece but the last has a length that is a multiple of kLanes.
//
// ODR caution (as in knn_internal.h): the ISA translation units are compiled with -mavx2; this
// header declares only plain structs, constants and non-inline functions.
#pragma once

#include <cstdint>

namespace tl {
namespace leep_detail {

constexpr int64_t kLanes = 8;
// Columns converted to float32 (half types) or exponentiated (logits) per piece: small enough to
// stay in L1 next to the matching float64 slice of J or cond, a multiple of kLanes.
constexpr int64_t kTile = 512;

constexpr double kExpFlush = -708.0;
constexpr double kExpMax = 709.0;
constexpr double kLog2e = 1.4426950408889634;       // 1 / ln 2
constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2 with 32 significant bits: k * hi is exact
constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - hi
constexpr double kRoundMagic = 6755399441055744.0;   // 1.5 * 2^52: x + magic rounds x to an integer
// 1 / n!, n = 0 .. 13 (Taylor coefficients of exp; |r| <= ln2 / 2 makes the tail < 2e-16).
constexpr double kExpCoef[14] = {1.0,
                                 1.0,
                                 1.0 / 2.0,
                                 1.0 / 6.0,
                                 1.0 / 24.0,
                                 1.0 / 120.0,
                                 1.0 / 720.0,
                                 1.0 / 5040.0,
                                 1.0 / 40320.0,
                                 1.0 / 362880.0,
                                 1.0 / 3628800.0,
                                 1.0 / 39916800.0,
                                 1.0 / 479001600.0,
                                 1.0 / 6227020800.0};

struct LeepIsa {
  const char* name;
  void (*accum_f32)(const float* src, int64_t len, double* dst);
  void (*accum_f64)(const double* src, int64_t len, double* dst);
  // lanes[j % 8] += double(p[j]) * w[j]
  void (*dot_f32)(const float* p, const double* w, int64_t len, double* lanes);
  void (*dot_f64)(const double* p, const double* w, int64_t len, double* lanes);
  // lanes[j % 8] += double(p[j]); *bad |= 1 if some p[j] is NaN/inf, |= 2 if some p[j] < 0.
  void (*scan_f32)(const float* p, int64_t len, double* lanes, int* bad);
  void (*scan_f64)(const double* p, int64_t len, double* lanes, int* bad);
  // out[j] = exp(x[j] - shift) (see above); out may not alias x.
  void (*exp_f32)(const float* x, double shift, int64_t len, double* out);
  void (*exp_f64)(const double* x, double shift, int64_t len, double* out);
  // dst[j] = float(src[j]) for IEEE half (bf16 = false) or bfloat16 bit patterns (exact).
  void (*half_to_f32)(const uint16_t* src, bool bf16, int64_t len, float* dst);
};

// Sum of the 8 lanes in the fixed order ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
double reduce_lanes(const double* lanes);

const LeepIsa* isa_generic();
const LeepIsa* isa_avx2();
const LeepIsa* isa_avx512();  // the AVX2 primitives with an 8-wide exp

}  // namespace leep_detail
}  // namespace tl
