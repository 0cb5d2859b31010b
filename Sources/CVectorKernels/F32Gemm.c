// F32Gemm: Loom's fp32 matrix product on AVX-512 F, C = α·op(A)·op(B) + β·C. BLIS-like, as
// BF16Gemm.c: op(B) is packed in blocks of KC×NC into panels of NR columns ([k][NR] floats), op(A)
// is read in micro-panels of MR rows (straight from A when its rows hold k contiguously, else
// packed [k][MR]), and an MR×NR register tile of fp32 accumulators takes one FMA per 16 columns
// per k, A's value broadcast. The packing buffers are fixed-size thread-local statics: a call
// allocates nothing and runs on the calling thread alone. Compiled with its own target attribute,
// so the file builds for baseline x86-64; Kernels calls it only after cpuid said AVX-512 is usable.
#include "CVectorKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define F32 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define TILE_INLINE static inline __attribute__((always_inline)) F32
#include "GemmTiles.h"

// The register tile: MR rows × NV vectors of 16 columns. Overridable at build time
// (-Xcc -DLOOM_F32_MR=…) to tune.
#ifndef LOOM_F32_MR
#define LOOM_F32_MR 8
#endif
#ifndef LOOM_F32_NV
#define LOOM_F32_NV 3
#endif
#ifndef LOOM_F32_KC
#define LOOM_F32_KC 256
#endif
#ifndef LOOM_F32_NC
#define LOOM_F32_NC 384
#endif

enum {
    MR = LOOM_F32_MR,        // rows of the register tile (≤ 16)
    NV = LOOM_F32_NV,        // 16-column vectors of the register tile
    NR = 16 * LOOM_F32_NV,   // columns of the register tile: one packed panel of B
    KC = LOOM_F32_KC,        // k per packed block
    NC = LOOM_F32_NC,        // columns per packed block of B (a multiple of NR)
};
_Static_assert(MR >= 1 && MR <= 16 && NV >= 1 && NV <= 4 && MR * NV + NV <= 32, "the tile must fit the 32 zmm registers");
_Static_assert(KC % 16 == 0 && NC % NR == 0, "KC a multiple of 16, NC a multiple of NR");

/// The packed block of op(B): NC/NR panels, each [KC][NR], zero past n.
static _Thread_local float packedB[KC * NC] __attribute__((aligned(64)));
/// One packed micro-panel of op(A): [KC][MR], zero past m.
static _Thread_local float packedA[KC * MR] __attribute__((aligned(64)));

/// Packs op(B) rows [pc, pc + kc) × columns [jc, jc + nc) into `packedB`.
TILE_INLINE void packB(int transB, const float *b, long ldb, long pc, long kc, long jc, long nc) {
    for (long jr = 0; jr < nc; jr += NR) {
        float *panel = packedB + (jr / NR) * kc * NR;
        const long nr = nc - jr < NR ? nc - jr : NR;
        if (!transB) {
            // op(B)(q, j) = b[q·ldb + j]: each packed row is a piece of one row of B.
            const float *row = b + pc * ldb + jc + jr;
            for (long q = 0; q < kc; q++, row += ldb) {
#pragma clang loop unroll(full)
                for (int v = 0; v < NV; v++)
                    _mm512_store_ps(panel + q * NR + 16 * v, _mm512_maskz_loadu_ps(lanes16(nr - 16 * v), row + 16 * v));
            }
        } else {
            // op(B)(q, j) = b[j·ldb + q]: blocks of 16 columns × 16 k, 16 rows of B loaded,
            // transposed in registers, stored as 16 packed rows.
            for (int v = 0; v < NV; v++) {
                const long columns = nr - 16 * v;
                for (long q0 = 0; q0 < kc; q0 += 16) {
                    const __mmask16 k = lanes16(kc - q0);
                    __m512i r[16];
#pragma clang loop unroll(full)
                    for (int i = 0; i < 16; i++)
                        r[i] = i < columns ? _mm512_maskz_loadu_epi32(k, b + (jc + jr + 16 * v + i) * ldb + pc + q0)
                                           : _mm512_setzero_si512();
                    transpose16(r);
                    const long count = kc - q0 < 16 ? kc - q0 : 16;
                    for (long q = 0; q < count; q++) _mm512_store_si512(panel + (q0 + q) * NR + 16 * v, r[q]);
                }
            }
        }
    }
}

/// Packs op(A) rows [ic, ic + mr) × k [pc, pc + kc) into `packedA`.
TILE_INLINE void packA(int transA, const float *a, long lda, long ic, long mr, long pc, long kc) {
    if (transA) {
        // op(A)(i, q) = a[q·lda + i]: each packed row is a piece of one row of A.
        const __mmask16 m = lanes16(mr);
        const float *row = a + pc * lda + ic;
        for (long q = 0; q < kc; q++, row += lda) {
            const __m512 x = _mm512_maskz_loadu_ps(m, row);
            if (MR == 16) _mm512_store_ps(packedA + q * MR, x);
            else _mm512_mask_storeu_ps(packedA + q * MR, lanes16(MR), x);
        }
    } else {
        // op(A)(i, q) = a[i·lda + q]: only a ragged last panel comes here; scalar (vectorized, the
        // strided stores become scatters, slow on AMD Zen 4).
#pragma clang loop vectorize(disable)
        for (long r = 0; r < MR; r++) {
            const float *row = a + (ic + r) * lda + pc;
#pragma clang loop vectorize(disable)
            for (long q = 0; q < kc; q++) packedA[q * MR + r] = r < mr ? row[q] : 0.0f;
        }
    }
}

