// GELU in two forms — the tanh approximation GPT-2 uses and the exact x·Φ(x) with erf that BERT
// uses — forward and backward, vectorised, with the vectorised erf; and ReLU, the
// encoder-decoder's activation. On an AVX-512 CPU (`KernelISA`) both forms run 16 lanes in
// CVectorKernels, the same operations in the same order (the same values).
import CVectorKernels
import Support

/// tanh form: y = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); erf form: y = ½·x·(1 + erf(x/√2)),
/// elementwise over N values.
public enum GELU {
    /// Which GELU: GPT-2's tanh approximation (Hugging Face `gelu_new`) or the exact one with erf
    /// (Hugging Face `gelu`, BERT's).
    public enum Form: Sendable { case tanh, erf }

    static let s: Float = 0.7978845608028654 // √(2/π)

    @inline(__always)
    static func value(_ x: Float8) -> Float8 {
        let x3: Float8 = x * x * x
        let t: Float8 = FastMath.tanh(s * (x + 0.044715 * x3))
        return 0.5 * x * (1 + t)
    }

    /// dy/dx = ½(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(inner).
    @inline(__always)
    static func derivative(_ x: Float8) -> Float8 {
        let x2: Float8 = x * x
        let inner: Float8 = s * (x + 0.044715 * x2 * x)
        let t: Float8 = FastMath.tanh(inner)
        let sech2: Float8 = 1 - t * t
        let dinner: Float8 = s * (1 + 0.134145 * x2)
        let left: Float8 = 0.5 * (1 + t)
        let right: Float8 = 0.5 * x * sech2 * dinner
        return left + right
    }

    // MARK: erf

    // 1 + erf(u) for |u| ≤ 1 is 1 + u·P(u²); for |u| > 1 it is 2 − erfc(|u|) (u > 0) or erfc(|u|)
    // (u < 0), with erfc(a) = e^(−a²)·Q(v), Q ≈ erfcx = e^(a²)·erfc(a) on [1, 4] in v = (a − 2.5)/1.5
    // (a clamped to 4, where erfc(4)·e^16 ≈ 0.137 and erfc itself is below float's resolution
    // next to 1). P (degree 5) and Q (degree 11) are relative least-squares fits on Chebyshev
    // nodes; with fused multiply-adds erf's absolute error is ≈ 1e-7 (Tests/KernelsTests/GELUErfTests.swift).

