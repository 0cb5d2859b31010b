// AdamW: Adam with decoupled weight decay over one flat parameter buffer, plus global-norm gradient
// clipping. On an AVX-512 CPU (`KernelISA`) the update runs 16 lanes in CVectorKernels with the
// same operations in the same order (the same bits). A sharded optimizer (ZeRO-1) owns one slice
// of the buffer and holds moments for that slice only.
import Kernels
import Models
import CVectorKernels
import Support

/// Loshchilov & Hutter's AdamW as PyTorch implements it: p ← p − lr·wd·p (decayed tensors only),
/// then the bias-corrected Adam update. Moments live in two buffers with the parameters' layout,
/// or, sharded, with the layout of the optimizer's slice `range` of it.
public final class AdamW {
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// The floats of the flat parameter buffer this optimizer updates: all of them, or (ZeRO-1)
    /// this rank's slice. Moment index i is parameter `range.lowerBound + i`.
    public let range: Range<Int>
    public let m: FlatBuffer   // (range.count) first moment
    public let v: FlatBuffer   // (range.count) second moment
    /// True when the optimizer owns only a slice of the parameters.
    public var isSharded: Bool { range != 0..<layoutCount }
    private let layoutCount: Int
    /// Updates applied so far (the t of the bias correction); restored on resume.
    public var updates = 0
    /// Contiguous runs of parameters with the same decay flag, as offsets from `range.lowerBound`.
    private let segments: [(range: Range<Int>, decay: Bool)]

    /// `slice`: the part of the flat buffer to update (nil: all of it).
    public init(layout: ParameterLayout, slice: Range<Int>? = nil, beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        let range = slice ?? 0..<layout.count
        precondition(range.lowerBound >= 0 && range.upperBound <= layout.count, "AdamW: slice \(range) outside 0..<\(layout.count)")
        self.range = range
        layoutCount = layout.count
        m = FlatBuffer(count: range.count)
        v = FlatBuffer(count: range.count)
        var segments: [(range: Range<Int>, decay: Bool)] = []
        for t in layout.tensors {
            let lo = max(t.range.lowerBound, range.lowerBound), hi = min(t.range.upperBound, range.upperBound)
            if lo >= hi { continue }
            let part = (lo - range.lowerBound)..<(hi - range.lowerBound)
            if let last = segments.last, last.decay == t.decay, last.range.upperBound == part.lowerBound {
                segments[segments.count - 1].range = last.range.lowerBound..<part.upperBound
            } else {
                segments.append((part, t.decay))
            }
        }
        self.segments = segments
    }

    /// One update of `parameters` from `gradients` × `gradientScale` at learning rate `lr`.
    /// The scale is gradient clipping's factor (`GradientClipping.factor`), applied as each
    /// gradient is read rather than in a pass of its own; the gradient buffer is left as it is.
    /// Only `range` of the parameters changes (all of them unless sharded).
    public func step(parameters: FlatBuffer, gradients: FlatBuffer, learningRate lr: Float, gradientScale: Float = 1,
                     isa: KernelISA = KernelISA.selected) {
        step(parameters: parameters, sliceGradients: gradients.pointer + range.lowerBound, learningRate: lr,
             gradientScale: gradientScale, isa: isa)
    }

    /// The update of `range` of `parameters` from the gradients of that range alone
    /// (`sliceGradients[i]` is parameter `range.lowerBound + i`'s): ZeRO-1's step, after the
    /// reduce-scatter left each rank the summed gradients of its slice.
    public func step(parameters: FlatBuffer, sliceGradients: UnsafeMutablePointer<Float>, learningRate lr: Float,
                     gradientScale: Float = 1, isa: KernelISA = KernelISA.selected) {
        updates += 1
        let correction1 = 1 - Float(Double(beta1).power(updates))
        let correction2 = 1 - Float(Double(beta2).power(updates))
        let job = Update(p: parameters.pointer + range.lowerBound, g: sliceGradients, m: m.pointer, v: v.pointer, segments: segments,
                         scale: gradientScale, b1: beta1, b2: beta2, eps: epsilon, wd: weightDecay, lr: lr,
                         correction1: correction1, correction2: correction2, isa: isa)
        ThreadPool.shared.parallelFor(range.count, grain: 4096, job)
    }

    /// The update over one range of the flat buffer, decaying only the segments flagged for it.
    struct Update: ParallelLoop {
        let p, g, m, v: UnsafeMutablePointer<Float>
        let segments: [(range: Range<Int>, decay: Bool)]
        let scale, b1, b2, eps, wd, lr, correction1, correction2: Float
        let isa: KernelISA
        func run(_ range: Range<Int>) {
            for segment in segments {
                let lo = max(range.lowerBound, segment.range.lowerBound)
                let hi = min(range.upperBound, segment.range.upperBound)
                if lo >= hi { continue }
                let decay: Float = segment.decay ? 1 - lr * wd : 1
                if isa == .avx512 {
                    loom_avx512_adamw(p + lo, g + lo, m + lo, v + lo, hi - lo, scale, b1, b2, eps, lr, decay,
                                      correction1, correction2)
                    continue
                }
                // Eight lanes at a time; the tail runs the same lane arithmetic one value at a time.
                var i = lo
                while i + 8 <= hi {
                    let (pi, mi, vi) = lanes(p.load8(i), g.load8(i), m.load8(i), v.load8(i), decay: decay)
                    p.store8(i, pi); m.store8(i, mi); v.store8(i, vi)
                    i += 8
                }
                for i in i..<hi {
                    let (pi, mi, vi) = lanes(Float8(repeating: p[i]), Float8(repeating: g[i]), Float8(repeating: m[i]),
                                             Float8(repeating: v[i]), decay: decay)
                    p[i] = pi[0]; m[i] = mi[0]; v[i] = vi[0]
                }
            }
        }

        /// The update of 8 parameters: new (p, m, v).
        @inline(__always)
        func lanes(_ p: Float8, _ unscaled: Float8, _ m: Float8, _ v: Float8, decay: Float) -> (Float8, Float8, Float8) {
            let grad = unscaled * scale
            let mi = b1 * m + (1 - b1) * grad
            let vi = b2 * v + (1 - b2) * grad * grad
            let mhat = mi / correction1, vhat = vi / correction2
            return (p * decay - lr * mhat / (FastMath.squareRoot(vhat) + eps), mi, vi)
        }
    }

    /// Restores the step counter (when loading optimizer state).
    public func setUpdates(_ n: Int) { updates = n }
}

/// Global-norm clipping as torch.nn.utils.clip_grad_norm_, in two parts: the norm, and the factor
/// the optimizer multiplies every gradient by (`AdamW.step(…, gradientScale:)`).
public enum GradientClipping {
    /// The L2 norm of all gradients together (summed in double precision, in a fixed order).
    public static func norm(_ gradients: FlatBuffer) -> Float {
        Float(VectorOps.sumOfSquares(gradients.pointer, count: gradients.count).squareRoot())
    }

    /// maxNorm / (norm + 1e-6) when a finite norm exceeds maxNorm > 0, else 1 (PyTorch's formula).
    public static func factor(norm: Float, maxNorm: Float) -> Float {
        maxNorm > 0 && norm.isFinite && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1
    }
}

extension Double {
    func power(_ n: Int) -> Double {
        var result = 1.0, base = self, e = n
        while e > 0 { if e & 1 == 1 { result *= base }; base *= base; e >>= 1 }
        return result
    }
}
