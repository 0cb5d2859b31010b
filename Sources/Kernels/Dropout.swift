// Dropout: inverted dropout whose mask is recomputed from a counter-based hash, so nothing is
// stored between forward and backward and any rank can reproduce it.
import Support

/// Keeps each element with probability 1 − p and scales it by 1/(1 − p); element i of the stream
/// `key` is kept iff uniform(key, counter + i) ≥ p. Callers pass `counter` = global example index ×
/// elements per example, so the mask of an example does not depend on which rank computes it.
public enum Dropout {
    @inline(__always)
    static func keep(_ i: Int, key: UInt64, threshold: UInt64) -> Bool {
        (CounterRandom.bits(key: key, counter: UInt64(i)) >> 40) >= threshold
    }

    @inline(__always)
    static func threshold(_ p: Float) -> UInt64 { UInt64(Double(p) * 16_777_216.0) }

    struct Mask: ParallelLoop {
        let out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>
        let key: UInt64, threshold: UInt64, scale: Float, counter: Int
        func run(_ range: Range<Int>) {
            for i in range { out[i] = keep(counter + i, key: key, threshold: threshold) ? inp[i] * scale : 0 }
        }
    }

    /// data *= mask/(1 − p), in place, for N values.
    public static func apply(_ data: UnsafeMutablePointer<Float>, count N: Int, probability p: Float,
                             key: UInt64, counter: Int = 0) {
        forward(out: data, inp: data, count: N, probability: p, key: key, counter: counter)
    }

    /// out = inp · mask/(1 − p) for N values (the backward of `apply` with the same key is the
    /// same operation on the gradient). out may be inp.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count N: Int,
                               probability p: Float, key: UInt64, counter: Int = 0) {
        Profiler.measure(.elementwise) {
            if p <= 0 {
                if UnsafePointer(out) != inp { out.update(from: inp, count: N) }
                return
            }
            ThreadPool.shared.parallelFor(N, grain: 1024, Mask(out: out, inp: inp, key: key, threshold: threshold(p),
                                                               scale: 1 / (1 - p), counter: counter))
        }
    }
}
