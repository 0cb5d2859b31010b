// CSupport: the pool-worker mark (a thread-local flag); the rest lives in the header (static inline).
#include "CSupport.h"

static _Thread_local int poolWorker;

void loom_mark_pool_worker(void) { poolWorker = 1; }
int loom_is_pool_worker(void) { return poolWorker; }
