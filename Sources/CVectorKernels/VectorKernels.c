// VectorKernels: the AVX-512 (16-lane) bodies of SmallGemm, softmax, GELU, LayerNorm and AdamW.
// Each function carries its own target attribute, so the file builds for baseline x86-64 and the
// binary runs anywhere; Kernels calls these only after cpuid said AVX-512 is usable. The target
// builds with -ffp-contract=off: every fused multiply-add below is written out, so the results are
// the ones the Swift reference computes where the operations match (exp, tanh, GELU, AdamW).
#include "CVectorKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#define INLINE static inline __attribute__((always_inline)) AVX512

bool loom_avx512_compiled(void) { return true; }

/// Lanes [0, count) of 16 (count ≤ 16).
INLINE __mmask16 lanes(long count) { return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1); }

/// 16 floats, or the lanes in `k` (zero elsewhere) when `masked`: every loop runs whole vectors
/// unmasked and only its last, partial vector masked (masked stores cost several times a plain
/// one on AMD Zen 4/5).
INLINE __m512 load(const float *p, __mmask16 k, const int masked) {
    return masked ? _mm512_maskz_loadu_ps(k, p) : _mm512_loadu_ps(p);
}
INLINE void store(float *p, __m512 v, __mmask16 k, const int masked) {
    if (masked) _mm512_mask_storeu_ps(p, k, v); else _mm512_storeu_ps(p, v);
}

/// Runs BODY(i, k, masked) over [0, n) in 16-lane steps: whole vectors with masked = 0, then the
/// partial one (if any) with masked = 1 and k its lanes.
#define FOR_VECTORS(n, BODY) do { \
    long i_ = 0; \
    for (; i_ + 16 <= (n); i_ += 16) BODY(i_, (__mmask16)0xFFFF, 0); \
    if (i_ < (n)) BODY(i_, lanes((n) - i_), 1); \
} while (0)

// MARK: Transpose

#define TILE_INLINE INLINE
#include "GemmTiles.h"

AVX512 void loom_avx512_transpose(const float *src, long rows, long columns, long ld, float *dst) {
    for (long r0 = 0; r0 < rows; r0 += 16) {
        const long nr = rows - r0 < 16 ? rows - r0 : 16;
        for (long c0 = 0; c0 < columns; c0 += 16) {
            const long nc = columns - c0 < 16 ? columns - c0 : 16;
            const __mmask16 k = lanes16(nc);
            __m512i r[16];
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++)
                r[i] = i < nr ? _mm512_maskz_loadu_epi32(k, src + (r0 + i) * ld + c0) : _mm512_setzero_si512();
            transpose16(r);
            float *d = dst + c0 * rows + r0;
#pragma clang loop unroll(full)
            for (int i = 0; i < 16; i++) {
                if (i >= nc) break;
                if (nr == 16) _mm512_storeu_si512(d + i * rows, r[i]);
                else _mm512_mask_storeu_epi32(d + i * rows, lanes16(nr), r[i]);
            }
        }
    }
}

// MARK: SmallGemm

/// One MR×(16·NV) tile of C at column j: accumulators in registers over all k, then α and the
/// optional accumulate. `mask` limits the last 16-lane vector (the ragged edge).
INLINE void tile(const int MR, const int NV, const int masked, long k, float alpha,
                 const float *a, long rs, long cs, const float *b, long ldb,
                 bool accumulate, float *c, long ldc, __mmask16 last) {
    __m512 acc[8][2];
    __mmask16 mask[2] = { NV == 1 ? last : 0xFFFF, last };
    int partial[2] = { masked && NV == 1, masked };
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    }
    const float *row = b;
    for (long p = 0; p < k; p++) {
        __m512 bv[2];
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) bv[v] = load(row + 16 * v, mask[v], partial[v]);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            __m512 x = _mm512_set1_ps(a[r * rs + p * cs]);
#pragma clang loop unroll(full)
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
        row += ldb;
    }
    __m512 scale = _mm512_set1_ps(alpha);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
