// CSupport: the one instruction Swift cannot emit that Support's thread pool needs, the spin-wait
// hint.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
/// A spin-wait hint: lets a sibling hardware thread on the same core run while this one polls.
static inline void loom_cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void loom_cpu_relax(void) { __asm__ volatile("yield"); }
#else
static inline void loom_cpu_relax(void) {}
#endif
