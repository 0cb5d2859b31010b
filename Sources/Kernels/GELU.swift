// GELU: the tanh approximation GPT-2 uses, forward and backward, vectorised; and ReLU, the
// encoder-decoder's activation. On an AVX-512 CPU (`KernelISA`) GELU
// runs 16 lanes in CVectorKernels, the same operations in the same order (the same values).
import CVectorKernels
import Support

/// y = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), elementwise over N values.
public enum GELU {
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

    struct Forward: ParallelLoop {
        let out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>
        var isa = KernelISA.selected
        func run(_ range: Range<Int>) {
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
        var isa = KernelISA.selected
        func run(_ range: Range<Int>) {
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
                               isa: KernelISA = KernelISA.selected) {
        Profiler.measure(.gelu) { ThreadPool.shared.parallelFor(N, grain: 1024, Forward(out: out, inp: inp, isa: isa)) }
    }

    /// dinp = gelu′(inp) · dout (overwritten).
    public static func backward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                dout: UnsafePointer<Float>, count N: Int, isa: KernelISA = KernelISA.selected) {
        Profiler.measure(.gelu) {
            ThreadPool.shared.parallelFor(N, grain: 1024, Backward(dinp: dinp, inp: inp, dout: dout, isa: isa))
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
