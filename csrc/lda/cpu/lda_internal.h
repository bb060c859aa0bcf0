// transferlab/csrc/lda/cpu: what the driver (lda_cpu.cpp) and the ISA-specific float64
// micro-kernels (lda_microkernel_avx2.cpp, lda_microkernel_avx512.cpp, the generic one in
// lda_cpu.cpp) share.
//
// ODR caution (as in knn_internal.h): the ISA translation units are compiled with -mavx2 / -mavx512f
// and must not define or instantiate inline functions or templates the portable code also uses.
// This header declares only plain structs and non-inline functions; the ISA files use intrinsics.
#pragma once

#include <cstdint>

namespace tl {
namespace lda_detail {

// Rows per K block of the Gram (the reduction runs over rows) and columns per K block of the
// projection. Not part of the numerical contract: every output element is one sequential
// multiply-add chain over the reduction index, carried across K blocks through the C buffer, so
// KC only changes the memory traffic, never the bits.
constexpr int64_t KC = 256;

struct LdaIsa {
  const char* name;
  int mr, nr;  // micro-tile shape (rows of A panels x columns of B panels)
  bool fused;  // fused multiply-add chain, or a rounded multiply then a rounded add (generic)
  // c[r * ldc + q] = c[r * ldc + q] + sum_p a[p * mr + r] * b[p * nr + q] for r < mr, q < nr,
  // one multiply-add per p in increasing p, per element (a: mr-wide panel, b: nr-wide panel).
  void (*micro)(int64_t kc, const double* a, const double* b, double* c, int64_t ldc);
};

const LdaIsa* isa_generic();
const LdaIsa* isa_avx2();
const LdaIsa* isa_avx512();

}  // namespace lda_detail
}  // namespace tl
