// BF16Gemm: Loom's bf16 matrix product on AVX512_BF16 (vdpbf16ps), C(fp32) = α·op(A)·op(B) + β·C
// with A and B as bf16 bits. BLIS-like: op(B) is packed in blocks of KC×NC into panels of NR
// columns in the VNNI pair layout ([k/2][NR] pairs of bf16), op(A) is read in micro-panels of MR
// rows (straight from A when its rows hold k contiguously, else packed into the same pair
// layout), and an MR×NR register tile of fp32 accumulators takes one vdpbf16ps per 16 columns
// per pair of k. The packing buffers are fixed-size thread-local statics: a call allocates
// nothing and runs on the calling thread alone. Compiled with its own target attribute, so the
// file builds for baseline x86-64; Kernels calls it only after cpuid said AVX512_BF16 is usable.
#include "CVectorKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#define BF16_INLINE static inline __attribute__((always_inline)) BF16
#define TILE_INLINE BF16_INLINE
#include "GemmTiles.h"

// The register tile: MR rows × NV vectors of 16 columns (MR·NV accumulators of the 32 zmm
// registers, NV more for B's pairs). Overridable at build time (-Xcc -DLOOM_BF16_MR=…) to tune.
#ifndef LOOM_BF16_MR
#define LOOM_BF16_MR 8
#endif
#ifndef LOOM_BF16_NV
#define LOOM_BF16_NV 3
#endif
#ifndef LOOM_BF16_KC
#define LOOM_BF16_KC 512
#endif
#ifndef LOOM_BF16_PREFETCH
#define LOOM_BF16_PREFETCH 1
#endif
#ifndef LOOM_BF16_NC
#define LOOM_BF16_NC 384
#endif

enum {
    MR = LOOM_BF16_MR,        // rows of the register tile (≤ 16)
    NV = LOOM_BF16_NV,        // 16-column vectors of the register tile
    NR = 16 * LOOM_BF16_NV,   // columns of the register tile: one packed panel of B
    KC = LOOM_BF16_KC,        // k per packed block (even: a pair never straddles two blocks)
    NC = LOOM_BF16_NC,        // columns per packed block of B (a multiple of NR)
};
_Static_assert(MR >= 1 && MR <= 16 && NV >= 1 && NV <= 4 && MR * NV + NV <= 32, "the tile must fit the 32 zmm registers");
_Static_assert(KC % 2 == 0 && NC % NR == 0, "KC even, NC a multiple of NR");

/// The packed block of op(B): NC/NR panels, each [KC/2][NR] pairs (bf16 of k = 2p in the low
/// half, k = 2p + 1 in the high half), zero past k and past n.
static _Thread_local uint32_t packedB[(KC / 2) * NC] __attribute__((aligned(64)));
/// One packed micro-panel of op(A): [KC/2][MR] pairs, zero past k and past m; 16 pairs of
/// slack so packing may store whole 16-lane vectors.
static _Thread_local uint32_t packedA[(KC / 2) * MR + 16] __attribute__((aligned(64)));

/// Two rows of bf16 (k = 2p and 2p + 1) of `count` ≤ 16 values each, interleaved into 16 pairs;
/// `next` nil: an odd k's last pair (high halves zero). Lanes ≥ count are zero.
BF16_INLINE __m512i interleave(const uint16_t *row, const uint16_t *next, long count) {
    __mmask16 k = lanes16(count);
    __m512i low = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, row));
    if (!next) return low;
    __m512i high = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, next));
    return _mm512_or_si512(low, _mm512_slli_epi32(high, 16));
}

