// FastMath accuracy against the C library (and the vector square root against the scalar one),
// and the parallel GEMM against the serial one on the compute threads of the shared pool.
import Testing
import Foundation
import Kernels
import Support

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

    /// AdamW's update divides by it, so it must round exactly as Float.squareRoot() does: every
    /// lane of 160,000 non-negative floats drawn uniformly over their bit patterns (denormals, the
    /// whole exponent range, infinity), plus exact squares.
    @Test func vectorSquareRootIsBitIdenticalToScalar() {
        var mismatches = 0
        for trial in 0..<20_000 {
            var lanes = Float8()
            for i in 0..<8 {
                let bits = UInt32(truncatingIfNeeded: CounterRandom.bits(key: 7, counter: UInt64(trial * 8 + i)))
                let x = Float(bitPattern: bits & 0x7FFF_FFFF)
                lanes[i] = x.isNaN ? Float(i * i) : x
            }
            let root = FastMath.squareRoot(lanes)
            for i in 0..<8 where root[i].bitPattern != lanes[i].squareRoot().bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(FastMath.squareRoot(Float8(repeating: -1))[0].isNaN)
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
