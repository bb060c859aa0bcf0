// transferlab: element loads of a MatrixView on the device, with the dtype as a template
// parameter (one kernel instantiation per dtype; half types upcast exactly, float64 is rounded to
// float32 only where the kernel asks for float32, as on the CPU).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "common/tl_common.h"

namespace tl {

template <DType DT>
__device__ __forceinline__ double load_f64(const void* base, int64_t offset) {
  if constexpr (DT == DType::f32) return static_cast<double>(static_cast<const float*>(base)[offset]);
  if constexpr (DT == DType::f64) return static_cast<const double*>(base)[offset];
  if constexpr (DT == DType::f16) return static_cast<double>(__half2float(static_cast<const __half*>(base)[offset]));
  if constexpr (DT == DType::bf16)
    return static_cast<double>(__bfloat162float(static_cast<const __nv_bfloat16*>(base)[offset]));
  return 0.0;
}

template <DType DT>
__device__ __forceinline__ float load_f32(const void* base, int64_t offset) {
  if constexpr (DT == DType::f32) return static_cast<const float*>(base)[offset];
  if constexpr (DT == DType::f64) return static_cast<float>(static_cast<const double*>(base)[offset]);  // RN
  if constexpr (DT == DType::f16) return __half2float(static_cast<const __half*>(base)[offset]);
  if constexpr (DT == DType::bf16) return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[offset]);
  return 0.f;
}

template <DType DT>
using DTypeTag = std::integral_constant<DType, DT>;

// Calls f(DTypeTag<DT>{}) for the runtime dtype (one switch per host entry point); in a generic
// lambda, `constexpr DType DT = decltype(tag)::value;` recovers the constant.
template <class F>
void dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(DTypeTag<DType::f32>{}); return;
    case DType::f64: f(DTypeTag<DType::f64>{}); return;
    case DType::f16: f(DTypeTag<DType::f16>{}); return;
    case DType::bf16: f(DTypeTag<DType::bf16>{}); return;
  }
  throw std::invalid_argument("unknown dtype");
}

// cudaStream_t from the integer / void* the bindings pass.
inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace tl