/// The pair of bf16 at p (k = p, p + 1) as one 32-bit value; `single`: only p (high half zero).
BF16_INLINE uint32_t pairAt(const uint16_t *p, int single) {
    if (single) return *p;
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/// Packs op(B) rows [pc, pc + kc) × columns [jc, jc + nc) into `packedB`.
BF16_INLINE void packB(int transB, const uint16_t *b, long ldb, long pc, long kc, long jc, long nc) {
    const long pairs = (kc + 1) / 2;
    for (long jr = 0; jr < nc; jr += NR) {
        uint32_t *panel = packedB + (jr / NR) * pairs * NR;
        const long nr = nc - jr < NR ? nc - jr : NR;
        if (!transB) {
            // op(B)(q, j) = b[q·ldb + j]: each pair interleaves two rows of B.
            const uint16_t *row = b + pc * ldb + jc + jr;
            for (long p = 0; p < pairs; p++, row += 2 * ldb) {
                const uint16_t *next = 2 * p + 1 < kc ? row + ldb : 0;
#pragma clang loop unroll(full)
                for (int v = 0; v < NV; v++)
                    _mm512_store_si512(panel + p * NR + 16 * v, interleave(row + 16 * v, next ? next + 16 * v : 0, nr - 16 * v));
            }
        } else {
            // op(B)(q, j) = b[j·ldb + q]: a pair is two neighbours in B's row j. Blocks of 16
            // columns × 16 pairs: 16 rows of B loaded, transposed in registers, stored as 16
            // pair rows of the panel.
            const long full = kc / 2;
            for (int v = 0; v < NV; v++) {
                const long columns = nr - 16 * v;
                for (long p0 = 0; p0 < full; p0 += 16) {
                    const __mmask16 k = lanes16(full - p0);
                    __m512i r[16];
#pragma clang loop unroll(full)
                    for (int i = 0; i < 16; i++)
                        r[i] = i < columns ? _mm512_maskz_loadu_epi32(k, b + (jc + jr + 16 * v + i) * ldb + pc + 2 * p0)
                                           : _mm512_setzero_si512();
                    transpose16(r);
                    const long count = full - p0 < 16 ? full - p0 : 16;
                    for (long q = 0; q < count; q++) _mm512_store_si512(panel + (p0 + q) * NR + 16 * v, r[q]);
                }
            }
            if (full < pairs) {   // odd k: the last value of each column alone
#pragma clang loop vectorize(disable)
                for (long j = 0; j < NR; j++) panel[full * NR + j] = j < nr ? b[(jc + jr + j) * ldb + pc + 2 * full] : 0;
            }
        }
    }
}

/// Packs op(A) rows [ic, ic + mr) × k [pc, pc + kc) into `packedA`.
BF16_INLINE void packA(int transA, const uint16_t *a, long lda, long ic, long mr, long pc, long kc) {
    const long pairs = (kc + 1) / 2;
    if (transA) {
        // op(A)(i, q) = a[q·lda + i]: each pair interleaves two rows of A.
        const uint16_t *row = a + pc * lda + ic;
        for (long p = 0; p < pairs; p++, row += 2 * lda)
            _mm512_storeu_si512(packedA + p * MR, interleave(row, 2 * p + 1 < kc ? row + lda : 0, mr));
    } else {
        // op(A)(i, q) = a[i·lda + q]: a pair is two neighbours in A's row i.
        const long full = kc / 2;
        // Scalar on purpose (only a ragged last panel comes here): vectorized, these loops
        // become scatters (slow on AMD Zen 4).
#pragma clang loop vectorize(disable)
        for (long r = 0; r < MR; r++) {
            if (r >= mr) {
#pragma clang loop vectorize(disable)
                for (long p = 0; p < pairs; p++) packedA[p * MR + r] = 0;
                continue;
            }
            const uint16_t *row = a + (ic + r) * lda + pc;
#pragma clang loop vectorize(disable)
            for (long p = 0; p < full; p++) packedA[p * MR + r] = pairAt(row + 2 * p, 0);
            if (full < pairs) packedA[full * MR + r] = pairAt(row + 2 * full, 1);
        }
    }
}

/// acc[r][v] += A's pair (r, p) · B's packed pair row p, for the tile's MR rows and nv vectors;
/// `single`: the pair is k's last value alone (odd k). A as `tile` reads it (`pa`: the packed
/// micro-panel).
BF16_INLINE void pairStep(__m512 acc[MR][NV], const int direct, const int nv, long p, int single,
                          const uint16_t *a, long lda, const uint32_t *pa, const uint32_t *bp) {
    __m512bh bv[NV];
#pragma clang loop unroll(full)
    for (int v = 0; v < nv; v++) bv[v] = (__m512bh)_mm512_load_si512(bp + p * NR + 16 * v);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        uint32_t pair = direct ? pairAt(a + r * lda + 2 * p, single) : pa[p * MR + r];
        __m512bh x = (__m512bh)_mm512_set1_epi32((int)pair);
#pragma clang loop unroll(full)
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], x, bv[v]);
    }
}

/// One MR×(16·nv) tile of C (nv ≤ NV: a ragged last panel of B takes only the vectors it
/// needs) over k of one block: pairs [p0, full), then (`odd`) k's last value alone.
/// A's pair (r, p) is at a + r·rowStride + 2p·… : `direct` reads A's rows in place (row stride
/// lda, pairs 2 values apart), else the packed micro-panel (pairs MR apart). Then
/// C = α·acc + β·C (+ bias per column, when not NULL) for the first mr rows and nr columns
/// (β = 0: C is not read).
BF16_INLINE void tile(const int direct, const int nv, long p0, long full, int odd, const uint16_t *a, long lda,
                      const uint32_t *bp, float alpha, float beta, const float *bias, float *c, long ldc, long mr,
                      long nr) {
    __m512 acc[MR][NV];
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    }
#if LOOM_BF16_PREFETCH
    // The tile of C comes in while the products run (k is long and C often outside L2).
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
#pragma clang loop unroll(full)
        for (int v = 0; v < nv; v++) _mm_prefetch((const char *)(c + r * ldc + 16 * v), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + nr - 1), _MM_HINT_T0);
    }
