// transferlab: run-time choice of the SIMD level for CPU micro-kernels.
// The default build never uses -march=native: ISA-specific code lives in *_avx2.cpp /
// *_avx512.cpp translation units and is only called when the running CPU supports it.
// TRANSFERLAB_SIMD=generic|avx2|avx512 caps the level (for tests and for comparing paths).
#pragma once

namespace tl {

enum class SimdLevel : int { generic = 0, avx2 = 1, avx512 = 2 };

// Highest level the CPU supports, capped by TRANSFERLAB_SIMD. Computed once.
SimdLevel simd_level();
const char* simd_level_name(SimdLevel level);

}  // namespace tl
