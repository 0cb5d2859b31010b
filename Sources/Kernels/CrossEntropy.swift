// CrossEntropy: fused softmax + (label-smoothed) cross-entropy over the vocabulary, forward and
// backward, with an ignore index for padding. It is not a general softmax (see Attention).

/// Per row n: probs = softmax(logits[n]); loss[n] = −(1−ε)·log p[target] − ε·mean_v log p[v].
/// Rows whose target is negative (padding) have loss 0 and zero gradient.
/// Shapes: N rows (B·T), V vocabulary (row stride `stride` ≥ V, for padded vocabularies).
public enum CrossEntropy {
    /// Overwrites `logits` with the probabilities and writes `losses`. Returns (Σ loss, counted rows).
    @discardableResult
    public static func forward(
        losses: UnsafeMutablePointer<Float>,   // (N)
        logits: UnsafeMutablePointer<Float>,   // (N, V) in: logits; out: probabilities
        targets: UnsafePointer<Int32>,         // (N), < 0 = ignore
        rows N: Int, vocabulary V: Int, labelSmoothing eps: Float = 0
    ) -> (sum: Double, count: Int) {
        Profiler.measure(.crossEntropy) {
            ThreadPool.shared.parallelFor(N, grain: 4) { rows in
                for row in rows {
                    let p = logits + row * V
                    let target = Int(targets[row])
                    var maxValue = -Float.infinity
                    for v in 0..<V { maxValue = max(maxValue, p[v]) }
                    var sumLogits: Float = 0
                    for v in 0..<V { sumLogits += p[v] }
                    let sum = Softmax.exponentiate(p, count: V, subtract: maxValue, scale: 1)
                    let logSum = log(sum)
                    for v in 0..<V { p[v] /= sum }
                    if target < 0 { losses[row] = 0; continue }
                    precondition(target < V, "CrossEntropy: target \(target) ≥ vocabulary \(V)")
                    // log p[v] = logit[v] − max − log Σ; recover logit[target] from the probability.
                    let logPTarget = log(max(p[target], Float.leastNormalMagnitude))
                    var loss = -logPTarget
                    if eps > 0 {
                        let meanLogP = sumLogits / Float(V) - maxValue - logSum
                        loss = (1 - eps) * loss - eps * meanLogP
                    }
                    losses[row] = loss
                }
            }
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
            ThreadPool.shared.parallelFor(N, grain: 4) { rows in
                for row in rows {
                    let d = dlogits + row * V
                    let target = Int(targets[row])
                    if target < 0 { for v in 0..<V { d[v] = 0 }; continue }
                    let off = eps / Float(V)
                    for v in 0..<V { d[v] = (d[v] - off) * scale }
                    d[target] -= (1 - eps) * scale
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
