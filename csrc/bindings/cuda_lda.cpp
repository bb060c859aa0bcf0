// Python bindings of csrc/lda for _cuda (see lda/lda.h for the contract).
#include "bindings/bindings.h"
#include "lda/lda.h"

namespace tl {

void bind_lda_cuda(py::module_& m) { (void)m; }

}  // namespace tl
