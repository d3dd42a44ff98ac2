// OpenBLAS's CBLAS interface (pkg-config `openblas`; the header lives under
// the openblas-pthread include directory that pkg-config adds).
#ifndef ESAPN_CBLAS_SHIM_H
#define ESAPN_CBLAS_SHIM_H
#include <cblas.h>
#endif
