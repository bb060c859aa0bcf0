// CUDA kernels of csrc/lda (contract: lda/lda.h). Placeholder until the CUDA work lands.
#include "common/cuda_check.cuh"
#include "lda/lda.h"
