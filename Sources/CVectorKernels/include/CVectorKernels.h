// CVectorKernels: Loom's own hot loops in 16-lane AVX-512, compiled into every x86-64 binary and
// run only where the CPU has AVX-512 (Kernels/KernelISA.swift chooses once, from cpuid). Callers
// pick the ISA; every function here assumes AVX-512 F/BW/VL/DQ is usable.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Whether this build carries the AVX-512 kernels below (x86-64 only; elsewhere they are absent
/// and `loom_avx512_compiled` is false).
bool loom_avx512_compiled(void);

/// C(m×n) = α·A·B (+ C): A(i, p) = a[i·rs + p·cs], B (k×n) row-major with row stride ldb,
/// C row-major with row stride ldc. An 8×32 register tile (16 of the 32 zmm registers as
/// accumulators), masked loads and stores for the ragged right edge, one fused multiply-add per
/// 16 lanes, p in order: each C value is the same left-to-right sum whatever the tile.
void loom_avx512_small_gemm(long m, long n, long k, float alpha,
                            const float *a, long rs, long cs,
                            const float *b, long ldb,
                            bool accumulate, float *c, long ldc);

/// dst (columns×rows, row-major) = srcᵀ for src (rows×columns, row stride ld): blocks of 16×16
/// loaded (masked at the edges), transposed in registers and stored as 16 rows of dst.
void loom_avx512_transpose(const float *src, long rows, long columns, long ld, float *dst);

/// In-place softmax of p[0..<n] (n > 0): max-subtracted, the same exp polynomial as
/// `FastMath.exp`, scaled by 1/Σ.
void loom_avx512_softmax_row(float *p, long n);

/// p[i] = exp((p[i] − subtract)·scale) for i < n; returns Σ p[i].
float loom_avx512_exponentiate(float *p, long n, float subtract, float scale);

/// max of p[0..<n] (n > 0).
float loom_avx512_maximum(const float *p, long n);

/// Softmax backward of one attention row: d[j] = p[j]·(d[j] − Σ p·d)·α for j < limit, and
/// d[j] = 0 for limit ≤ j < count.
void loom_avx512_softmax_backward_row(const float *p, float *d, long limit, long count, float alpha);

/// GELU (tanh form) over n values: out = gelu(inp); and dinp = gelu′(inp)·dout.
void loom_avx512_gelu_forward(float *out, const float *inp, long n);
void loom_avx512_gelu_backward(float *dinp, const float *inp, const float *dout, long n);
/// GELU (erf form, x·Φ(x)) over n values: out = gelu(inp); and dinp = gelu′(inp)·dout.
void loom_avx512_gelu_erf_forward(float *out, const float *inp, long n);
void loom_avx512_gelu_erf_backward(float *dinp, const float *inp, const float *dout, long n);

/// LayerNorm forward of rows [row0, row1) of (N, C): out, mean (N), rstd (N).
void loom_avx512_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                   const float *weight, const float *bias,
                                   long row0, long row1, long C, float epsilon);
/// LayerNorm backward, input gradient of rows [row0, row1): dinp += ….
void loom_avx512_layernorm_backward_rows(float *dinp, const float *dout, const float *inp,
                                         const float *weight, const float *mean, const float *rstd,
                                         long row0, long row1, long C);
/// LayerNorm backward, parameter gradients of channels [c0, c1) summed over all N rows in row
/// order: dweight += Σ norm·dout, dbias += Σ dout.
void loom_avx512_layernorm_backward_columns(float *dweight, float *dbias, const float *dout,
                                            const float *inp, const float *mean, const float *rstd,
                                            long N, long C, long c0, long c1);

/// AdamW over n parameters, the same operations in the same order as Training/AdamW.swift's
/// lanes (so the same bits): g = unscaled·scale; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g·g;
/// p = p·decay − lr·(m/c1) / (√(v/c2) + ε).
void loom_avx512_adamw(float *p, const float *g, float *m, float *v, long n,
                       float scale, float beta1, float beta2, float epsilon, float lr, float decay,
                       float correction1, float correction2);

