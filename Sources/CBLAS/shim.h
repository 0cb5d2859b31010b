// CBLAS shim: exposes OpenBLAS's C interface (cblas_sgemm, openblas_set_num_threads) to Swift.
// It is not a wrapper: Kernels/Gemm.swift is the only Swift file that calls these functions.
#include <cblas.h>
