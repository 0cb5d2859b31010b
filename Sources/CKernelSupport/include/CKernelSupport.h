// CKernelSupport: what Swift cannot reach on a compute thread: the floating-point controls (the
// x86 MXCSR, the Arm FPCR) and a thread-local scratch buffer. It is not a kernel.
#pragma once
#include <stddef.h>

/// This thread's scratch of at least `count` floats (64-byte aligned). It grows (one allocation)
/// only when a larger size is asked for, so a step loop allocates on its first step at most.
/// One user at a time: the previous contents are lost on growth, and callers must not nest.
float *loom_thread_scratch(size_t count);

/// Eight floats, imported into Swift as SIMD8<Float>.
typedef float loom_float8 __attribute__((ext_vector_type(8)));

/// Lane-wise square root, correctly rounded (vsqrtps on AVX). Swift's `SIMD8<Float>.squareRoot()`
/// compiles to eight scalar square roots with lane shuffles, which made AdamW's update 3× slower.
static inline loom_float8 loom_sqrt8(loom_float8 x) { return __builtin_elementwise_sqrt(x); }

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
/// A spin-wait hint: lets a sibling hardware thread on the same core run while this one polls.
static inline void loom_cpu_relax(void) { _mm_pause(); }
/// Flush denormal results to zero and treat denormal inputs as zero (FTZ | DAZ) on this thread.
static inline void loom_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
#elif defined(__aarch64__)
static inline void loom_cpu_relax(void) { __asm__ volatile("yield"); }
static inline void loom_flush_denormals(void) {
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1UL << 24)));
}
#else
static inline void loom_cpu_relax(void) {}
static inline void loom_flush_denormals(void) {}
#endif
