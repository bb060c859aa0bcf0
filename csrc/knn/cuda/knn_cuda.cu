// CUDA kernels of csrc/knn (contract: knn/knn.h). Placeholder until the CUDA work lands.
#include "common/cuda_check.cuh"
#include "knn/knn.h"
