// MallocCounter: counts calls into the C heap (malloc, calloc, realloc, memalign family) made by
// any thread of the process. Every call is passed to glibc unchanged.
#pragma once
#include <stdint.h>
/// Number of heap allocations since the process started (all threads).
uint64_t loom_malloc_count(void);

/// Marks the calling thread as inside a library call whose own allocations Loom cannot avoid
/// (oneDNN 2.x's dnnl_primitive_execute allocates its argument map on every call): allocations
/// between begin and end still count in loom_malloc_count, and also in loom_malloc_foreign_count,
/// so `loom bench` can say whose they are. Calls nest.
void loom_malloc_foreign_begin(void);
void loom_malloc_foreign_end(void);
/// Allocations made inside such marked calls since the process started (all threads).
uint64_t loom_malloc_foreign_count(void);
