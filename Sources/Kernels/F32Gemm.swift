// F32Gemm: Loom's own fp32 matrix product (CVectorKernels' AVX-512 kernel, F32Gemm.c) as Kernels
// calls it: whether it runs on this CPU, and one product on the calling thread.
import CVectorKernels

/// Loom's fp32 GEMM engine (`GemmEngine.loom` for fp32 shapes): C = alpha · op(A) · op(B) + beta
/// · C with one FMA per product, packing op(B) (and op(A) where needed) into thread-local static
/// buffers, so a call allocates nothing and uses the calling thread alone.
public enum F32Gemm {
    /// Whether the kernel runs here: Loom's own kernels run at AVX-512 (`KernelISA.selection`: an
    /// x86-64 build on a CPU whose AVX-512 F/BW/VL/DQ the OS lets programs use, and
    /// LOOM_KERNELS_ISA does not ask for AVX2).
    public static let available: Bool = KernelISA.selection.isa == .avx512

    /// How plans and `loom bench` name the implementation.
    public static let implementation = "avx512"

    /// The product of `shape` (only where `available`). With `bias`, C is overwritten by the
    /// product plus the bias on every row (the shape's β, 1 in that form, is not read), the bias
    /// added as C is stored.
    @inline(__always)
    static func run(_ s: GemmShape, a: UnsafePointer<Float>, b: UnsafePointer<Float>, bias: UnsafePointer<Float>? = nil,
                    c: UnsafeMutablePointer<Float>, band: GemmBand = .none) {
        loom_avx512_f32_gemm_band(s.transA, s.transB, s.m, s.n, s.k, s.alpha, a, s.lda, b, s.ldb,
                                  bias == nil ? s.beta : 0, bias, c, s.ldc, band.kind.rawValue, band.offset)
    }

    /// C(m×n) = alpha · op(A) · op(B) + beta · C (+ bias on every row, when given) on Loom's
    /// kernel whatever the plan (tests and benchmarks compare it with the other engines), skipping
    /// what `band` allows. Only where `available`.
    public static func product(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int,
        band: GemmBand = .none
    ) {
        precondition(available, "F32Gemm.product: this CPU or build has no AVX-512 (\(CPUFeatures.current().vectorLevel))")
        loom_avx512_f32_gemm_band(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, bias, c, ldc, band.kind.rawValue,
                                  band.offset)
    }
}
