// bf16-gemm-shapes: Loom's bf16 kernel (Sources/CVectorKernels/BF16Gemm.c) on one thread at the
// small GPT's per-thread products (1,024 of the step's 2,048 rows; weight gradients split in two
// as Linear.backward splits them), best of 7 each, against `loom system --peak`'s one-thread
// vdpbf16ps ceiling. With `--cold`, each shape also runs on ten operand sets in turn (~60 MB,
// beyond a 32 MiB L3; each set last touched nine calls before), as a step's operands come from
// memory. Not part of the package; after `swift build -c release`:
//   gcc -O2 tools/bf16-gemm-shapes.c .build/release/CVectorKernels.build/BF16Gemm.c.o -o /tmp/bf16-gemm-shapes
//   /tmp/bf16-gemm-shapes [--cold]      (only on a CPU with AVX512_BF16)
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void loom_avx512_bf16_gemm(bool ta, bool tb, long m, long n, long k, float alpha, const uint16_t *a, long lda,
                           const uint16_t *b, long ldb, float beta, float *c, long ldc);

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

enum { SETS = 10 };

int main(int argc, char **argv) {
    const int cold = argc > 1 && strcmp(argv[1], "--cold") == 0;
    const struct { const char *name; bool ta, tb; long m, n, k; } shapes[] = {
        {"forward qkv", 0, 0, 1024, 1152, 384},  {"forward proj", 0, 0, 1024, 384, 384},
        {"forward fc1", 0, 0, 1024, 1536, 384},  {"forward fc2", 0, 0, 1024, 384, 1536},
        {"dinput qkv", 0, 1, 1024, 384, 1152},   {"dinput proj", 0, 1, 1024, 384, 384},
        {"dinput fc1", 0, 1, 1024, 384, 1536},   {"dinput fc2", 0, 1, 1024, 1536, 384},
        {"dweight qkv", 1, 0, 384, 576, 2048},   {"dweight proj", 1, 0, 192, 384, 2048},
        {"dweight fc1", 1, 0, 384, 768, 2048},   {"dweight fc2", 1, 0, 768, 384, 2048}};
    const long size = 2048L * 1536L;   // the largest operand of the shapes below
    uint16_t *as[SETS], *bs[SETS];
    float *cs[SETS];
    for (int t = 0; t < (cold ? SETS : 1); t++) {
        as[t] = malloc(2 * size); bs[t] = malloc(2 * size); cs[t] = calloc(size, 4);
        if (!as[t] || !bs[t] || !cs[t]) { fprintf(stderr, "bf16-gemm-shapes: out of memory\n"); return 1; }
        for (long i = 0; i < size; i++) { as[t][i] = 0x3f80 + i % 7; bs[t][i] = 0x3f00 + i % 5; }
    }
    uint16_t *a = as[0], *b = bs[0];
    float *c = cs[0];
    double flops = 0, seconds = 0, coldSeconds = 0;
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
        double f = 2.0 * m * n * k, coldBest = 1e9;
        for (int r = 0; cold && r < 3; r++) {
            for (int t = 0; t < SETS; t++) {
                double t0 = now();
                loom_avx512_bf16_gemm(shapes[s].ta, shapes[s].tb, m, n, k, 1, as[t], lda, bs[t], ldb, shapes[s].ta ? 1 : 0,
                                      cs[t], n);
                t0 = now() - t0;
                if (r > 0 && t0 < coldBest) coldBest = t0;   // the first round only brings every set in once
            }
        }
        flops += f; seconds += best; coldSeconds += coldBest;
        printf("%-13s %5ld×%5ld×%5ld %7.1f GFLOP/s %6.2f ms", shapes[s].name, m, n, k, f / best / 1e9, best * 1e3);
        if (cold) printf("   cold %7.1f GFLOP/s", f / coldBest / 1e9);
        printf("\n");
    }
    printf("all           %.1f GFLOP/s (FLOP-weighted), %.1f ms: one layer's products for one thread\n", flops / seconds / 1e9,
           seconds * 1e3);
    if (cold) printf("all cold      %.1f GFLOP/s (FLOP-weighted)\n", flops / coldSeconds / 1e9);
    return 0;
}
