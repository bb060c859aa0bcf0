// transferlab/csrc/leep/cpu: what the driver (leep_cpu.cpp) and the ISA-specific row primitives
// (leep_simd_avx2.cpp, the generic ones in leep_cpu.cpp) share.
//
// Numerical contract of the primitives (every ISA gives the same bits, so the SIMD level never
// changes a score):
//   * accum: dst[j] = dst[j] + double(src[j]), element by element (exact conversion, one rounded
//     add per element; vector width cannot change an element's chain).
//   * lane sums: kLanes float64 accumulators, element j goes to lane j % kLanes in increasing j,
//     products rounded before the add (never fused). Callers reduce the lanes with reduce_lanes()
//     ((l + 4), then (l + 2), then (l + 1)), the order an 8-wide register reduces in.
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
  // dst[j] = float(src[j]) for IEEE half (bf16 = false) or bfloat16 bit patterns (exact).
  void (*half_to_f32)(const uint16_t* src, bool bf16, int64_t len, float* dst);
};

// Sum of the 8 lanes in the fixed order ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
double reduce_lanes(const double* lanes);

const LeepIsa* isa_generic();
const LeepIsa* isa_avx2();

}  // namespace leep_detail
}  // namespace tl