    /// erf(u) by the polynomial (valid for |u| ≤ 1), erfc(|u|) by the tail (valid for |u| ≥ 1),
    /// and the Gaussian e^(−u²) the tail is made of.
    @inline(__always)
    static func erfParts(_ u: Float8) -> (small: Float8, tail: Float8, gaussian: Float8) {
        let u2 = u * u
        var p = Float8(repeating: -0.0005625396152026951)
        p = FastMath.multiplyAdd(p, u2, Float8(repeating: 0.004916023463010788))
        p = FastMath.multiplyAdd(p, u2, Float8(repeating: -0.02670994959771633))
        p = FastMath.multiplyAdd(p, u2, Float8(repeating: 0.11280130594968796))
        p = FastMath.multiplyAdd(p, u2, Float8(repeating: -0.37612318992614746))
        p = FastMath.multiplyAdd(p, u2, Float8(repeating: 1.1283791065216064))
        let a = FastMath.minimum(u.replacing(with: -u, where: u .< Float8()), Float8(repeating: 4))
        let v = (a - 2.5) * Float8(repeating: 1 / 1.5)
        var q = Float8(repeating: -3.317872324259952e-05)
        q = FastMath.multiplyAdd(q, v, Float8(repeating: 9.565718210069463e-05))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: -0.00015413262008223683))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: 0.00036971690133213997))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: -0.0010070913704112172))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: 0.002424290170893073))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: -0.0055716331116855145))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: 0.0124845951795578))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: -0.02700497768819332))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: 0.056110888719558716))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: -0.11152104288339615))
        q = FastMath.multiplyAdd(q, v, Float8(repeating: 0.21080635488033295))
        let gaussian = FastMath.exp(-u2)
        return (u * p, gaussian * q, gaussian)
    }

    /// erf(u) for 8 lanes, absolute error ≈ 1e-7.
    @inline(__always)
    public static func erf(_ u: Float8) -> Float8 {
        let (small, tail, _) = erfParts(u)
        let large = (1 - tail).replacing(with: tail - 1, where: u .< Float8())
        return small.replacing(with: large, where: u .> Float8(repeating: 1) .| u .< Float8(repeating: -1))
    }

    /// 1 + erf(u), without the cancellation of adding 1 to erf ≈ −1 in the left tail; and e^(−u²).
    @inline(__always)
    static func onePlusErf(_ u: Float8) -> (value: Float8, gaussian: Float8) {
        let (small, tail, gaussian) = erfParts(u)
        let large = (2 - tail).replacing(with: tail, where: u .< Float8())
        let value = (1 + small).replacing(with: large, where: u .> Float8(repeating: 1) .| u .< Float8(repeating: -1))
        return (value, gaussian)
    }

    static let invSqrt2: Float = 0.7071067811865476        // 1/√2
    static let invSqrt2Pi: Float = 0.3989422804014327      // 1/√(2π)

    /// ½·x·(1 + erf(x/√2)) = x·Φ(x).
    @inline(__always)
    static func exactValue(_ x: Float8) -> Float8 {
        0.5 * x * onePlusErf(x * invSqrt2).value
    }

    /// dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π) (the Gaussian of erf's tail at u = x/√2).
    @inline(__always)
    static func exactDerivative(_ x: Float8) -> Float8 {
        let (value, gaussian) = onePlusErf(x * invSqrt2)
        return FastMath.multiplyAdd(x, gaussian * invSqrt2Pi, 0.5 * value)
    }

    /// erf of one value (tests, scalar tails).
    public static func erf(_ u: Float) -> Float { erf(Float8(repeating: u))[0] }
    /// GELU and its derivative of one value in the given form.
    public static func value(_ x: Float, form: Form) -> Float {
        form == .tanh ? value(Float8(repeating: x))[0] : exactValue(Float8(repeating: x))[0]
    }
    public static func derivative(_ x: Float, form: Form) -> Float {
        form == .tanh ? derivative(Float8(repeating: x))[0] : exactDerivative(Float8(repeating: x))[0]
    }

    // MARK: Kernels

    struct Forward: ParallelLoop {
        let out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>
        var form = Form.tanh
        var isa = KernelISA.selected
        func run(_ range: Range<Int>) {
            if form == .erf {
                if isa == .avx512 {
                    loom_avx512_gelu_erf_forward(out + range.lowerBound, inp + range.lowerBound, range.count)
                    return
                }
                var i = range.lowerBound
                while i + 8 <= range.upperBound { out.store8(i, exactValue(inp.load8(i))); i += 8 }
                while i < range.upperBound { out[i] = exactValue(Float8(repeating: inp[i]))[0]; i += 1 }
                return
            }
            if isa == .avx512 {
                loom_avx512_gelu_forward(out + range.lowerBound, inp + range.lowerBound, range.count)
                return
            }
            var i = range.lowerBound
            while i + 8 <= range.upperBound { out.store8(i, value(inp.load8(i))); i += 8 }
            while i < range.upperBound { out[i] = value(Float8(repeating: inp[i]))[0]; i += 1 }
        }
    }

    struct Backward: ParallelLoop {
        let dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>
        var form = Form.tanh
        var isa = KernelISA.selected
        func run(_ range: Range<Int>) {
            if form == .erf {
                if isa == .avx512 {
                    let o = range.lowerBound
                    loom_avx512_gelu_erf_backward(dinp + o, inp + o, dout + o, range.count)
                    return
                }
                var i = range.lowerBound
                while i + 8 <= range.upperBound { dinp.store8(i, exactDerivative(inp.load8(i)) * dout.load8(i)); i += 8 }
                while i < range.upperBound { dinp[i] = exactDerivative(Float8(repeating: inp[i]))[0] * dout[i]; i += 1 }
                return
            }
            if isa == .avx512 {
                let o = range.lowerBound
                loom_avx512_gelu_backward(dinp + o, inp + o, dout + o, range.count)
                return
            }
            var i = range.lowerBound
            while i + 8 <= range.upperBound { dinp.store8(i, derivative(inp.load8(i)) * dout.load8(i)); i += 8 }
            while i < range.upperBound { dinp[i] = derivative(Float8(repeating: inp[i]))[0] * dout[i]; i += 1 }
        }
    }

    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count N: Int,
                               form: Form = .tanh, isa: KernelISA = KernelISA.selected) {
        Profiler.measure(.gelu) {
            ThreadPool.shared.parallelFor(N, grain: 1024, Forward(out: out, inp: inp, form: form, isa: isa))
        }
    }

    /// dinp = gelu′(inp) · dout (overwritten; dinp may be dout).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count N: Int, form: Form = .tanh,
                                isa: KernelISA = KernelISA.selected) {
        Profiler.measure(.gelu) {
            ThreadPool.shared.parallelFor(N, grain: 1024, Backward(dinp: dinp, inp: inp, dout: dout, form: form, isa: isa))
        }
    }
}

/// ReLU (the encoder-decoder's feed-forward activation), forward and backward.
public enum ReLU {
    struct Forward: ParallelLoop {
        let out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>
        func run(_ range: Range<Int>) {
            var i = range.lowerBound
            while i + 8 <= range.upperBound { out.store8(i, FastMath.maximum(inp.load8(i), Float8())); i += 8 }
            while i < range.upperBound { out[i] = max(inp[i], 0); i += 1 }
        }
    }
    struct Backward: ParallelLoop {
        let dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>
        func run(_ range: Range<Int>) {
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                dinp.store8(i, Float8().replacing(with: dout.load8(i), where: inp.load8(i) .> Float8()))
                i += 8
            }
            while i < range.upperBound { dinp[i] = inp[i] > 0 ? dout[i] : 0; i += 1 }
        }
    }

    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count N: Int) {
        Profiler.measure(.gelu) { ThreadPool.shared.parallelFor(N, grain: 1024, Forward(out: out, inp: inp)) }
    }

    /// dinp = (inp > 0) · dout (overwritten).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count N: Int) {
        Profiler.measure(.gelu) { ThreadPool.shared.parallelFor(N, grain: 1024, Backward(dinp: dinp, inp: inp, dout: dout)) }
    }
}
