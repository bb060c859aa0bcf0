// Placeholder: see leep/leep.h.
#include "leep/leep.h"
