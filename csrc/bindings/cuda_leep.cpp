// Python bindings of csrc/leep for _cuda (see leep/leep.h for the contract).
#include "bindings/bindings.h"
#include "leep/leep.h"

namespace tl {

void bind_leep_cuda(py::module_& m) { (void)m; }

}  // namespace tl
