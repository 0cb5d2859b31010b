// LearningRateSchedule: the learning rate as a function of the step — constant, linear warmup then
// cosine or linear decay, the Transformer paper's inverse square root — and ReduceOnPlateau, the
// state the coordinator keeps to lower the rate when validation stops improving. The coordinator
// asks once per step and broadcasts the answer.
import Foundation

public struct LearningRateSchedule: Equatable {
    public enum Kind: String, Codable, CaseIterable, Sendable { case constant, cosine, linear, inverseSqrt = "inverse_sqrt", plateau }
    public var kind: Kind
    public var peak: Double
    public var minimum: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    /// d_model, for inverse_sqrt.
    public var width: Int
    /// The last `cooldownSteps` steps fall in a straight line from the schedule's rate to `minimum`
    /// at `totalSteps` (warmup–stable–decay): an inverse-square-root run ends near its minimum
    /// instead of at a still-high rate. 0 = no cooldown.
    public var cooldownSteps: Int

    public init(kind: Kind, peak: Double, minimum: Double, warmupSteps: Int, totalSteps: Int, width: Int = 512,
                cooldownSteps: Int = 0) {
        self.kind = kind; self.peak = peak; self.minimum = minimum
        self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.width = width
        self.cooldownSteps = cooldownSteps
    }

    /// The rate for step `step` (0-based) before any plateau reduction.
    /// - constant, cosine, linear, plateau: peak·(s+1)/(warmup+1) during warmup (nanoGPT), then
    ///   constant (constant, plateau), cosine or straight-line decay from peak to `minimum` at
    ///   `totalSteps`.
    /// - inverse_sqrt: peak · width^−½ · min(n^−½, n · warmup^−³ᐟ²) with n = s + 1 (the paper's
    ///   formula with `peak` as its factor).
    /// Then, over the last `cooldownSteps`: minimum + (rate − minimum) · (totalSteps − s) / cooldownSteps.
    public func rate(at step: Int) -> Double {
        let base = baseRate(at: step)
        guard cooldownSteps > 0, step >= totalSteps - cooldownSteps else { return base }
        let remaining = Double(max(totalSteps - step, 0)) / Double(cooldownSteps)
        return minimum + (base - minimum) * remaining
    }

    private func baseRate(at step: Int) -> Double {
        if kind == .inverseSqrt {
            let n = Double(step + 1), w = Double(max(warmupSteps, 1))
            return peak / Double(width).squareRoot() * min(1 / n.squareRoot(), n * pow(w, -1.5))
        }
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps + 1) }
        let span = max(totalSteps - warmupSteps, 1)
        let ratio = min(Double(step - warmupSteps) / Double(span), 1)
        switch kind {
        case .constant, .plateau, .inverseSqrt: return peak
        case .cosine: return minimum + 0.5 * (1 + cos(Double.pi * ratio)) * (peak - minimum)
        case .linear: return peak + (minimum - peak) * ratio
        }
    }
}

/// Reduce-on-plateau: after `patience` evaluations without improving the best validation loss by
/// more than `threshold` (relative), multiply the rate by `factor` (never below `minimumScale`).
public struct ReduceOnPlateau: Equatable {
    public var factor: Double
    public var patience: Int
    public var threshold: Double
    public var minimumScale: Double
    /// The multiplier in force, the best validation loss seen and evaluations since it improved.
    public var scale = 1.0
    public var best = Double.infinity
    public var badEvaluations = 0

    public init(factor: Double, patience: Int, threshold: Double = 1e-4, minimumScale: Double = 0) {
        self.factor = factor; self.patience = patience; self.threshold = threshold; self.minimumScale = minimumScale
    }

    /// Takes one validation loss; returns true when it lowered the rate.
    @discardableResult
    public mutating func observe(validationLoss loss: Double) -> Bool {
        if loss < best * (1 - threshold) {
            best = loss; badEvaluations = 0
            return false
        }
        badEvaluations += 1
        guard badEvaluations > patience else { return false }
        badEvaluations = 0
        let lowered = max(scale * factor, minimumScale)
        defer { scale = lowered }
        return lowered < scale
    }

}
