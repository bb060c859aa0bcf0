// Placeholder: see knn/knn.h.
#include "knn/knn.h"
