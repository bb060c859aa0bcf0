// Python bindings of csrc/knn for _C (see knn/knn.h for the contract).
#include "bindings/bindings.h"
#include "knn/knn.h"

namespace tl {

void bind_knn_cpu(py::module_& m) { (void)m; }

}  // namespace tl
