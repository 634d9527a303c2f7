// Intentionally empty: the declarations in include/cblas_shim.h resolve against libopenblas.
#include "cblas_shim.h"