/// One MR×(16·nv) tile of C (nv ≤ NV: a ragged last panel of B takes only the vectors it needs)
/// over values [q0, kc) of the block's k. A's value (r, q) is a[r·lda + q] when `direct` (A's rows in
/// place), else the packed micro-panel's [q][r]. Then C = α·acc + β·C (+ bias per column, when
/// not NULL) for the first mr rows and nr columns.
TILE_INLINE void tile(const int direct, const int nv, long q0, long kc, const float *a, long lda, const float *bp,
                      float alpha, float beta, const float *bias, float *c, long ldc, long mr, long nr) {
    __m512 acc[MR][NV];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    }
    // The tile of C comes in while the products run (k is long and C often outside L2).
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
#pragma clang loop unroll(full)
        for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(c + r * ldc + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + nr - 1), _MM_HINT_T0);
    }
    for (long q = q0; q < kc; q++) {
        __m512 bv[NV];
#pragma clang loop unroll(full)
        for (int v = 0; v < nv; v++) bv[v] = _mm512_load_ps(bp + q * NR + 16 * v);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            const __m512 x = _mm512_set1_ps(direct ? a[r * lda + q] : packedA[q * MR + r]);
#pragma clang loop unroll(full)
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
        storeRow(acc[r], nv, alpha, beta, bias, c + r * ldc, nr);
    }
}

/// `tile` with as few 16-column vectors as the nr columns need (nv a constant in each call).
TILE_INLINE void tiles(const int direct, long q0, long kc, const float *a, long lda, const float *bp,
                       float alpha, float beta, const float *bias, float *c, long ldc, long mr, long nr) {
    const long vectors = (nr + 15) / 16;
    if (vectors >= NV) tile(direct, NV, q0, kc, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#if LOOM_F32_NV > 1
    else if (vectors == 1) tile(direct, 1, q0, kc, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#endif
#if LOOM_F32_NV > 2
    else if (vectors == 2) tile(direct, 2, q0, kc, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#endif
#if LOOM_F32_NV > 3
    else tile(direct, 3, q0, kc, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#endif
}

F32 void loom_avx512_f32_gemm(bool transA, bool transB, long m, long n, long k, float alpha,
                              const float *a, long lda, const float *b, long ldb,
                              float beta, float *c, long ldc) {
    loom_avx512_f32_gemm_band(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, 0, c, ldc, LOOM_BAND_NONE, 0);
}

F32 void loom_avx512_f32_gemm_band(bool transA, bool transB, long m, long n, long k, float alpha,
                                   const float *a, long lda, const float *b, long ldb,
                                   float beta, const float *bias, float *c, long ldc, int band, long offset) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        scaleOnly(m, n, beta, c, ldc);
        if (bias) for (long i = 0; i < m; i++) for (long j = 0; j < n; j++) c[i * ldc + j] += bias[j];
        return;
    }
    for (long jc = 0; jc < n; jc += NC) {
        const long nc = n - jc < NC ? n - jc : NC;
        for (long pc = 0; pc < k; pc += KC) {
            const long kc = k - pc < KC ? k - pc : KC;
            const float blockBeta = pc == 0 ? beta : 1.0f;   // later blocks add to the first's
            const float *blockBias = pc == 0 && bias ? bias + jc : 0;   // the first block adds the bias
            packB(transB, b, ldb, pc, kc, jc, nc);
            for (long ic = 0; ic < m; ic += MR) {
                const long mr = m - ic < MR ? m - ic : MR;
                float *ci = c + ic * ldc + jc;
                long columns, q0, tileK;   // what the band leaves of these tiles: columns, k in [q0, tileK)
                if (!bandedTiles(band, offset, ic, mr, jc, nc, pc, kc, &columns, &q0, &tileK)) continue;
                const int direct = !transA && mr == MR;
                if (!direct) packA(transA, a, lda, ic, mr, pc, kc);
                const float *ai = direct ? a + ic * lda + pc : 0;
                for (long jr = 0; jr < columns; jr += NR)
                    tiles(direct, q0, tileK, ai, lda, packedB + (jr / NR) * kc * NR, alpha, blockBeta,
                          blockBias ? blockBias + jr : 0, ci + jr, ldc, mr, columns - jr < NR ? columns - jr : NR);
            }
        }
    }
}

#else
#include <stdlib.h>
void loom_avx512_f32_gemm(bool transA, bool transB, long m, long n, long k, float alpha,
                          const float *a, long lda, const float *b, long ldb,
                          float beta, float *c, long ldc) { abort(); }
void loom_avx512_f32_gemm_band(bool transA, bool transB, long m, long n, long k, float alpha,
                               const float *a, long lda, const float *b, long ldb,
                               float beta, const float *bias, float *c, long ldc, int band, long offset) { abort(); }
#endif
