// Python bindings of csrc/leep for _C (see leep/leep.h for the contract).
#include "bindings/bindings.h"
#include "leep/leep.h"

namespace tl {

void bind_leep_cpu(py::module_& m) { (void)m; }

}  // namespace tl
