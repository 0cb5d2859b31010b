// Dropout: inverted dropout whose mask is recomputed from a counter-based hash, so nothing is
// stored between forward and backward and any rank can reproduce it. It is not DropConnect.

/// Keeps each element with probability 1 − p and scales it by 1/(1 − p); element i of the stream
/// `key` is kept iff uniform(key, counter + i) ≥ p. Callers pass `counter` = global example index ×
/// elements per example, so the mask of an example does not depend on which rank computes it.
public enum Dropout {
    @inline(__always)
    static func keep(_ i: Int, key: UInt64, threshold: UInt64) -> Bool {
        (CounterRandom.bits(key: key, counter: UInt64(i)) >> 40) >= threshold
    }

    /// data *= mask/(1 − p), in place, for N values.
    public static func apply(_ data: UnsafeMutablePointer<Float>, count N: Int, probability p: Float,
                             key: UInt64, counter: Int = 0) {
        Profiler.measure(.elementwise) {
            if p <= 0 { return }
            let threshold = UInt64(Double(p) * 16_777_216.0)
            let scale = 1 / (1 - p)
            ThreadPool.shared.parallelFor(N, grain: 1024) { range in
                for i in range { data[i] = keep(counter + i, key: key, threshold: threshold) ? data[i] * scale : 0 }
            }
        }
    }

    /// out = inp · mask/(1 − p) for N values (the backward of `apply` with the same key is the
    /// same operation on the gradient).
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count N: Int,
                               probability p: Float, key: UInt64, counter: Int = 0) {
        Profiler.measure(.elementwise) {
            let threshold = UInt64(Double(p) * 16_777_216.0)
            let scale = p <= 0 ? 1 : 1 / (1 - p)
            ThreadPool.shared.parallelFor(N, grain: 1024) { range in
                if p <= 0 { for i in range { out[i] = inp[i] }; return }
                for i in range { out[i] = keep(counter + i, key: key, threshold: threshold) ? inp[i] * scale : 0 }
            }
        }
    }
}
