// Python bindings of csrc/lda for _C (see lda/lda.h for the contract).
#include "bindings/bindings.h"
#include "lda/lda.h"

namespace tl {

void bind_lda_cpu(py::module_& m) { (void)m; }

}  // namespace tl
