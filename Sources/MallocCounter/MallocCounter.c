// MallocCounter: interposes glibc's allocation entry points to count them, then forwards to
// glibc's own implementation (__libc_*). It changes no behaviour.
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include "MallocCounter.h"
#include "CSupport.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

static uint64_t count, foreignCount, watchedCount;
static _Thread_local int foreign, watched;

uint64_t loom_malloc_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }
uint64_t loom_malloc_foreign_count(void) { return __atomic_load_n(&foreignCount, __ATOMIC_RELAXED); }
void loom_malloc_foreign_begin(void) { foreign++; }
void loom_malloc_foreign_end(void) { foreign--; }
uint64_t loom_malloc_watched_count(void) { return __atomic_load_n(&watchedCount, __ATOMIC_RELAXED); }
void loom_malloc_watch_begin(void) { watched++; }
void loom_malloc_watch_end(void) { watched--; }
static inline void bump(void) {
    __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
    if (foreign) __atomic_fetch_add(&foreignCount, 1, __ATOMIC_RELAXED);
    if (watched || loom_is_pool_worker()) __atomic_fetch_add(&watchedCount, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n) { bump(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { bump(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { bump(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { bump(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { bump(); return __libc_memalign(a, n); }
void *valloc(size_t n) { bump(); return __libc_valloc(n); }
void *pvalloc(size_t n) { bump(); return __libc_pvalloc(n); }
int posix_memalign(void **out, size_t a, size_t n) {
    bump();
    if (a % sizeof(void *) != 0 || (a & (a - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(a, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
