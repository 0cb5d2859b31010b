// CrossEntropy: fused softmax + (label-smoothed) cross-entropy over the vocabulary, forward and
// backward, with an ignore index for padding.
import Support

/// Per row n: probs = softmax(logits[n]); loss[n] = −(1−ε)·log p[target] − ε·mean_v log p[v].
/// Rows whose target is negative (padding) have loss 0 and zero gradient.
/// Shapes: N rows (B·T), V vocabulary (row stride `stride` ≥ V, for padded vocabularies).
public enum CrossEntropy {
    struct Forward: ParallelLoop {
        let losses: UnsafeMutablePointer<Float>, logits: UnsafeMutablePointer<Float>
        let targets: UnsafePointer<Int32>, V: Int, eps: Float
        func run(_ rows: Range<Int>) {
            for row in rows {
                let p = logits + row * V
                let target = Int(targets[row])
                let maxValue = Softmax.maximum(p, count: V)
                let sumLogits = eps > 0 ? Softmax.sum(p, count: V) : 0
                let sum = Softmax.exponentiate(p, count: V, subtract: maxValue, scale: 1)
                Softmax.scale(p, count: V, by: 1 / sum)
                if target < 0 { losses[row] = 0; continue }
                // −log p[target], computed from the probability (clamped away from 0).
                var loss = -log(max(p[target], Float.leastNormalMagnitude))
                if eps > 0 {
                    let meanLogP = sumLogits / Float(V) - maxValue - log(sum)
                    loss = (1 - eps) * loss - eps * meanLogP
                }
                losses[row] = loss
            }
        }
    }

    struct Backward: ParallelLoop {
        let dlogits: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>, V: Int, scale: Float, eps: Float
        func run(_ rows: Range<Int>) {
            for row in rows {
                let d = dlogits + row * V
                let target = Int(targets[row])
                if target < 0 { for v in 0..<V { d[v] = 0 }; continue }
                let off = eps / Float(V)
                var v = 0
                while v + 8 <= V { d.store8(v, (d.load8(v) - off) * scale); v += 8 }
                while v < V { d[v] = (d[v] - off) * scale; v += 1 }
                d[target] -= (1 - eps) * scale
            }
        }
    }

    /// Overwrites `logits` with the probabilities and writes `losses`. Returns (Σ loss, counted rows).
    /// Targets must be < V (callers validate token ids when data is loaded).
    @discardableResult
    public static func forward(
        losses: UnsafeMutablePointer<Float>,   // (N)
        logits: UnsafeMutablePointer<Float>,   // (N, V) in: logits; out: probabilities
        targets: UnsafePointer<Int32>,         // (N), < 0 = ignore
        rows N: Int, vocabulary V: Int, labelSmoothing eps: Float = 0
    ) -> (sum: Double, count: Int) {
        Profiler.measure(.crossEntropy) {
            ThreadPool.shared.parallelFor(N, grain: 4, Forward(losses: losses, logits: logits, targets: targets, V: V, eps: eps))
            var total = 0.0
            var counted = 0
            for row in 0..<N where targets[row] >= 0 { total += Double(losses[row]); counted += 1 }
            return (total, counted)
        }
    }

    /// dlogits = (probs − smoothed one-hot) · scale, in place over the probabilities.
    /// `scale` is 1 / (tokens counted in the whole optimizer step) so micro-batches add up.
    public static func backward(
        dlogits: UnsafeMutablePointer<Float>,  // (N, V) in: probabilities; out: gradient
        targets: UnsafePointer<Int32>,         // (N)
        rows N: Int, vocabulary V: Int, scale: Float, labelSmoothing eps: Float = 0
    ) {
        Profiler.measure(.crossEntropy) {
            ThreadPool.shared.parallelFor(N, grain: 4, Backward(dlogits: dlogits, targets: targets, V: V, scale: scale, eps: eps))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
