// CBLAS shim: exposes OpenBLAS's C interface (cblas_sgemm, openblas_set_num_threads, and
// openblas_get_corename / openblas_get_config: which kernels the library loaded) to Swift.
// Only Kernels calls these functions (Gemm.swift, ComputeThreads.swift, BLASCore.swift).
#include <cblas.h>
