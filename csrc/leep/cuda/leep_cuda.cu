// CUDA kernels of csrc/leep (contract: leep/leep.h). Placeholder until the CUDA work lands.
#include "common/cuda_check.cuh"
#include "leep/leep.h"
