// CDNNL shim: oneDNN 2.x's C API (the v2 calls: dnnl_matmul_desc_init, dnnl_primitive_desc_create,
// dnnl_memory_desc_init_by_strides, …), the two OpenMP calls that set how many threads oneDNN uses
// on the calling thread, and two static inline helpers: build a strided row-major matmul
// primitive, and run one with caller-owned memory objects. Only Kernels calls
// these (OneDNN.swift). Debian's libdnnl-dev ships no pkg-config file, so the module links
// "dnnl" (and "gomp", its OpenMP runtime) by name.
#pragma once
#include <stdint.h>
#include <oneapi/dnnl/dnnl.h>

/// OpenMP (libgomp, which oneDNN runs on): the calling thread's team size for its next parallel
/// region. oneDNN sizes a primitive's work split with it when the primitive is created, and runs a
/// region on the caller alone (no OpenMP team) when it is 1.
int omp_get_max_threads(void);
void omp_set_num_threads(int count);

/// One matmul primitive and what a caller needs to bind memory to it.
typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_desc_t a, b, c, scratchpad;
    size_t scratchpad_bytes;
    const char *implementation;   ///< e.g. "brg:avx512_core" (owned by the library, lives with the primitive)
} loom_dnnl_matmul;

/// C(m×n) = alpha · op(A)(m×k) · op(B)(k×n) + beta · C, row-major with leading dimensions, as a
/// oneDNN matmul: transposes are strides (op(A) element (i, p) at A[p·lda + i] when trans_a),
/// alpha an output scale, beta a sum post-op, A and B fp32 or bf16 (`bf16_inputs`), C fp32.
/// The scratchpad is the caller's (dnnl_scratchpad_mode_user): it is sized in scratchpad_bytes.
static inline dnnl_status_t loom_dnnl_matmul_create(
    loom_dnnl_matmul *out, dnnl_engine_t engine, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
    int64_t lda, int64_t ldb, int64_t ldc, float alpha, float beta, int bf16_inputs) {
    dnnl_data_type_t input = bf16_inputs ? dnnl_bf16 : dnnl_f32;
    dnnl_dims_t a_dims = {m, k}, a_strides = {trans_a ? 1 : lda, trans_a ? lda : 1};
    dnnl_dims_t b_dims = {k, n}, b_strides = {trans_b ? 1 : ldb, trans_b ? ldb : 1};
    dnnl_dims_t c_dims = {m, n}, c_strides = {ldc, 1};
    dnnl_status_t s;
    if ((s = dnnl_memory_desc_init_by_strides(&out->a, 2, a_dims, input, a_strides))) return s;
    if ((s = dnnl_memory_desc_init_by_strides(&out->b, 2, b_dims, input, b_strides))) return s;
    if ((s = dnnl_memory_desc_init_by_strides(&out->c, 2, c_dims, dnnl_f32, c_strides))) return s;
    dnnl_matmul_desc_t desc;
    if ((s = dnnl_matmul_desc_init(&desc, &out->a, &out->b, NULL, &out->c))) return s;
    dnnl_primitive_attr_t attr;
    if ((s = dnnl_primitive_attr_create(&attr))) return s;
    dnnl_post_ops_t post = NULL;
    if (!(s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user))
        && (alpha == 1.0f || !(s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha)))
        && (beta == 0.0f || (!(s = dnnl_post_ops_create(&post)) && !(s = dnnl_post_ops_append_sum(post, beta))
                             && !(s = dnnl_primitive_attr_set_post_ops(attr, post))))) {
        dnnl_primitive_desc_t pd;
        if (!(s = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL))) {
            s = dnnl_primitive_create(&out->primitive, pd);
            dnnl_primitive_desc_destroy(pd);
        }
        // The primitive holds its own descriptor: the implementation name lives as long as it.
        const_dnnl_primitive_desc_t own;
        if (!s && !(s = dnnl_primitive_get_primitive_desc(out->primitive, &own))) {
            out->implementation = "";
            dnnl_primitive_desc_query(own, dnnl_query_impl_info_str, 0, &out->implementation);
            const dnnl_memory_desc_t *scratch = dnnl_primitive_desc_query_md(own, dnnl_query_scratchpad_md, 0);
            out->scratchpad = *scratch;
            out->scratchpad_bytes = dnnl_memory_desc_get_size(scratch);
        }
    }
    if (post) dnnl_post_ops_destroy(post);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

/// Points the memory objects at a, b, c and scratchpad and runs the primitive on `stream` (on the
/// CPU engine the call returns when the product is done).
static inline dnnl_status_t loom_dnnl_matmul_execute(
    dnnl_primitive_t primitive, dnnl_stream_t stream, dnnl_memory_t ma, dnnl_memory_t mb, dnnl_memory_t mc,
    dnnl_memory_t ms, const void *a, const void *b, void *c, void *scratchpad) {
    dnnl_memory_set_data_handle(ma, (void *)a);
    dnnl_memory_set_data_handle(mb, (void *)b);
    dnnl_memory_set_data_handle(mc, c);
    dnnl_memory_set_data_handle(ms, scratchpad);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, ms}};
    return dnnl_primitive_execute(primitive, stream, 4, args);
}
