// CKernelSupport: the thread-local scratch buffer (the floating-point controls live in the header).
// It is not an allocator: one buffer per thread, kept for the thread's life.
#include "CKernelSupport.h"
#include <stdlib.h>

static _Thread_local float *scratch;
static _Thread_local size_t scratchCount;

float *loom_thread_scratch(size_t count) {
    if (count > scratchCount) {
        size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
        float *grown = aligned_alloc(64, bytes);
        if (grown == NULL) abort();
        free(scratch);
        scratch = grown;
        scratchCount = bytes / sizeof(float);
    }
    return scratch;
}
