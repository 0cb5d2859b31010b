// CKernelSupport: the thread-local scratch buffer and the CPU feature read (cpuid, xgetbv); the
// floating-point controls live in the header. The scratch is one buffer per thread, kept
// for the thread's life.
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

static _Thread_local int slot = -1;
static int slots;

int loom_thread_slot(void) {
    if (slot < 0) slot = __atomic_fetch_add(&slots, 1, __ATOMIC_RELAXED);
    return slot;
}

int loom_thread_slots(void) { return __atomic_load_n(&slots, __ATOMIC_RELAXED); }

#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/// XCR0 (the OS-enabled register state); 0 when the OS has not enabled XSAVE (OSXSAVE clear).
static unsigned long long xcr0(bool osxsave) {
    if (!osxsave) return 0;
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

void loom_cpu_features_read(loom_cpu_features *out) {
    memset(out, 0, sizeof *out);
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    unsigned maxLeaf = a;
    memcpy(out->vendor, &b, 4); memcpy(out->vendor + 4, &d, 4); memcpy(out->vendor + 8, &c, 4);
    out->vendor[12] = 0;

    __cpuid(1, a, b, c, d);
    unsigned baseFamily = (a >> 8) & 0xf, baseModel = (a >> 4) & 0xf;
    out->family = baseFamily == 0xf ? baseFamily + ((a >> 20) & 0xff) : baseFamily;
    out->model = (baseFamily == 0x6 || baseFamily == 0xf) ? baseModel + (((a >> 16) & 0xf) << 4) : baseModel;
    out->stepping = a & 0xf;
    unsigned long long xcr = xcr0((c >> 27) & 1);
    out->os_avx = (xcr & 0x6) == 0x6;
    out->os_avx512 = out->os_avx && (xcr & 0xe0) == 0xe0;
    out->os_amx = (xcr & 0x60000) == 0x60000;
    out->sse3 = c & 1; out->ssse3 = (c >> 9) & 1; out->sse4_1 = (c >> 19) & 1; out->sse4_2 = (c >> 20) & 1;
    out->avx_usable = out->os_avx && ((c >> 28) & 1);
    out->fma_usable = out->os_avx && ((c >> 12) & 1);

    if (maxLeaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        unsigned subleaves = a;
        out->avx2_usable = out->os_avx && ((b >> 5) & 1);
        out->avx512f_usable = out->os_avx512 && ((b >> 16) & 1);
        out->avx512dq_usable = out->os_avx512 && ((b >> 17) & 1);
        out->avx512cd_usable = out->os_avx512 && ((b >> 28) & 1);
        out->avx512bw_usable = out->os_avx512 && ((b >> 30) & 1);
        out->avx512vl_usable = out->os_avx512 && ((b >> 31) & 1);
        out->amx_bf16_usable = out->os_amx && ((d >> 22) & 1);
        out->amx_tile_usable = out->os_amx && ((d >> 24) & 1);
        out->amx_int8_usable = out->os_amx && ((d >> 25) & 1);
        if (subleaves >= 1) {
            __cpuid_count(7, 1, a, b, c, d);
            out->avx512_bf16_usable = out->os_avx512 && ((a >> 5) & 1);
        }
    }

    __cpuid(0x80000000, a, b, c, d);
    if (a >= 0x80000004) {
        unsigned words[12];
        for (unsigned i = 0; i < 3; i++) __cpuid(0x80000002 + i, words[4 * i], words[4 * i + 1], words[4 * i + 2], words[4 * i + 3]);
        memcpy(out->brand, words, 48);
        out->brand[48] = 0;
    }
}
#else
void loom_cpu_features_read(loom_cpu_features *out) { memset(out, 0, sizeof *out); }
#endif