#pragma clang loop unroll(full)
        for (int v = 0; v < NV; v++) {
            float *out = c + r * ldc + 16 * v;
            __m512 value = alpha == 1.0f ? acc[r][v] : _mm512_mul_ps(scale, acc[r][v]);
            if (accumulate) value = _mm512_add_ps(load(out, mask[v], partial[v]), value);
            store(out, value, mask[v], partial[v]);
        }
    }
}

/// Rows [0, MR) of C across all n columns: 32 at a time, then one or two masked vectors.
INLINE void rows(const int MR, long n, long k, float alpha, const float *a, long rs, long cs,
                 const float *b, long ldb, bool accumulate, float *c, long ldc) {
    long j = 0;
    for (; j + 32 <= n; j += 32) tile(MR, 2, 0, k, alpha, a, rs, cs, b + j, ldb, accumulate, c + j, ldc, 0xFFFF);
    long rest = n - j;
    if (rest == 16) tile(MR, 1, 0, k, alpha, a, rs, cs, b + j, ldb, accumulate, c + j, ldc, 0xFFFF);
    else if (rest > 16) tile(MR, 2, 1, k, alpha, a, rs, cs, b + j, ldb, accumulate, c + j, ldc, lanes(rest - 16));
    else if (rest > 0) tile(MR, 1, 1, k, alpha, a, rs, cs, b + j, ldb, accumulate, c + j, ldc, lanes(rest));
}

AVX512 void loom_avx512_small_gemm(long m, long n, long k, float alpha, const float *a, long rs, long cs,
                                   const float *b, long ldb, bool accumulate, float *c, long ldc) {
    for (long i = 0; i < m; i += 8) {
        const float *ai = a + i * rs;
        float *ci = c + i * ldc;
        switch (m - i >= 8 ? 8 : m - i) {
        case 8: rows(8, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        case 7: rows(7, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        case 6: rows(6, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        case 5: rows(5, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        case 4: rows(4, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        case 3: rows(3, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        case 2: rows(2, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        default: rows(1, n, k, alpha, ai, rs, cs, b, ldb, accumulate, ci, ldc); break;
        }
    }
}

// MARK: exp, tanh (FastMath.swift's polynomials, operation for operation)

/// x limited to [lo, hi]; NaN stays NaN (maxps/minps return their second operand on NaN).
INLINE __m512 clamp(__m512 x, float lo, float hi) {
    return _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), x));
}

INLINE __m512 exp16(__m512 x) {
    x = clamp(x, -87.0f, 87.0f);
    const __m512 magic = _mm512_set1_ps(12582912.0f);   // 1.5 · 2²³
    __m512 shifted = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), magic);
    __m512 fx = _mm512_sub_ps(shifted, magic);
    x = _mm512_sub_ps(x, _mm512_mul_ps(fx, _mm512_set1_ps(0.693359375f)));
    x = _mm512_add_ps(x, _mm512_mul_ps(fx, _mm512_set1_ps(2.12194440e-4f)));
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i n = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    __m512 power = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23));
    return _mm512_mul_ps(y, power);
}

INLINE __m512 tanh16(__m512 input) {
    __m512 x = clamp(input, -7.99881172180175781f, 7.99881172180175781f);
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(-2.76076847742355e-16f), _mm512_set1_ps(2.00018790482477e-13f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-8.60467152213735e-11f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(5.12229709037114e-08f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(1.48572235717979e-05f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(6.37261928875436e-04f));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(4.89352455891786e-03f));
    p = _mm512_mul_ps(x, p);
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(1.19825839466702e-06f), _mm512_set1_ps(1.18534705686654e-04f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(2.26843463243900e-03f));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(4.89352518554385e-03f));
    return _mm512_div_ps(p, q);
}

// MARK: softmax