/// C(m×n, fp32) = α·op(A)·op(B) + β·C with A and B as bf16 bits (the high half of an fp32),
/// row-major with leading dimensions: op(A)(i, p) = a[i·lda + p], or a[p·lda + i] when transA;
/// op(B)(p, j) = b[p·ldb + j], or b[j·ldb + p] when transB. Products of bf16 pairs are summed in
/// fp32 by AVX512_BF16's vdpbf16ps (which treats bf16 and fp32 denormals as zero). Any m, n,
/// k ≥ 0: k = 0 gives C = β·C; β = 0 overwrites C without reading it. Packs op(B) (and op(A)
/// where its rows are not contiguous in k, or for the last rows) into thread-local static
/// buffers: allocates nothing, runs on the calling thread, and needs AVX512_BF16 besides
/// AVX-512 F/BW/VL/DQ (`CPUFeatures.has(.avx512_bf16)`); the caller checks. Compiled
/// (x86-64 only) with its own target attribute (BF16Gemm.c).
void loom_avx512_bf16_gemm(bool transA, bool transB, long m, long n, long k, float alpha,
                           const uint16_t *a, long lda, const uint16_t *b, long ldb,
                           float beta, float *c, long ldc);

/// Which part of a product `loom_avx512_bf16_gemm_band` and `loom_avx512_f32_gemm_band` may skip
/// (causal attention's triangle): a promise by the caller, so a kernel that computes everything
/// is still right.
enum {
    /// Nothing: the whole product.
    LOOM_BAND_NONE = 0,
    /// Row i of C is needed only in columns j ≤ i + offset; the kernel may leave C's other
    /// entries as they were (whole tiles of them).
    LOOM_BAND_COLUMNS_TO = 1,
    /// op(A)(i, q) = 0 for q > i + offset: the sum may stop there.
    LOOM_BAND_REDUCTION_TO = 2,
    /// op(A)(i, q) = 0 for q < i − offset: the sum may start there.
    LOOM_BAND_REDUCTION_FROM = 3,
};

/// `loom_avx512_bf16_gemm` that also adds bias[j] to every row's column j of C (bias NULL: none;
/// with β = 0, C = α·op(A)·op(B) + bias in one pass over C) and skips what `band` (a LOOM_BAND_…,
/// with its offset) says is not needed or zero.
void loom_avx512_bf16_gemm_band(bool transA, bool transB, long m, long n, long k, float alpha,
                                const uint16_t *a, long lda, const uint16_t *b, long ldb,
                                float beta, const float *bias, float *c, long ldc, int band, long offset);

/// out[i] = in[i] rounded to bf16 (nearest, ties to even; NaN stays a quiet NaN) for i < count,
/// by AVX512_BF16's vcvtne2ps2bf16, which treats denormal inputs as zero (as the products do).
/// Needs what `loom_avx512_bf16_gemm` needs; the caller checks (BF16Gemm.c).
void loom_avx512_bf16_round(const float *in, uint16_t *out, long count);

/// C(m×n) = α·op(A)·op(B) + β·C in fp32, row-major with leading dimensions as
/// `loom_avx512_bf16_gemm`'s (one FMA per product, summed in k order within blocks of 256). Any
/// m, n, k ≥ 0: k = 0 gives C = β·C; β = 0 overwrites C without reading it. Packs op(B) (and
/// op(A) where its rows are not contiguous in k, or for the last rows) into thread-local static
/// buffers: allocates nothing, runs on the calling thread, and needs AVX-512 F/BW/VL/DQ; the
/// caller checks. Compiled (x86-64 only) with its own target attribute (F32Gemm.c).
void loom_avx512_f32_gemm(bool transA, bool transB, long m, long n, long k, float alpha,
                          const float *a, long lda, const float *b, long ldb,
                          float beta, float *c, long ldc);

/// `loom_avx512_f32_gemm` that also adds bias[j] to every row's column j of C (bias NULL: none;
/// with β = 0, C = α·op(A)·op(B) + bias in one pass over C) and skips what `band` (a LOOM_BAND_…,
/// with its offset) says is not needed or zero.
void loom_avx512_f32_gemm_band(bool transA, bool transB, long m, long n, long k, float alpha,
                               const float *a, long lda, const float *b, long ldb,
                               float beta, const float *bias, float *c, long ldc, int band, long offset);

/// `iterations` rounds of 12 independent multiply-adds on zeros, for VectorPeak to time: 8-lane
/// fp32 FMA (AVX2 + FMA; 192 FLOPs a round), 16-lane fp32 FMA (AVX-512 F; 384) and 16-lane bf16
/// pair dot products (AVX512_BF16 vdpbf16ps; 768). Call each only where the CPU has its
/// instructions (x86-64; elsewhere they do nothing).
void loom_peak_fma256(long iterations);
void loom_peak_fma512(long iterations);
void loom_peak_dot_bf16(long iterations);
