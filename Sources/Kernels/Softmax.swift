// Softmax: the row softmax pieces shared by attention and cross-entropy (vectorised exp and sum).
// It is not a layer with its own backward: each caller fuses the backward it needs.

public enum Softmax {
    /// p[i] = exp((p[i] − subtract) · scale) for i < n; returns Σ p[i].
    @inline(__always)
    public static func exponentiate(_ p: UnsafeMutablePointer<Float>, count n: Int,
                                    subtract: Float, scale: Float) -> Float {
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
    public static func row(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        var maxValue = -Float.infinity
        for i in 0..<n { maxValue = max(maxValue, p[i]) }
        let inv = 1 / exponentiate(p, count: n, subtract: maxValue, scale: 1)
        for i in 0..<n { p[i] *= inv }
    }
}
