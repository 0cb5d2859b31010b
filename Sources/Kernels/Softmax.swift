// Softmax: the row softmax pieces shared by attention and cross-entropy (vectorised exp and sum).
// Each caller fuses the backward it needs. On an AVX-512
// CPU (`KernelISA`) the row functions run 16 lanes in CVectorKernels; the SIMD8 code is the rest.
import CVectorKernels

public enum Softmax {
    /// p[i] = exp((p[i] − subtract) · scale) for i < n; returns Σ p[i].
    @inline(__always)
    public static func exponentiate(_ p: UnsafeMutablePointer<Float>, count n: Int,
                                    subtract: Float, scale: Float, isa: KernelISA = KernelISA.selected) -> Float {
        if isa == .avx512 { return loom_avx512_exponentiate(p, n, subtract, scale) }
        var acc = Float8()
        var i = 0
        while i + 8 <= n {
            let e = FastMath.exp((p.load8(i) - subtract) * scale)
            p.store8(i, e)
            acc += e
            i += 8
        }
        var sum = acc.sum()
        while i < n {
            let e = FastMath.exp((p[i] - subtract) * scale)
            p[i] = e
            sum += e
            i += 1
        }
        return sum
    }

    /// In-place softmax of one row of length n (max-subtracted for stability).
    @inline(__always)
    public static func row(_ p: UnsafeMutablePointer<Float>, count n: Int, isa: KernelISA = KernelISA.selected) {
        if isa == .avx512 { loom_avx512_softmax_row(p, n); return }
        scale(p, count: n, by: 1 / exponentiate(p, count: n, subtract: maximum(p, count: n, isa: isa), scale: 1, isa: isa))
    }

    /// Softmax backward of one row scaled by α, in place: d[j] = p[j]·(d[j] − Σ p·d)·α for
    /// j < limit (the keys the row sees), d[j] = 0 for limit ≤ j < count.
    @inline(__always)
    public static func backwardRow(_ p: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, limit: Int, count: Int,
                                   scale alpha: Float, isa: KernelISA = KernelISA.selected) {
        if isa == .avx512 { loom_avx512_softmax_backward_row(p, d, limit, count, alpha); return }
        let dot = Softmax.dot(p, d, count: limit)
        var j = 0
        while j + 8 <= limit { d.store8(j, p.load8(j) * (d.load8(j) - dot) * alpha); j += 8 }
        while j < limit { d[j] = p[j] * (d[j] - dot) * alpha; j += 1 }
        for j in limit..<max(limit, count) { d[j] = 0 }
    }

    /// p[i] *= factor for i < n.
    @inline(__always)
    public static func scale(_ p: UnsafeMutablePointer<Float>, count n: Int, by factor: Float) {
        var i = 0
        while i + 8 <= n { p.store8(i, p.load8(i) * factor); i += 8 }
        while i < n { p[i] *= factor; i += 1 }
    }

    /// Σ p[i] for i < n, eight lanes at a time.
    @inline(__always)
    public static func sum(_ p: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = Float8()
        var i = 0
        while i + 8 <= n { acc += p.load8(i); i += 8 }
        var total = acc.sum()
        while i < n { total += p[i]; i += 1 }
        return total
    }

    /// max of p[0..<n] (n > 0).
    @inline(__always)
    public static func maximum(_ p: UnsafePointer<Float>, count n: Int, isa: KernelISA = KernelISA.selected) -> Float {
        if isa == .avx512 { return loom_avx512_maximum(p, n) }
        var m8 = Float8(repeating: -.infinity)
        var i = 0
        while i + 8 <= n { m8 = FastMath.maximum(m8, p.load8(i)); i += 8 }
        var m = m8.max()
        while i < n { m = max(m, p[i]); i += 1 }
        return m
    }

    /// Σ a[i]·b[i] for i < n, eight lanes at a time.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = Float8()
        var i = 0
        while i + 8 <= n { acc += a.load8(i) * b.load8(i); i += 8 }
        var sum = acc.sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }
}
