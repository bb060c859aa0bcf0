// transferlab/csrc/knn/cpu: what the driver (knn_cpu.cpp) and the ISA-specific micro-kernels
// (knn_microkernel_avx2.cpp, knn_microkernel_avx512.cpp, the generic one in knn_cpu.cpp) share.
//
// ODR caution: the ISA translation units are compiled with -mavx2/-mavx512f. They must not define
// or instantiate any inline function or template that the portable code also uses (the linker keeps
// one copy of each, possibly the AVX-512 one, which would crash a CPU without it). So this header
// declares only plain structs and non-inline functions, and the ISA files use intrinsics and
// builtins only (no std:: templates).
#pragma once

#include <cstdint>
#include <memory>

#include "common/tl_common.h"

namespace tl {
namespace knn_detail {

// K-blocking of the dot products. Part of the numerical contract: the micro-kernels keep one
// sequential fused (or, generic: unfused) multiply-add chain per (i, j) pair over p = 0..d-1,
// carried across K blocks through the C tile, so KC only changes the memory traffic, never the bits.
constexpr int64_t KC = 256;

// Called by a scan for every (row, column) pair of a tile whose distance may enter the running
// top-k of row i or of row j (d <= threshold[i] or d <= threshold[j]). Global indices.
using CandidateFn = void (*)(void* ctx, int64_t i, int64_t j, float d);

struct ScanArgs {
  const float* c;        // dot products, tile rows x ldc (row-major)
  int64_t ldc;
  int64_t rows;          // valid rows of the tile (global i0 .. i0 + rows)
  int64_t cols;          // valid columns (global j0 .. j0 + cols), cols <= ldc
  int64_t i0, j0;
  const float* norm_i;   // |x_i|^2 for the tile rows (rows entries)
  const float* norm_j;   // |x_j|^2 for the tile columns (ldc entries, padding finite)
  const float* thr;      // per-thread running thresholds, global index, n + ldc entries
  bool diagonal;         // only pairs with j > i count (tiles that straddle the diagonal)
  CandidateFn fn;
  void* ctx;
};

struct KnnIsa {
  const char* name;
  int mr, nr;            // micro-tile shape
  bool fused;            // fused multiply-add chain (the twin uses std::fma) or separate mul + add
  // c[mr x nr] (row stride ldc) = (first ? 0 : c) + sum_p a[p*mr + r] * b[p*nr + col], p < kc,
  // one multiply-add per p in increasing p, per element.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first);
  // dist = max(0, (ni + nj) - (c + c)) for every valid pair; calls fn for possible entries.
  void (*scan)(const ScanArgs& s);
  // The same chain as micro for one pair: acc = 0; acc = acc + a[p] * b[p] (fused or not).
  float (*dot)(const float* a, const float* b, int64_t d);
  // dst[0 .. len) = src[0 .. len) converted to float32; dtype is int(tl::DType) of f64/f16/bf16
  // (exact conversions, or round-to-nearest for float64: the same values as tl::load_as_float).
  void (*to_f32)(const void* src, int dtype, int64_t len, float* dst);
};

const KnnIsa* isa_generic();
const KnnIsa* isa_avx2();
const KnnIsa* isa_avx512();

// Portable helpers defined in knn_cpu.cpp (out of line, per the ODR caution above) and used by both
// knn_loo_cpu and knn_cross_cpu, so that their packing and conversions are one code path.
const KnnIsa* select_isa();  // the micro-kernel table of tl::simd_level()

struct FreeDeleter {
  void operator()(float* p) const;  // std::free
};
using FloatBuf = std::unique_ptr<float[], FreeDeleter>;
// A 64-byte-aligned float buffer of at least `count` (>= 16) elements; std::runtime_error when out of memory.
FloatBuf alloc_floats(int64_t count);

// Packs rows [row0, row0 + valid) of x (zero rows up to `rows`, a multiple of R) into R-row panels per K
// block: block pc at pc * rows, panel q0 at + q0 * kc, element (p, r) at + p * R + r, converting the
// dtype to float32 (tmp_rows: R * x.cols floats of scratch). With `index`, panel row rr is x's row
// index[row0 + rr] (a gathered block).
void pack_block(const KnnIsa* isa, const MatrixView& x, int64_t row0, int64_t valid, int64_t rows, int R,
                float* dst, float* tmp_rows, const int64_t* index = nullptr);

}  // namespace knn_detail
}  // namespace tl