#endif
    const uint32_t *pa = packedA;
    for (long p = p0; p < full; p++) pairStep(acc, direct, nv, p, 0, a, lda, pa, bp);
    if (odd) pairStep(acc, direct, nv, full, 1, a, lda, pa, bp);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
        storeRow(acc[r], nv, alpha, beta, bias, c + r * ldc, nr);
    }
}

/// `tile` with as few 16-column vectors as the nr columns need (nv a constant in each call).
BF16_INLINE void tiles(const int direct, long p0, long full, int odd, const uint16_t *a, long lda, const uint32_t *bp,
                       float alpha, float beta, const float *bias, float *c, long ldc, long mr, long nr) {
    const long vectors = (nr + 15) / 16;
    if (vectors >= NV) tile(direct, NV, p0, full, odd, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#if LOOM_BF16_NV > 1
    else if (vectors == 1) tile(direct, 1, p0, full, odd, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#endif
#if LOOM_BF16_NV > 2
    else if (vectors == 2) tile(direct, 2, p0, full, odd, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#endif
#if LOOM_BF16_NV > 3
    else tile(direct, 3, p0, full, odd, a, lda, bp, alpha, beta, bias, c, ldc, mr, nr);
#endif
}

BF16 void loom_avx512_bf16_round(const float *in, uint16_t *out, long count) {
    long i = 0;
    for (; i + 32 <= count; i += 32) {
        // low half from the second operand: out[i…i+15] from in[i…i+15]
        __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
        _mm512_storeu_si512(out + i, (__m512i)r);
    }
    for (; i < count; i += 16) {
        const __mmask16 k = lanes16(count - i);
        __m256bh r = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, in + i));
        _mm256_mask_storeu_epi16(out + i, k, (__m256i)r);
    }
}

BF16 void loom_avx512_bf16_gemm(bool transA, bool transB, long m, long n, long k, float alpha,
                                const uint16_t *a, long lda, const uint16_t *b, long ldb,
                                float beta, float *c, long ldc) {
    loom_avx512_bf16_gemm_band(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, 0, c, ldc, LOOM_BAND_NONE, 0);
}

BF16 void loom_avx512_bf16_gemm_band(bool transA, bool transB, long m, long n, long k, float alpha,
                                     const uint16_t *a, long lda, const uint16_t *b, long ldb,
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
            const long kc = k - pc < KC ? k - pc : KC, pairs = (kc + 1) / 2;
            const float blockBeta = pc == 0 ? beta : 1.0f;   // later blocks add to the first's
            const float *blockBias = pc == 0 && bias ? bias + jc : 0;   // the first block adds the bias
            packB(transB, b, ldb, pc, kc, jc, nc);
            for (long ic = 0; ic < m; ic += MR) {
                const long mr = m - ic < MR ? m - ic : MR;
                float *ci = c + ic * ldc + jc;
                long columns, k0, k1;   // what the band leaves of these tiles: columns, k in [k0, k1)
                if (!bandedTiles(band, offset, ic, mr, jc, nc, pc, kc, &columns, &k0, &k1)) continue;
                // Whole pairs: one that straddles k0 adds a zero of op(A); k1 odd ends on a single.
                const long p0 = k0 / 2, tileFull = k1 / 2;
                const int tileOdd = (int)(k1 & 1);
                if (!transA && mr == MR) {
                    const uint16_t *ai = a + ic * lda + pc;
                    for (long jr = 0; jr < columns; jr += NR)
                        tiles(1, p0, tileFull, tileOdd, ai, lda, packedB + (jr / NR) * pairs * NR, alpha, blockBeta,
                              blockBias ? blockBias + jr : 0, ci + jr, ldc, mr, columns - jr < NR ? columns - jr : NR);
                } else {
                    packA(transA, a, lda, ic, mr, pc, kc);
                    for (long jr = 0; jr < columns; jr += NR)
                        tiles(0, p0, tileFull, tileOdd, 0, 0, packedB + (jr / NR) * pairs * NR, alpha, blockBeta,
                              blockBias ? blockBias + jr : 0, ci + jr, ldc, mr, columns - jr < NR ? columns - jr : NR);
                }
            }
        }
    }
}

#else
#include <stdlib.h>
void loom_avx512_bf16_gemm(bool transA, bool transB, long m, long n, long k, float alpha,
                           const uint16_t *a, long lda, const uint16_t *b, long ldb,
                           float beta, float *c, long ldc) { abort(); }
void loom_avx512_bf16_round(const float *in, uint16_t *out, long count) { abort(); }
void loom_avx512_bf16_gemm_band(bool transA, bool transB, long m, long n, long k, float alpha,
                                const uint16_t *a, long lda, const uint16_t *b, long ldb,
                                float beta, const float *bias, float *c, long ldc, int band, long offset) { abort(); }
#endif
