// transferlab._C: the CPU extension. The module lists what each family file binds. The test-only
// twins of the CUDA logic live in their own module, _cuda_logic_testing, not here.
#include <omp.h>

#include "bindings/bindings.h"
#include "common/cpu_features.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "transferlab CPU kernels (C++17, OpenMP, run-time SIMD dispatch)";
  m.def("simd_level", [] { return std::string(tl::simd_level_name(tl::simd_level())); },
        "SIMD level the CPU kernels use on this machine (capped by TRANSFERLAB_SIMD).");
  m.def("max_threads", [] { return omp_get_max_threads(); }, "OpenMP's default thread count.");
  m.attr("compiler") = TL_CXX_COMPILER;
  m.attr("build_type") = TL_BUILD_TYPE;
  tl::bind_knn_cpu(m);
  tl::bind_knn_cross_cpu(m);
  tl::bind_leep_cpu(m);
  tl::bind_lda_cpu(m);
}