AVX512 float loom_avx512_maximum(const float *p, long n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
#define MAXIMUM(i, k, masked) m = _mm512_max_ps(m, masked ? _mm512_mask_loadu_ps(m, k, p + i) : _mm512_loadu_ps(p + i))
    FOR_VECTORS(n, MAXIMUM);
    return _mm512_reduce_max_ps(m);
}

AVX512 float loom_avx512_exponentiate(float *p, long n, float subtract, float scale) {
    __m512 acc = _mm512_setzero_ps(), s = _mm512_set1_ps(subtract), f = _mm512_set1_ps(scale);
#define EXPONENTIATE(i, k, masked) do { \
        __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(load(p + i, k, masked), s), f)); \
        store(p + i, e, k, masked); \
        acc = masked ? _mm512_mask_add_ps(acc, k, acc, e) : _mm512_add_ps(acc, e); \
    } while (0)
    FOR_VECTORS(n, EXPONENTIATE);
    return _mm512_reduce_add_ps(acc);
}

AVX512 void loom_avx512_softmax_row(float *p, long n) {
    __m512 f = _mm512_set1_ps(1.0f / loom_avx512_exponentiate(p, n, loom_avx512_maximum(p, n), 1.0f));
#define SCALE(i, k, masked) store(p + i, _mm512_mul_ps(load(p + i, k, masked), f), k, masked)
    FOR_VECTORS(n, SCALE);
}

AVX512 void loom_avx512_softmax_backward_row(const float *p, float *d, long limit, long count, float alpha) {
    __m512 acc = _mm512_setzero_ps();
#define DOT(j, k, masked) acc = _mm512_fmadd_ps(load(p + j, k, masked), load(d + j, k, masked), acc)
    FOR_VECTORS(limit, DOT);
    __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), a = _mm512_set1_ps(alpha);
#define GRADIENT(j, k, masked) \
    store(d + j, _mm512_mul_ps(_mm512_mul_ps(load(p + j, k, masked), _mm512_sub_ps(load(d + j, k, masked), dot)), a), k, masked)
    FOR_VECTORS(limit, GRADIENT);
    for (long j = limit; j < count; j++) d[j] = 0;
}

// MARK: GELU (GELU.swift's value and derivative, operation for operation)

INLINE __m512 gelu16(__m512 x) {
    const __m512 s = _mm512_set1_ps(0.7978845608028654f), one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 t = tanh16(_mm512_mul_ps(s, _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(0.044715f), x3))));
    return _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, t));
}

INLINE __m512 gelu_derivative16(__m512 x) {
    const __m512 s = _mm512_set1_ps(0.7978845608028654f), one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 inner = _mm512_mul_ps(s, _mm512_add_ps(x, _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x2), x)));
    __m512 t = tanh16(inner);
    __m512 sech2 = _mm512_sub_ps(one, _mm512_mul_ps(t, t));
    __m512 dinner = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(_mm512_set1_ps(0.134145f), x2)));
    __m512 left = _mm512_mul_ps(half, _mm512_add_ps(one, t));
    __m512 right = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), sech2), dinner);
    return _mm512_add_ps(left, right);
}

AVX512 void loom_avx512_gelu_forward(float *out, const float *inp, long n) {
#define GELU(i, k, masked) store(out + i, gelu16(load(inp + i, k, masked)), k, masked)
    FOR_VECTORS(n, GELU);
}

AVX512 void loom_avx512_gelu_backward(float *dinp, const float *inp, const float *dout, long n) {
#define GELU_BACKWARD(i, k, masked) \
    store(dinp + i, _mm512_mul_ps(gelu_derivative16(load(inp + i, k, masked)), load(dout + i, k, masked)), k, masked)
    FOR_VECTORS(n, GELU_BACKWARD);
}

// erf form: GELU.swift's erfParts, onePlusErf, exactValue and exactDerivative, operation for operation.

