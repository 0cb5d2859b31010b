// MallocCounter: counts calls into the C heap (malloc, calloc, realloc, memalign family) made by
// any thread of the process, and apart those of watched threads and thread-pool workers. Every
// call is passed to glibc unchanged.
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

/// Marks the calling thread as watched (calls nest): its allocations, and those of every
/// ThreadPool worker thread, also count in loom_malloc_watched_count. A test that counts a step's
/// allocations watches its own thread, so other tests running meanwhile on other threads (Swift
/// Testing runs them in parallel) do not land in its count; the pool's workers run only pool jobs.
void loom_malloc_watch_begin(void);
void loom_malloc_watch_end(void);
/// Allocations made by watched threads and pool workers since the process started.
uint64_t loom_malloc_watched_count(void);
