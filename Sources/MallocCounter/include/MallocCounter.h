// MallocCounter: counts calls into the C heap (malloc, calloc, realloc, memalign family) made by
// any thread of the process. It is not an allocator: every call is passed to glibc unchanged.
#pragma once
#include <stdint.h>
/// Number of heap allocations since the process started (all threads).
uint64_t loom_malloc_count(void);