/// erf(u) by the polynomial (|u| ≤ 1), erfc(|u|) by the tail (|u| ≥ 1), and e^(−u²).
INLINE void erf_parts16(__m512 u, __m512 *small, __m512 *tail, __m512 *gaussian) {
    __m512 u2 = _mm512_mul_ps(u, u);
    __m512 p = _mm512_set1_ps(-0.0005625396152026951f);
    p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(0.004916023463010788f));
    p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(-0.02670994959771633f));
    p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(0.11280130594968796f));
    p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(-0.37612318992614746f));
    p = _mm512_fmadd_ps(p, u2, _mm512_set1_ps(1.1283791065216064f));
    __m512 a = _mm512_min_ps(_mm512_abs_ps(u), _mm512_set1_ps(4.0f));
    __m512 v = _mm512_mul_ps(_mm512_sub_ps(a, _mm512_set1_ps(2.5f)), _mm512_set1_ps(1.0f / 1.5f));
    __m512 q = _mm512_set1_ps(-3.317872324259952e-05f);
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(9.565718210069463e-05f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(-0.00015413262008223683f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(0.00036971690133213997f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(-0.0010070913704112172f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(0.002424290170893073f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(-0.0055716331116855145f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(0.0124845951795578f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(-0.02700497768819332f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(0.056110888719558716f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(-0.11152104288339615f));
    q = _mm512_fmadd_ps(q, v, _mm512_set1_ps(0.21080635488033295f));
    *gaussian = exp16(_mm512_sub_ps(_mm512_setzero_ps(), u2));
    *small = _mm512_mul_ps(u, p);
    *tail = _mm512_mul_ps(*gaussian, q);
}

/// 1 + erf(u) (and e^(−u²) in *gaussian).
INLINE __m512 one_plus_erf16(__m512 u, __m512 *gaussian) {
    __m512 small, tail;
    erf_parts16(u, &small, &tail, gaussian);
    __mmask16 negative = _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_LT_OQ);
    __mmask16 outside = _mm512_cmp_ps_mask(u, _mm512_set1_ps(1.0f), _CMP_GT_OQ)
                      | _mm512_cmp_ps_mask(u, _mm512_set1_ps(-1.0f), _CMP_LT_OQ);
    __m512 large = _mm512_mask_blend_ps(negative, _mm512_sub_ps(_mm512_set1_ps(2.0f), tail), tail);
    return _mm512_mask_blend_ps(outside, _mm512_add_ps(_mm512_set1_ps(1.0f), small), large);
}

INLINE __m512 gelu_erf16(__m512 x) {
    __m512 gaussian;
    __m512 value = one_plus_erf16(_mm512_mul_ps(x, _mm512_set1_ps(0.7071067811865476f)), &gaussian);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), value);
}

INLINE __m512 gelu_erf_derivative16(__m512 x) {
    __m512 gaussian;
    __m512 value = one_plus_erf16(_mm512_mul_ps(x, _mm512_set1_ps(0.7071067811865476f)), &gaussian);
    return _mm512_fmadd_ps(x, _mm512_mul_ps(gaussian, _mm512_set1_ps(0.3989422804014327f)),
                           _mm512_mul_ps(_mm512_set1_ps(0.5f), value));
}

AVX512 void loom_avx512_gelu_erf_forward(float *out, const float *inp, long n) {
#define GELU_ERF(i, k, masked) store(out + i, gelu_erf16(load(inp + i, k, masked)), k, masked)
    FOR_VECTORS(n, GELU_ERF);
}

AVX512 void loom_avx512_gelu_erf_backward(float *dinp, const float *inp, const float *dout, long n) {
#define GELU_ERF_BACKWARD(i, k, masked) \
    store(dinp + i, _mm512_mul_ps(gelu_erf_derivative16(load(inp + i, k, masked)), load(dout + i, k, masked)), k, masked)
    FOR_VECTORS(n, GELU_ERF_BACKWARD);
}

// MARK: LayerNorm

AVX512 void loom_avx512_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                          const float *weight, const float *bias,
                                          long row0, long row1, long C, float epsilon) {
    for (long row = row0; row < row1; row++) {
        const float *x = inp + row * C;
        float *o = out + row * C;
        __m512 acc = _mm512_setzero_ps();
#define SUM(c, k, masked) acc = _mm512_add_ps(acc, load(x + c, k, masked))
        FOR_VECTORS(C, SUM);
        float m = _mm512_reduce_add_ps(acc) / (float)C;
        __m512 m16 = _mm512_set1_ps(m), var = _mm512_setzero_ps();
#define VARIANCE(c, k, masked) do { \
            __m512 d = _mm512_sub_ps(load(x + c, k, masked), m16); \
            if (masked) d = _mm512_maskz_mov_ps(k, d); \
            var = _mm512_fmadd_ps(d, d, var); \
        } while (0)
        FOR_VECTORS(C, VARIANCE);
        float s = 1.0f / sqrtf(_mm512_reduce_add_ps(var) / (float)C + epsilon);
        __m512 s16 = _mm512_set1_ps(s);
#define NORMALIZE(c, k, masked) do { \
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + c, k, masked), m16), s16); \
            store(o + c, _mm512_fmadd_ps(norm, load(weight + c, k, masked), load(bias + c, k, masked)), k, masked); \
        } while (0)
        FOR_VECTORS(C, NORMALIZE);
        mean[row] = m;
        rstd[row] = s;
    }
}

