// FastMath: vectorised exp and tanh for the softmax, cross-entropy and GELU kernels, and a vector
// square root for the optimizer. exp and tanh are accurate to about 1e-7
// relative, enough for float32 training.
import CKernelSupport

public typealias Float8 = SIMD8<Float>

public enum FastMath {
    /// e^x for 8 lanes (Cephes expf polynomial after range reduction), inputs clamped to ±87.
    /// n = round(x·log₂e) comes from the 1.5·2²³ "magic number" addition, which rounds to the
    /// nearest integer and leaves n in the low mantissa bits: no float→int conversion, which for
    /// SIMD types Swift routes through a slow generic path (it was a quarter of a translation step).
    @inline(__always)
    public static func exp(_ x: Float8) -> Float8 {
        var x = clamp(x, -87.0, 87.0)
        let magic = Float8(repeating: 12582912.0)               // 1.5 · 2²³
        let shifted = x * 1.44269504088896341 + magic
        let fx = shifted - magic                                 // round(x · log₂e), |fx| ≤ 126
        x = x - fx * 0.693359375
        x = x + fx * 2.12194440e-4
        let z = x * x
        var y: Float8 = Float8(repeating: 1.9875691500e-4)
        y = multiplyAdd(y, x, Float8(repeating: 1.3981999507e-3))
        y = multiplyAdd(y, x, Float8(repeating: 8.3334519073e-3))
        y = multiplyAdd(y, x, Float8(repeating: 4.1665795894e-2))
        y = multiplyAdd(y, x, Float8(repeating: 1.6666665459e-1))
        y = multiplyAdd(y, x, Float8(repeating: 5.0000001201e-1))
        y = multiplyAdd(y, z, x + 1)
        let n = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        return y * unsafeBitCast((n &+ 127) &<< 23, to: Float8.self)
    }

    /// tanh for 8 lanes: the rational approximation Eigen uses (13/6 degree, clamped at ±7.99).
    @inline(__always)
    public static func tanh(_ input: Float8) -> Float8 {
        let x = clamp(input, -7.99881172180175781, 7.99881172180175781)
        let x2 = x * x
        var p = multiplyAdd(x2, Float8(repeating: -2.76076847742355e-16), Float8(repeating: 2.00018790482477e-13))
        p = multiplyAdd(x2, p, Float8(repeating: -8.60467152213735e-11))
        p = multiplyAdd(x2, p, Float8(repeating: 5.12229709037114e-08))
        p = multiplyAdd(x2, p, Float8(repeating: 1.48572235717979e-05))
        p = multiplyAdd(x2, p, Float8(repeating: 6.37261928875436e-04))
        p = multiplyAdd(x2, p, Float8(repeating: 4.89352455891786e-03))
        p = x * p
        var q = multiplyAdd(x2, Float8(repeating: 1.19825839466702e-06), Float8(repeating: 1.18534705686654e-04))
        q = multiplyAdd(x2, q, Float8(repeating: 2.26843463243900e-03))
        q = multiplyAdd(x2, q, Float8(repeating: 4.89352518554385e-03))
        return p / q   // near 0, p/q ≈ x·(4.8935246e-3/4.8935252e-3): no special case needed
    }

    /// Lane-wise max and min as a compare and a blend. The standard library's `pointwiseMax`,
    /// `pointwiseMin` and `clamped` run a scalar loop with NaN branches and are not inlined, which
    /// costs more than GELU's own arithmetic (two per 8 values).
    @inline(__always) public static func maximum(_ a: Float8, _ b: Float8) -> Float8 {
        a.replacing(with: b, where: b .> a)
    }
    @inline(__always) public static func minimum(_ a: Float8, _ b: Float8) -> Float8 {
        a.replacing(with: b, where: b .< a)
    }
    /// x limited to [lo, hi] lane-wise (NaN stays NaN).
    @inline(__always) public static func clamp(_ x: Float8, _ lo: Float, _ hi: Float) -> Float8 {
        let low = Float8(repeating: lo), high = Float8(repeating: hi)
        return x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
    }

    /// a·b + c lane-wise: one fused multiply-add (one rounding) in release builds, which target
    /// the AVX2 + FMA level (`LOOM_FMA`, see Package.swift), a multiply then an add in portable
    /// builds, where the fused form would be a library call per lane.
    @inline(__always) public static func multiplyAdd(_ a: Float8, _ b: Float8, _ c: Float8) -> Float8 {
        #if LOOM_FMA
        return c.addingProduct(a, b)
        #else
        return a * b + c
        #endif
    }

    /// √x lane-wise, correctly rounded (the same bits as `Float.squareRoot()` per lane), in one
    /// vector instruction: `SIMD8<Float>.squareRoot()` runs lane by lane through shuffles.
    @inlinable @inline(__always) public static func squareRoot(_ x: Float8) -> Float8 { loom_sqrt8(x) }

    @inline(__always) public static func exp(_ x: Float) -> Float { exp(Float8(repeating: x))[0] }
    @inline(__always) public static func tanh(_ x: Float) -> Float { tanh(Float8(repeating: x))[0] }
}


/// Unaligned 8-lane loads and stores for the vectorised loops (here and in the optimizer).
extension UnsafePointer where Pointee == Float {
    @inline(__always) public func load8(_ i: Int) -> Float8 {
        UnsafeRawPointer(self + i).loadUnaligned(as: Float8.self)
    }
}
extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) public func load8(_ i: Int) -> Float8 {
        UnsafeRawPointer(self + i).loadUnaligned(as: Float8.self)
    }
    @inline(__always) public func store8(_ i: Int, _ v: Float8) {
        UnsafeMutableRawPointer(self + i).storeBytes(of: v, as: Float8.self)
    }
}
