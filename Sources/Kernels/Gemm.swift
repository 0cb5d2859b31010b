// Gemm: row-major single-precision matrix multiply on OpenBLAS, serial and split over the pool.
// It is not a BLAS binding: only the sgemm shapes the layers use are offered.
import CBLAS

/// C(M×N) = alpha · op(A)(M×K) · op(B)(K×N) + beta · C, all row-major with leading dimensions.
public enum Gemm {
    /// One OpenBLAS call on the calling thread.
    @inline(__always)
    public static func serial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The same product split across `ThreadPool.shared`: along M when M ≥ N, else along N.
    /// Each thread computes a disjoint block of C, so the result does not depend on timing.
    public static func parallel(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let pool = ThreadPool.shared
        if pool.threads == 1 || m * n * k < 32 * 32 * 32 {
            serial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        let job = Block(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                        b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, splitRows: m >= n)
        pool.parallelFor(m >= n ? m : n, grain: 16, job)
    }

    /// One thread's block of C: a range of rows (A's rows) or of columns (B's columns).
    struct Block: ParallelLoop {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
        let a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
        let beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, splitRows: Bool
        func run(_ part: Range<Int>) {
            if splitRows {
                let aOffset = transA ? part.lowerBound : part.lowerBound * lda
                serial(transA: transA, transB: transB, m: part.count, n: n, k: k, alpha: alpha,
                       a: a + aOffset, lda: lda, b: b, ldb: ldb, beta: beta, c: c + part.lowerBound * ldc, ldc: ldc)
            } else {
                let bOffset = transB ? part.lowerBound * ldb : part.lowerBound
                serial(transA: transA, transB: transB, m: m, n: part.count, k: k, alpha: alpha,
                       a: a, lda: lda, b: b + bOffset, ldb: ldb, beta: beta, c: c + part.lowerBound, ldc: ldc)
            }
        }
    }
}