AVX512 void loom_avx512_layernorm_backward_rows(float *dinp, const float *dout, const float *inp,
                                                const float *weight, const float *mean, const float *rstd,
                                                long row0, long row1, long C) {
    for (long row = row0; row < row1; row++) {
        const float *x = inp + row * C, *d = dout + row * C;
        float *di = dinp + row * C;
        __m512 m = _mm512_set1_ps(mean[row]), s = _mm512_set1_ps(rstd[row]);
        __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
        // Lanes past C load zero weight and dout, so their dnorm (and its products) are zero.
#define MEANS(c, k, masked) do { \
            __m512 dnorm = _mm512_mul_ps(load(weight + c, k, masked), load(d + c, k, masked)); \
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + c, k, masked), m), s); \
            a = _mm512_add_ps(a, dnorm); \
            b = _mm512_fmadd_ps(dnorm, norm, b); \
        } while (0)
        FOR_VECTORS(C, MEANS);
        __m512 dnormMean = _mm512_set1_ps(_mm512_reduce_add_ps(a) / (float)C);
        __m512 dnormNormMean = _mm512_set1_ps(_mm512_reduce_add_ps(b) / (float)C);
        // dinp += (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd
#define INPUT_GRADIENT(c, k, masked) do { \
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + c, k, masked), m), s); \
            __m512 dnorm = _mm512_mul_ps(load(weight + c, k, masked), load(d + c, k, masked)); \
            __m512 g = _mm512_mul_ps(_mm512_fnmadd_ps(norm, dnormNormMean, _mm512_sub_ps(dnorm, dnormMean)), s); \
            store(di + c, _mm512_add_ps(load(di + c, k, masked), g), k, masked); \
        } while (0)
        FOR_VECTORS(C, INPUT_GRADIENT);
    }
}

AVX512 void loom_avx512_layernorm_backward_columns(float *dweight, float *dbias, const float *dout,
                                                   const float *inp, const float *mean, const float *rstd,
                                                   long N, long C, long c0, long c1) {
    // Rows outer, as the rows lie in memory; the channels' sums stay in dweight and dbias (L1).
    for (long row = 0; row < N; row++) {
        const float *x = inp + row * C + c0, *d = dout + row * C + c0;
        float *w = dweight + c0, *b = dbias + c0;
        __m512 m = _mm512_set1_ps(mean[row]), s = _mm512_set1_ps(rstd[row]);
#define COLUMNS(i, k, masked) do { \
            __m512 dv = load(d + i, k, masked); \
            __m512 norm = _mm512_mul_ps(_mm512_sub_ps(load(x + i, k, masked), m), s); \
            store(b + i, _mm512_add_ps(load(b + i, k, masked), dv), k, masked); \
            store(w + i, _mm512_fmadd_ps(norm, dv, load(w + i, k, masked)), k, masked); \
        } while (0)
        FOR_VECTORS(c1 - c0, COLUMNS);
    }
}

