// Python bindings of csrc/knn for _cuda (see knn/knn.h for the contract).
#include "bindings/bindings.h"
#include "knn/knn.h"

namespace tl {

void bind_knn_cuda(py::module_& m) { (void)m; }

}  // namespace tl
