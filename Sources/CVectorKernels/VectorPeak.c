// VectorPeak.c: loops of independent multiply-adds and nothing else — 12 accumulators, more than
// the FMA latency times the pipes — so their rate is the core's arithmetic ceiling for each
// instruction (the rate no GEMM can beat on this CPU at this clock). Kernels/VectorPeak.swift
// times them.
#include "CVectorKernels.h"

#if defined(__x86_64__)

#define TWELVE(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11)
#define FMA_YMM(i) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #i "\n\t"
#define FMA_ZMM(i) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define DOT_BF16(i) "vdpbf16ps %%zmm30, %%zmm31, %%zmm" #i "\n\t"

// One function per instruction, compiled for the ISA it needs: `zero` clears the two operand
// registers (zeros, so no value grows or turns denormal however long the loop runs), then
// `iterations` rounds of `round`.
#define PEAK_LOOP(isa, name, zero, round, a, b)                                                     \
    __attribute__((target(isa))) void name(long iterations) {                                       \
        if (iterations <= 0) return;                                                                \
        __asm__ volatile(zero "1:\n\t" TWELVE(round) "dec %0\n\tjnz 1b\n\tvzeroupper"               \
                         : "+r"(iterations) :: "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",\
                           "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", a, b);         \
    }

#define ZERO_YMM "vxorps %%ymm14, %%ymm14, %%ymm14\n\tvxorps %%ymm15, %%ymm15, %%ymm15\n\t"
#define ZERO_ZMM "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t"

PEAK_LOOP("avx2,fma", loom_peak_fma256, ZERO_YMM, FMA_YMM, "xmm14", "xmm15")
PEAK_LOOP("avx512f", loom_peak_fma512, ZERO_ZMM, FMA_ZMM, "xmm30", "xmm31")
PEAK_LOOP("avx512f,avx512bf16", loom_peak_dot_bf16, ZERO_ZMM, DOT_BF16, "xmm30", "xmm31")

#else

void loom_peak_fma256(long iterations) { (void)iterations; }
void loom_peak_fma512(long iterations) { (void)iterations; }
void loom_peak_dot_bf16(long iterations) { (void)iterations; }

#endif
