// VectorOps: whole-buffer reductions and updates used by the optimizer and the trainer (sum of
// squares, zeroing).
import Support

public enum VectorOps {
    struct SquaresLoop: ParallelLoop {
        let x: UnsafePointer<Float>, n: Int, parts: Int, partial: UnsafeMutablePointer<Double>
        func run(_ range: Range<Int>) {
            for part in range {
                let start = n * part / parts, end = n * (part + 1) / parts
                var acc8 = SIMD8<Double>()
                var i = start
                while i + 8 <= end {
                    let v = SIMD8<Double>(x.load8(i))
                    acc8 += v * v
                    i += 8
                }
                var acc = acc8.sum()
                while i < end { acc += Double(x[i]) * Double(x[i]); i += 1 }
                partial[part] = acc
            }
        }
    }

    /// Σ x[i]² in double precision, in a fixed order whatever the thread count (fixed parts,
    /// added in part order).
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        let parts = min(8, max(1, n / 1024))
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
            ThreadPool.shared.parallelFor(parts, SquaresLoop(x: x, n: n, parts: parts, partial: partial.baseAddress!))
            var total = 0.0
            for i in 0..<parts { total += partial[i] }
            return total
        }
    }

    struct ZeroLoop: ParallelLoop {
        let x: UnsafeMutablePointer<Float>
        func run(_ range: Range<Int>) { (x + range.lowerBound).update(repeating: 0, count: range.count) }
    }

    /// x = 0.
    public static func zero(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        Profiler.measure(.elementwise) { ThreadPool.shared.parallelFor(n, grain: 1 << 16, ZeroLoop(x: x)) }
    }
}
