// SmallGemm: register-blocked matrix products for attention's per-head blocks (tens of rows, head
// size 32–64), where an OpenBLAS call costs more in set-up than in arithmetic. It does no
// packing and no cache blocking, so it is for operands that already sit in L1/L2.
import CVectorKernels

/// C(m×n) = α·A·B (+ C), with B row-major and A read through two strides, so that Aᵀ costs
/// nothing: A(i, p) = a[i·rowStride + p·columnStride].
///
/// Why: a small model's attention makes thousands of products per step of a few thousand
/// multiply-adds each, and an OpenBLAS call's fixed cost is larger than that arithmetic. The 8-lane kernel keeps a 6×16 tile of C in
/// registers (twelve 8-lane accumulators; 4×16 and single rows for the rest) and streams one row
/// of B and six values of A per step of p, with fused multiply-adds where the build has them
/// (`FastMath.multiplyAdd`). On an AVX-512 CPU (`KernelISA`) the C kernel keeps an 8×32 tile
/// instead (sixteen of the 32 zmm registers), 16 lanes per multiply-add, with masked loads and
/// stores for the ragged edge; both sum over p in order.
public enum SmallGemm {
    /// The kernel this process runs, for `loom system` and run headers: chosen at run time
    /// (`KernelISA.selected`: cpuid, or LOOM_KERNELS_ISA).
    public static var kernel: String { kernel(KernelISA.selected) }

    /// The kernel `isa` runs.
    public static func kernel(_ isa: KernelISA) -> String {
        switch isa {
        case .avx512: return "8x32 register tile, AVX-512 (16 lanes, masked edges)"
        case .avx2:
            #if LOOM_FMA
            return "6x16 register tile, Swift SIMD8 with fused multiply-adds (AVX2 + FMA)"
            #else
            return "6x16 register tile, Swift SIMD8, separate multiplies and adds (portable build)"
            #endif
        }
    }

    public static func multiply(
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, rowStride: Int, columnStride: Int,   // A (m×k) through strides
        b: UnsafePointer<Float>, ldb: Int,                            // B (k×n) row-major
        accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int,   // C (m×n) row-major
        isa: KernelISA = KernelISA.selected
    ) {
        if isa == .avx512 {
            loom_avx512_small_gemm(m, n, k, alpha, a, rowStride, columnStride, b, ldb, accumulate, c, ldc)
            return
        }
        let ar = rowStride, ac = columnStride
        var i = 0
        while i + 6 <= m {
            let a0 = a + i * ar, a1 = a0 + ar, a2 = a1 + ar, a3 = a2 + ar, a4 = a3 + ar, a5 = a4 + ar
            let c0 = c + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc, c4 = c3 + ldc, c5 = c4 + ldc
            var j = 0
            while j + 16 <= n {
                var s00 = Float8(), s01 = Float8(), s10 = Float8(), s11 = Float8()
                var s20 = Float8(), s21 = Float8(), s30 = Float8(), s31 = Float8()
                var s40 = Float8(), s41 = Float8(), s50 = Float8(), s51 = Float8()
                var row = b + j
                for p in 0..<k {
                    let b0 = row.load8(0), b1 = row.load8(8)
                    var x = Float8(repeating: a0[p * ac])
                    s00 = FastMath.multiplyAdd(x, b0, s00); s01 = FastMath.multiplyAdd(x, b1, s01)
                    x = Float8(repeating: a1[p * ac])
                    s10 = FastMath.multiplyAdd(x, b0, s10); s11 = FastMath.multiplyAdd(x, b1, s11)
                    x = Float8(repeating: a2[p * ac])
                    s20 = FastMath.multiplyAdd(x, b0, s20); s21 = FastMath.multiplyAdd(x, b1, s21)
                    x = Float8(repeating: a3[p * ac])
                    s30 = FastMath.multiplyAdd(x, b0, s30); s31 = FastMath.multiplyAdd(x, b1, s31)
                    x = Float8(repeating: a4[p * ac])
                    s40 = FastMath.multiplyAdd(x, b0, s40); s41 = FastMath.multiplyAdd(x, b1, s41)
                    x = Float8(repeating: a5[p * ac])
                    s50 = FastMath.multiplyAdd(x, b0, s50); s51 = FastMath.multiplyAdd(x, b1, s51)
                    row += ldb
                }
                store16(c0 + j, s00, s01, alpha, accumulate); store16(c1 + j, s10, s11, alpha, accumulate)
                store16(c2 + j, s20, s21, alpha, accumulate); store16(c3 + j, s30, s31, alpha, accumulate)
                store16(c4 + j, s40, s41, alpha, accumulate); store16(c5 + j, s50, s51, alpha, accumulate)
                j += 16
            }
            if j < n {   // the columns right of the last 16-wide tile, row by row
                for r in 0..<6 {
                    singleRow(a + (i + r) * ar, ac, b, ldb, k, j..<n, alpha, accumulate, c + (i + r) * ldc)
                }
            }
            i += 6
        }
        while i + 4 <= m {
            let a0 = a + i * ar, a1 = a0 + ar, a2 = a1 + ar, a3 = a2 + ar
            let c0 = c + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
            var j = 0
            while j + 16 <= n {
                var s00 = Float8(), s01 = Float8(), s10 = Float8(), s11 = Float8()
                var s20 = Float8(), s21 = Float8(), s30 = Float8(), s31 = Float8()
                var row = b + j
                for p in 0..<k {
                    let b0 = row.load8(0), b1 = row.load8(8)
                    let x0 = Float8(repeating: a0[p * ac]), x1 = Float8(repeating: a1[p * ac])
                    let x2 = Float8(repeating: a2[p * ac]), x3 = Float8(repeating: a3[p * ac])
                    s00 = FastMath.multiplyAdd(x0, b0, s00); s01 = FastMath.multiplyAdd(x0, b1, s01)
                    s10 = FastMath.multiplyAdd(x1, b0, s10); s11 = FastMath.multiplyAdd(x1, b1, s11)
                    s20 = FastMath.multiplyAdd(x2, b0, s20); s21 = FastMath.multiplyAdd(x2, b1, s21)
                    s30 = FastMath.multiplyAdd(x3, b0, s30); s31 = FastMath.multiplyAdd(x3, b1, s31)
                    row += ldb
                }
                store16(c0 + j, s00, s01, alpha, accumulate); store16(c1 + j, s10, s11, alpha, accumulate)
                store16(c2 + j, s20, s21, alpha, accumulate); store16(c3 + j, s30, s31, alpha, accumulate)
                j += 16
            }
            if j + 8 <= n {
                var s0 = Float8(), s1 = Float8(), s2 = Float8(), s3 = Float8()
                var row = b + j
                for p in 0..<k {
                    let b0 = row.load8(0)
                    s0 = FastMath.multiplyAdd(Float8(repeating: a0[p * ac]), b0, s0)
                    s1 = FastMath.multiplyAdd(Float8(repeating: a1[p * ac]), b0, s1)
                    s2 = FastMath.multiplyAdd(Float8(repeating: a2[p * ac]), b0, s2)
                    s3 = FastMath.multiplyAdd(Float8(repeating: a3[p * ac]), b0, s3)
                    row += ldb
                }
                store(c0 + j, s0, alpha, accumulate); store(c1 + j, s1, alpha, accumulate)
                store(c2 + j, s2, alpha, accumulate); store(c3 + j, s3, alpha, accumulate)
                j += 8
            }
            if j < n {
                for r in 0..<4 { scalarRow(a + (i + r) * ar, ac, b, ldb, k, j..<n, alpha, accumulate, c + (i + r) * ldc) }
            }
            i += 4
        }
        while i < m {
            singleRow(a + i * ar, ac, b, ldb, k, 0..<n, alpha, accumulate, c + i * ldc)
            i += 1
        }
    }

