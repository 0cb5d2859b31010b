// GemmTiles.h: what Loom's AVX-512 GEMM kernels (BF16Gemm.c, F32Gemm.c) share: the empty
// product, lane masks, what a band leaves of a row of tiles, and a 16×16 transpose of 32-bit
// values in registers. Each includer defines TILE_INLINE (static inline with its own target
// attribute) before including this header.
#ifndef LOOM_GEMM_TILES_H
#define LOOM_GEMM_TILES_H
#include <immintrin.h>

/// C(m×n) = β·C: the product of an empty inner dimension (β = 0 overwrites, so NaN in C does not
/// survive).
TILE_INLINE void scaleOnly(long m, long n, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

/// Lanes [0, count) of 16 (count ≤ 0 gives none).
TILE_INLINE __mmask16 lanes16(long count) {
    return count >= 16 ? (__mmask16)0xFFFF : count <= 0 ? (__mmask16)0 : (__mmask16)((1u << count) - 1);
}

/// What `band` (a LOOM_BAND_…, CVectorKernels.h) leaves of the register tiles of rows
/// [ic, ic + mr) in the packed block at column jc (nc columns) and k index pc (kc values): 0 when
/// they need nothing of it (C left as it was), else 1 with the columns they need (whole 16-lane
/// vectors, at most nc) and the k range [k0, k1) of the block they need. Rows i need columns
/// j ≤ i + offset (LOOM_BAND_COLUMNS_TO), or k ≤ i + offset (LOOM_BAND_REDUCTION_TO), or
/// k ≥ i − offset (LOOM_BAND_REDUCTION_FROM).
TILE_INLINE int bandedTiles(int band, long offset, long ic, long mr, long jc, long nc, long pc, long kc,
                            long *columns, long *k0, long *k1) {
    *columns = nc; *k0 = 0; *k1 = kc;
    if (band == LOOM_BAND_COLUMNS_TO) {
        const long needed = ic + mr + offset - jc;
        if (needed <= 0) return 0;
        const long vectors = 16 * ((needed + 15) / 16);
        if (vectors < nc) *columns = vectors;
    } else if (band == LOOM_BAND_REDUCTION_TO) {
        const long needed = ic + mr + offset - pc;
        if (needed < kc) *k1 = needed < 0 ? 0 : needed;
    } else if (band == LOOM_BAND_REDUCTION_FROM) {
        const long first = ic - offset - pc;
        if (first >= kc) *k1 = 0;
        else if (first > 0) *k0 = first;
    }
    return 1;
}

/// Transposes 16×16 32-bit values: lane j of r[i] goes to lane i of r[j].
TILE_INLINE void transpose16(__m512i r[16]) {
    __m512i t[16];
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < 16; i += 8) {
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    }
#pragma clang loop unroll(full)
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
    }
}

/// One row of C's tile: out[0, nr) = α·acc + β·out (+ bias[0, nr) when bias is not NULL) over nv
/// vectors of 16 (β = 0: out is not read; masked where nr < 16·nv).
TILE_INLINE void storeRow(const __m512 *acc, const int nv, float alpha, float beta, const float *bias, float *out,
                          long nr) {
    const __m512 scale = _mm512_set1_ps(alpha), keep = _mm512_set1_ps(beta);
    const int whole = nr == 16 * nv;
#pragma clang loop unroll(full)
    for (int v = 0; v < nv; v++, out += 16) {
        __m512 value = alpha == 1.0f ? acc[v] : _mm512_mul_ps(scale, acc[v]);
        if (bias) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(lanes16(nr - 16 * v), bias + 16 * v));
        if (whole) {
            if (beta == 1.0f) value = _mm512_add_ps(_mm512_loadu_ps(out), value);
            else if (beta != 0.0f) value = _mm512_fmadd_ps(keep, _mm512_loadu_ps(out), value);
            _mm512_storeu_ps(out, value);
        } else {
            const __mmask16 mask = lanes16(nr - 16 * v);
            if (!mask) break;
            if (beta == 1.0f) value = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), value);
            else if (beta != 0.0f) value = _mm512_fmadd_ps(keep, _mm512_maskz_loadu_ps(mask, out), value);
            _mm512_mask_storeu_ps(out, mask, value);
        }
    }
}

#endif
