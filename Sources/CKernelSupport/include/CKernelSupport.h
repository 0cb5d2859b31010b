// CKernelSupport: what Swift cannot reach on a compute thread: the floating-point controls (the
// x86 MXCSR, the Arm FPCR), a thread-local scratch buffer, and the CPU's instruction-set features
// (cpuid, xgetbv).
#pragma once
#include <stdbool.h>
#include <stddef.h>

/// What this CPU offers, read by cpuid, and what the operating system lets a program use of it
/// (xgetbv: which register state it saves on a context switch). The `*_usable` features below
/// are the CPU's bits masked by that OS support, so a feature counts only when a kernel may run
/// it. Why: OpenBLAS picks its kernels from a table of CPU models, and Loom compares that pick
/// with what the CPU really runs (Kernels/BLASCore.swift). All zero/false off x86.
typedef struct {
    char vendor[13];              ///< "GenuineIntel", "AuthenticAMD", …; "" off x86.
    char brand[49];               ///< The brand string (leaves 0x80000002–4), e.g. "AMD EPYC 7B13".
    unsigned family, model, stepping;   ///< Display family and model (extended fields folded in).
    bool os_avx;                  ///< XCR0 saves XMM and YMM state (bits 1, 2).
    bool os_avx512;               ///< … and opmask, ZMM_Hi256, Hi16_ZMM state (bits 5–7).
    bool os_amx;                  ///< XCR0 saves XTILECFG and XTILEDATA (bits 17, 18).
    bool sse3, ssse3, sse4_1, sse4_2;
    bool avx_usable, avx2_usable, fma_usable;                 ///< Leaf 1 ECX 28, 12; leaf 7 EBX 5.
    bool avx512f_usable, avx512bw_usable, avx512vl_usable, avx512dq_usable, avx512cd_usable;
    bool avx512_bf16_usable;      ///< Leaf 7 subleaf 1 EAX bit 5.
    bool amx_bf16_usable, amx_tile_usable, amx_int8_usable;   ///< Leaf 7 EDX bits 22, 24, 25.
} loom_cpu_features;

/// Fills `out` from cpuid and xgetbv on the calling CPU (all fields zero off x86).
void loom_cpu_features_read(loom_cpu_features *out);

/// This thread's scratch of at least `count` floats (64-byte aligned). It grows (one allocation)
/// only when a larger size is asked for, so a step loop allocates on its first step at most.
/// One user at a time: the previous contents are lost on growth, and callers must not nest.
float *loom_thread_scratch(size_t count);

/// This thread's slot: 0, 1, 2, … in the order threads first ask (the pool's threads ask when they
/// start), for per-thread state kept in arrays (oneDNN's memory objects and streams).
int loom_thread_slot(void);
/// How many slots have been handed out so far.
int loom_thread_slots(void);

/// Eight floats, imported into Swift as SIMD8<Float>.
typedef float loom_float8 __attribute__((ext_vector_type(8)));

/// Lane-wise square root, correctly rounded (vsqrtps on AVX). Swift's `SIMD8<Float>.squareRoot()`
/// compiles to eight scalar square roots with lane shuffles, the slowest part of AdamW's update.
static inline loom_float8 loom_sqrt8(loom_float8 x) { return __builtin_elementwise_sqrt(x); }

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
