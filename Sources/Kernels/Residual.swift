// Residual: elementwise sum of two streams, forward only (its backward is the identity on both
// inputs, done by the caller reusing the gradient buffer).
import Support

/// out = a + b over N values.
public enum Residual {
    struct Sum: ParallelLoop {
        let out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>
        func run(_ range: Range<Int>) { for i in range { out[i] = a[i] + b[i] } }
    }

    public static func forward(out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>,
                               b: UnsafePointer<Float>, count N: Int) {
        Profiler.measure(.elementwise) { ThreadPool.shared.parallelFor(N, grain: 1024, Sum(out: out, a: a, b: b)) }
    }
}
