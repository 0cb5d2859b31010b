// GemmBF16Reference: TEMPORARY stand-in for the oneDNN bf16 products (branch onednn), widening
// both operands to fp32 and calling sgemm. Removed at the merge.
extension Gemm {
    static func widened(_ p: UnsafePointer<UInt16>, rows: Int, ld: Int) -> UnsafeMutablePointer<Float> {
        let n = rows * ld
        let out = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        for i in 0..<n { out[i] = BFloat16.widen(p[i]) }
        return out
    }
    public static func serialBF16(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        let wa = widened(a, rows: transA ? k : m, ld: lda), wb = widened(b, rows: transB ? n : k, ld: ldb)
        serial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: wa, lda: lda, b: wb, ldb: ldb,
               beta: beta, c: c, ldc: ldc)
        wa.deallocate(); wb.deallocate()
    }
    public static func parallelBF16(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        let wa = widened(a, rows: transA ? k : m, ld: lda), wb = widened(b, rows: transB ? n : k, ld: ldb)
        parallel(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: wa, lda: lda, b: wb, ldb: ldb,
                 beta: beta, c: c, ldc: ldc)
        wa.deallocate(); wb.deallocate()
    }
}
