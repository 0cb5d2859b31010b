// SmallGemm against a naive triple loop in double precision: every tile path (6×16, 4×16, 4×8, ragged
// columns, single rows; the AVX-512 8×32 tile and masked edges where the CPU has it), transposed A
// through strides, α, and accumulation into C.
import Testing
import Kernels

@Suite struct SmallGemmTests {
    /// Deterministic values in [-1, 1).
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    @Test(arguments: [(1, 1, 1), (4, 16, 32), (16, 64, 32), (7, 23, 5), (13, 40, 64), (3, 9, 17), (5, 0, 4), (6, 8, 0),
                      (9, 33, 7), (17, 50, 16), (8, 32, 3)])
    func matchesNaiveProduct(m: Int, n: Int, k: Int) {
        for isa in KernelISA.available {
          for transposed in [false, true] {
            for (alpha, accumulate) in [(Float(1), false), (Float(0.37), true)] {
                let lda = transposed ? m + 3 : k + 2, ldb = n + 5, ldc = n + 1
                let a = values((transposed ? k : m) * lda + 1, seed: 1)
                let b = values(k * ldb + 1, seed: 2)
                var c = values(m * ldc + 1, seed: 3)
                let before = c
                // A(i, p) = a[i·rowStride + p·columnStride]
                let rowStride = transposed ? 1 : lda, columnStride = transposed ? lda : 1
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            SmallGemm.multiply(m: m, n: n, k: k, alpha: alpha, a: ap.baseAddress!, rowStride: rowStride,
                                               columnStride: columnStride, b: bp.baseAddress!, ldb: ldb,
                                               accumulate: accumulate, c: cp.baseAddress!, ldc: ldc, isa: isa)
                        }
                    }
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k { sum += Double(a[i * rowStride + p * columnStride]) * Double(b[p * ldb + j]) }
                        let expected = Double(alpha) * sum + (accumulate ? Double(before[i * ldc + j]) : 0)
                        worst = max(worst, abs(Double(c[i * ldc + j]) - expected))
                    }
                    // Padding between rows of C is untouched.
                    for j in n..<ldc where i * ldc + j < c.count { #expect(c[i * ldc + j] == before[i * ldc + j]) }
                }
                #expect(worst < 1e-5 * Double(max(k, 1)), "\(isa) m \(m) n \(n) k \(k) transposed \(transposed): worst \(worst)")
            }
          }
        }
    }

    /// Every ISA's transpose, at sizes around the 16×16 blocks of the AVX-512 one (ragged rows and
    /// columns, one of each, several blocks), with a row stride wider than a row; nothing written
    /// past the columns×rows result.
    @Test(arguments: [(5, 3), (1, 1), (16, 16), (17, 33), (64, 32), (31, 1), (1, 40), (48, 64)])
    func transposeSwapsRowsAndColumns(rows: Int, columns: Int) {
        let ld = columns + 3
        let src = values(rows * ld, seed: UInt64(rows * 100 + columns))
        for isa in KernelISA.available {
            var dst = [Float](repeating: .nan, count: rows * columns + 16)
            src.withUnsafeBufferPointer { s in
                dst.withUnsafeMutableBufferPointer { d in
                    SmallGemm.transpose(s.baseAddress!, rows: rows, columns: columns, ld: ld, into: d.baseAddress!, isa: isa)
                }
            }
            var wrong = 0
            for r in 0..<rows { for col in 0..<columns where dst[col * rows + r] != src[r * ld + col] { wrong += 1 } }
            #expect(wrong == 0, "\(isa) \(rows)×\(columns): \(wrong) values wrong")
            let untouched = dst[(rows * columns)...].allSatisfy { $0.isNaN }
            #expect(untouched, "\(isa) \(rows)×\(columns): wrote past the result")
        }
    }
}
