// FastMath accuracy against the C library, and the thread pool's coverage of a range.
import Testing
import Foundation
import Kernels

@Suite struct FastMathTests {
    @Test func expMatchesLibm() {
        var worst: Float = 0
        for i in 0...20000 {
            let x = -80 + Float(i) * 0.008     // up to 80: the kernel clamps at ±87
            let r = abs(FastMath.exp(x) - Foundation.exp(x)) / Foundation.exp(x)
            worst = max(worst, r)
        }
        #expect(worst < 1e-6, "worst relative error \(worst)")
    }

    @Test func tanhMatchesLibm() {
        var worst: Float = 0
        for i in 0...20000 {
            let x = -10 + Float(i) * 0.001
            worst = max(worst, abs(FastMath.tanh(x) - Foundation.tanh(x)))
        }
        #expect(worst < 2e-6, "worst absolute error \(worst)")
    }

    struct Count: ParallelLoop {
        let hits: UnsafeMutablePointer<Int>, grain: Int
        func run(_ range: Range<Int>) {
            for i in range { hits[i] += 1 }
        }
    }

    @Test func poolCoversEveryIndexOnce() {
        let pool = ThreadPool(threads: 3)
        for count in [0, 1, 7, 100, 1001] {
            for grain in [1, 4, 64] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in pool.parallelFor(count, grain: grain, Count(hits: h.baseAddress!, grain: grain)) }
                #expect(hits.allSatisfy { $0 == 1 }, "count \(count) grain \(grain)")
            }
        }
    }

    @Test func parallelGemmEqualsSerial() {
        ThreadPool.configure(threads: 2)
        let m = 70, n = 50, k = 33
        let a = (0..<(m * k)).map { Float($0 % 13) - 6 }, b = (0..<(k * n)).map { Float($0 % 7) - 3 }
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            Gemm.serial(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n, beta: 0, c: &c1, ldc: n)
            Gemm.parallel(transA: ta, transB: tb, m: m, n: n, k: k, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n, beta: 0, c: &c2, ldc: n)
            #expect(c1 == c2)
            // and with n > m (split along columns)
            Gemm.serial(transA: ta, transB: tb, m: n, n: m, k: k, a: b, lda: ta ? n : k, b: a, ldb: tb ? k : m, beta: 0, c: &c1, ldc: m)
            Gemm.parallel(transA: ta, transB: tb, m: n, n: m, k: k, a: b, lda: ta ? n : k, b: a, ldb: tb ? k : m, beta: 0, c: &c2, ldc: m)
            #expect(c1 == c2)
        }
    }
}
