#include "common/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace tl {

namespace {
SimdLevel detect() {
  SimdLevel hw = SimdLevel::generic;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) hw = SimdLevel::avx2;
  if (hw == SimdLevel::avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    hw = SimdLevel::avx512;
#endif
  const char* cap = std::getenv("TRANSFERLAB_SIMD");
  if (cap != nullptr) {
    SimdLevel want = hw;
    if (std::strcmp(cap, "generic") == 0) want = SimdLevel::generic;
    else if (std::strcmp(cap, "avx2") == 0) want = SimdLevel::avx2;
    else if (std::strcmp(cap, "avx512") == 0) want = SimdLevel::avx512;
    if (static_cast<int>(want) < static_cast<int>(hw)) hw = want;
  }
  return hw;
}
}  // namespace

SimdLevel simd_level() {
  static const SimdLevel level = detect();
  return level;
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::generic: return "generic";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
  }
  return "unknown";
}

}  // namespace tl
