// VectorOps: whole-buffer reductions and updates used by the optimizer and the trainer (sum of
// squares, scaling, finiteness). It is not a layer.

public enum VectorOps {
    /// Σ x[i]² in double precision, in a fixed order (per-thread partials added in thread order).
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count n: Int) -> Double {
        let pool = ThreadPool.shared
        let parts = pool.threads
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partial in
            for i in 0..<parts { partial[i] = 0 }
            pool.run(tasks: parts) { part in
                let start = n * part / parts, end = n * (part + 1) / parts
                var acc8 = SIMD8<Double>()
                var i = start
                while i + 8 <= end {
                    acc8 += SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: Float8.self))
                        * SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: Float8.self))
                    i += 8
                }
                var acc = acc8.sum()
                while i < end { acc += Double(x[i]) * Double(x[i]); i += 1 }
                partial[part] = acc
            }
            var total = 0.0
            for i in 0..<parts { total += partial[i] }
            return total
        }
    }

    /// x *= factor.
    public static func scale(_ x: UnsafeMutablePointer<Float>, count n: Int, by factor: Float) {
        Profiler.measure(.elementwise) {
            ThreadPool.shared.parallelFor(n, grain: 4096) { range in
                for i in range { x[i] *= factor }
            }
        }
    }

    /// x = 0.
    public static func zero(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        Profiler.measure(.elementwise) {
            ThreadPool.shared.parallelFor(n, grain: 1 << 16) { range in
                (x + range.lowerBound).update(repeating: 0, count: range.count)
            }
        }
    }
}
