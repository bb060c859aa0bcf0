// Placeholder: see lda/lda.h.
#include "lda/lda.h"
