// BF16Gemm: Loom's own bf16 matrix product (CVectorKernels' AVX512_BF16 kernel, BF16Gemm.c) as
// Kernels calls it: whether it runs on this CPU, and one product on the calling thread. GemmPlan
// chooses between it and oneDNN per shape; Gemm.serialBF16 routes to it.
import CVectorKernels

/// Loom's bf16 GEMM engine (`GemmEngine.loom`): C(fp32) = alpha · op(A) · op(B) + beta · C with A
/// and B as bf16 bits, summed in fp32 by vdpbf16ps, packing op(B) (and op(A) where needed) into
/// thread-local static buffers, so a call allocates nothing and uses the calling thread alone.
public enum BF16Gemm {
    /// Whether the kernel runs here: an x86-64 build (CVectorKernels' AVX-512 functions) on a CPU
    /// whose AVX-512 F/BW/VL/DQ and AVX512_BF16 the OS lets programs use.
    public static let available: Bool = loom_avx512_compiled()
        && CPUFeatures.current().has(.avx512f, .avx512bw, .avx512vl, .avx512dq, .avx512_bf16)

    /// How plans and `loom bench` name the implementation.
    public static let implementation = "avx512_bf16"

    /// The product of `shape` (only where `available`; `shape.bf16` is not read). With `bias`, C is
    /// overwritten by the product plus the bias on every row (the shape's β, 1 in that form, is
    /// not read), the bias added as C is stored. `band`: what the kernel may skip.
    @inline(__always)
    static func run(_ s: GemmShape, a: UnsafePointer<UInt16>, b: UnsafePointer<UInt16>, bias: UnsafePointer<Float>? = nil,
                    c: UnsafeMutablePointer<Float>, band: GemmBand = .none) {
        loom_avx512_bf16_gemm_band(s.transA, s.transB, s.m, s.n, s.k, s.alpha, a, s.lda, b, s.ldb,
                                   bias == nil ? s.beta : 0, bias, c, s.ldc, band.kind.rawValue, band.offset)
    }

    /// C(m×n) = alpha · op(A) · op(B) + beta · C on Loom's kernel whatever the plan (tests and
    /// benchmarks compare it with oneDNN), skipping what `band` allows. Only where `available`.
    public static func product(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, band: GemmBand = .none
    ) {
        precondition(available, "BF16Gemm.product: this CPU or build has no AVX512_BF16 (\(CPUFeatures.current().vectorLevel))")
        loom_avx512_bf16_gemm_band(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, nil, c, ldc, band.kind.rawValue,
                                   band.offset)
    }
}