    /// One row of C over `columns`: 16 lanes at a time, then one value at a time.
    @inline(__always)
    static func singleRow(_ a0: UnsafePointer<Float>, _ ac: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ k: Int,
                          _ columns: Range<Int>, _ alpha: Float, _ accumulate: Bool, _ c0: UnsafeMutablePointer<Float>) {
        var j = columns.lowerBound
        while j + 16 <= columns.upperBound {
            var s0 = Float8(), s1 = Float8()
            var row = b + j
            for p in 0..<k {
                let x = Float8(repeating: a0[p * ac])
                s0 = FastMath.multiplyAdd(x, row.load8(0), s0); s1 = FastMath.multiplyAdd(x, row.load8(8), s1)
                row += ldb
            }
            store16(c0 + j, s0, s1, alpha, accumulate)
            j += 16
        }
        if j < columns.upperBound { scalarRow(a0, ac, b, ldb, k, j..<columns.upperBound, alpha, accumulate, c0) }
    }

    /// dst(columns×rows, row-major) = srcᵀ for src (rows×columns) with row stride `ld`: turns the
    /// keys (or values) of one head into the row-major B that `multiply` streams. AVX-512 moves
    /// 16×16 blocks through registers; the 8-lane path writes dst in order, reading src down its
    /// columns (scattered stores into dst stall on the loads of src they might alias).
    public static func transpose(_ src: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int,
                                 into dst: UnsafeMutablePointer<Float>, isa: KernelISA = KernelISA.selected) {
        if isa == .avx512 {
            loom_avx512_transpose(src, rows, columns, ld, dst)
            return
        }
        for col in 0..<columns {
            let d = dst + col * rows
            for r in 0..<rows { d[r] = src[r * ld + col] }
        }
    }

    /// 16 values of C from two accumulators.
    @inline(__always)
    static func store16(_ c: UnsafeMutablePointer<Float>, _ low: Float8, _ high: Float8, _ alpha: Float, _ accumulate: Bool) {
        store(c, low, alpha, accumulate); store(c + 8, high, alpha, accumulate)
    }

    @inline(__always)
    static func store(_ c: UnsafeMutablePointer<Float>, _ sum: Float8, _ alpha: Float, _ accumulate: Bool) {
        let value = alpha == 1 ? sum : alpha * sum
        c.store8(0, accumulate ? c.load8(0) + value : value)
    }

    /// One row of C over `columns`, one value at a time (the ragged right edge).
    @inline(__always)
    static func scalarRow(_ a: UnsafePointer<Float>, _ ac: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ k: Int,
                          _ columns: Range<Int>, _ alpha: Float, _ accumulate: Bool, _ c: UnsafeMutablePointer<Float>) {
        for j in columns {
            var sum: Float = 0
            for p in 0..<k { sum += a[p * ac] * b[p * ldb + j] }
            c[j] = accumulate ? c[j] + alpha * sum : alpha * sum
        }
    }
}
