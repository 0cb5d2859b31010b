// bf16-gemm-shapes: Loom's bf16 kernel (Sources/CVectorKernels/BF16Gemm.c) on one thread at the
// small GPT's per-thread products (1,024 of the step's 2,048 rows; weight gradients split in two
// as Linear.backward splits them), best of 7 each, against `loom system --peak`'s one-thread
// vdpbf16ps ceiling. Not part of the package; after `swift build -c release`:
//   gcc -O2 tools/bf16-gemm-shapes.c .build/release/CVectorKernels.build/BF16Gemm.c.o -o /tmp/bf16-gemm-shapes
//   /tmp/bf16-gemm-shapes      (only on a CPU with AVX512_BF16)
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void loom_avx512_bf16_gemm(bool ta, bool tb, long m, long n, long k, float alpha, const uint16_t *a, long lda,
                           const uint16_t *b, long ldb, float beta, float *c, long ldc);

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(void) {
    const struct { const char *name; bool ta, tb; long m, n, k; } shapes[] = {
        {"forward qkv", 0, 0, 1024, 1152, 384},  {"forward proj", 0, 0, 1024, 384, 384},
        {"forward fc1", 0, 0, 1024, 1536, 384},  {"forward fc2", 0, 0, 1024, 384, 1536},
        {"dinput qkv", 0, 1, 1024, 384, 1152},   {"dinput proj", 0, 1, 1024, 384, 384},
        {"dinput fc1", 0, 1, 1024, 384, 1536},   {"dinput fc2", 0, 1, 1024, 1536, 384},
        {"dweight qkv", 1, 0, 384, 576, 2048},   {"dweight proj", 1, 0, 192, 384, 2048},
        {"dweight fc1", 1, 0, 384, 768, 2048},   {"dweight fc2", 1, 0, 768, 384, 2048}};
    const long size = 4096L * 4096L;
    uint16_t *a = malloc(2 * size), *b = malloc(2 * size);
    float *c = calloc(size, 4);
    if (!a || !b || !c) { fprintf(stderr, "bf16-gemm-shapes: out of memory\n"); return 1; }
    for (long i = 0; i < size; i++) { a[i] = 0x3f80 + i % 7; b[i] = 0x3f00 + i % 5; }
    double flops = 0, seconds = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        long m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
        long lda = shapes[s].ta ? m : k, ldb = shapes[s].tb ? k : n;
        double best = 1e9;
        for (int r = 0; r < 7; r++) {
            double t = now();
            loom_avx512_bf16_gemm(shapes[s].ta, shapes[s].tb, m, n, k, 1, a, lda, b, ldb, shapes[s].ta ? 1 : 0, c, n);
            t = now() - t;
            if (t < best) best = t;
        }
        double f = 2.0 * m * n * k;
        flops += f; seconds += best;
        printf("%-13s %5ld×%5ld×%5ld %7.1f GFLOP/s %6.2f ms\n", shapes[s].name, m, n, k, f / best / 1e9, best * 1e3);
    }
    printf("all           %.1f GFLOP/s (FLOP-weighted), %.1f ms: one layer's products for one thread\n", flops / seconds / 1e9,
           seconds * 1e3);
    return 0;
}
