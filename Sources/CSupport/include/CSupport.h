// CSupport: what Support's thread pool needs from C: the spin-wait hint Swift cannot emit, and a
// per-thread mark on the pool's worker threads (which the allocation counter of tests reads).
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

/// Marks the calling thread as a worker of a ThreadPool (each worker, once, as it starts).
void loom_mark_pool_worker(void);
/// Whether the calling thread is a ThreadPool worker.
int loom_is_pool_worker(void);