// MARK: AdamW (Training/AdamW.swift's lanes, operation for operation)

AVX512 void loom_avx512_adamw(float *p, const float *g, float *m, float *v, long n,
                              float scale, float beta1, float beta2, float epsilon, float lr, float decay,
                              float correction1, float correction2) {
    const __m512 sc = _mm512_set1_ps(scale), b1 = _mm512_set1_ps(beta1), b2 = _mm512_set1_ps(beta2);
    const __m512 ob1 = _mm512_set1_ps(1 - beta1), ob2 = _mm512_set1_ps(1 - beta2);
    const __m512 eps = _mm512_set1_ps(epsilon), rate = _mm512_set1_ps(lr), dec = _mm512_set1_ps(decay);
    const __m512 c1 = _mm512_set1_ps(correction1), c2 = _mm512_set1_ps(correction2);
#define ADAMW(i, k, masked) do { \
        __m512 grad = _mm512_mul_ps(load(g + i, k, masked), sc); \
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, load(m + i, k, masked)), _mm512_mul_ps(ob1, grad)); \
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, load(v + i, k, masked)), _mm512_mul_ps(_mm512_mul_ps(ob2, grad), grad)); \
        __m512 mhat = _mm512_div_ps(mi, c1), vhat = _mm512_div_ps(vi, c2); \
        __m512 step = _mm512_div_ps(_mm512_mul_ps(rate, mhat), _mm512_add_ps(_mm512_sqrt_ps(vhat), eps)); \
        store(p + i, _mm512_sub_ps(_mm512_mul_ps(load(p + i, k, masked), dec), step), k, masked); \
        store(m + i, mi, k, masked); \
        store(v + i, vi, k, masked); \
    } while (0)
    FOR_VECTORS(n, ADAMW);
}

#else
#include <stdlib.h>
bool loom_avx512_compiled(void) { return false; }
void loom_avx512_transpose(const float *src, long rows, long columns, long ld, float *dst) { abort(); }
void loom_avx512_small_gemm(long m, long n, long k, float alpha, const float *a, long rs, long cs,
                            const float *b, long ldb, bool accumulate, float *c, long ldc) { abort(); }
void loom_avx512_softmax_row(float *p, long n) { abort(); }
float loom_avx512_exponentiate(float *p, long n, float subtract, float scale) { abort(); }
float loom_avx512_maximum(const float *p, long n) { abort(); }
void loom_avx512_softmax_backward_row(const float *p, float *d, long limit, long count, float alpha) { abort(); }
void loom_avx512_gelu_forward(float *out, const float *inp, long n) { abort(); }
void loom_avx512_gelu_backward(float *dinp, const float *inp, const float *dout, long n) { abort(); }
void loom_avx512_gelu_erf_forward(float *out, const float *inp, long n) { abort(); }
void loom_avx512_gelu_erf_backward(float *dinp, const float *inp, const float *dout, long n) { abort(); }
void loom_avx512_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                   const float *bias, long row0, long row1, long C, float epsilon) { abort(); }
void loom_avx512_layernorm_backward_rows(float *dinp, const float *dout, const float *inp, const float *weight,
                                         const float *mean, const float *rstd, long row0, long row1, long C) { abort(); }
void loom_avx512_layernorm_backward_columns(float *dweight, float *dbias, const float *dout, const float *inp,
                                            const float *mean, const float *rstd, long N, long C, long c0, long c1) { abort(); }
void loom_avx512_adamw(float *p, const float *g, float *m, float *v, long n, float scale, float beta1, float beta2,
                       float epsilon, float lr, float decay, float correction1, float correction2) { abort(); }
#endif
