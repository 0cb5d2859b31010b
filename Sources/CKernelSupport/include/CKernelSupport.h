// CKernelSupport: CPU floating-point controls Swift cannot reach (the x86 MXCSR, the Arm FPCR).
// It is not a kernel: Kernels/ThreadPool calls it on every compute thread.
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
/// Flush denormal results to zero and treat denormal inputs as zero (FTZ | DAZ) on this thread.
static inline void loom_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
#elif defined(__aarch64__)
static inline void loom_flush_denormals(void) {
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1UL << 24)));
}
#else
static inline void loom_flush_denormals(void) {}
#endif
