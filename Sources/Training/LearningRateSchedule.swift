// LearningRateSchedule: the learning rate as a function of the step (constant, or linear warmup
// then cosine decay). It is not the optimizer; the trainer asks it once per step.
import Foundation

public struct LearningRateSchedule: Equatable {
    public enum Kind: String { case constant, cosine }
    public var kind: Kind
    public var peak: Double
    public var minimum: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(kind: Kind, peak: Double, minimum: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind; self.peak = peak; self.minimum = minimum
        self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// The rate for step `step` (0-based): peak·(s+1)/(warmup+1) during warmup (nanoGPT), then
    /// constant, or cosine from peak at the end of warmup to `minimum` at `totalSteps`.
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps + 1) }
        switch kind {
        case .constant: return peak
        case .cosine:
            let span = max(totalSteps - warmupSteps, 1)
            let ratio = min(Double(step - warmupSteps) / Double(span), 1)
            return minimum + 0.5 * (1 + cos(Double.pi * ratio)) * (peak - minimum)
        }
    }
}
