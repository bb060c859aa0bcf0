// transferlab: the TL_HD qualifier for small "logic" functions that the CUDA kernels run on the
// device and that the host compiles too, so that the test-only module _cuda_logic_testing
// (csrc/bindings/module_cuda_logic_testing.cpp) exercises exactly the code the kernels use.
// Also the two fused multiply-adds those functions use: __fma_rn on the device, std::fma on the
// host; both are the single-rounding IEEE operation, so host and device agree bitwise.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define TL_HD __host__ __device__ inline
#else
#define TL_HD inline
#endif

namespace tl {

TL_HD float fma_f32(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

TL_HD double fma_f64(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// Transcendentals and classification: CUDA's double-precision functions on the device, libm on
// the host (both correctly rounded or within 1 ulp; not bitwise equal to each other).
TL_HD double exp_f64(double v) {
#if defined(__CUDA_ARCH__)
  return exp(v);
#else
  return std::exp(v);
#endif
}

TL_HD double log_f64(double v) {
#if defined(__CUDA_ARCH__)
  return log(v);
#else
  return std::log(v);
#endif
}

TL_HD bool finite_f64(double v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

}  // namespace tl
