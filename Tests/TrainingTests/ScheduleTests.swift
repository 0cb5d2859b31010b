// The coordinator's learning-rate schedules: linear decay, the paper's inverse square root, and
// reduce-on-plateau's decisions.
import Testing
import Foundation
import Training

struct ScheduleTests {
    @Test func linearDecayAfterWarmup() {
        let s = LearningRateSchedule(kind: .linear, peak: 1e-3, minimum: 1e-4, warmupSteps: 10, totalSteps: 110)
        #expect(abs(s.rate(at: 10) - 1e-3) < 1e-15)
        #expect(abs(s.rate(at: 60) - 5.5e-4) < 1e-12)     // halfway: (1e-3 + 1e-4) / 2
        #expect(abs(s.rate(at: 110) - 1e-4) < 1e-15)
        #expect(abs(s.rate(at: 500) - 1e-4) < 1e-15)      // stays at the minimum
    }

    @Test func inverseSquareRootIsThePapersFormula() {
        // lr = factor · d^-0.5 · min(n^-0.5, n · warmup^-1.5), n = step + 1; peak at n = warmup.
        let s = LearningRateSchedule(kind: .inverseSqrt, peak: 2, minimum: 0, warmupSteps: 4000, totalSteps: 100_000, width: 512)
        let d = 1 / 512.0.squareRoot()
        #expect(abs(s.rate(at: 0) - 2 * d * 1 * pow(4000, -1.5)) < 1e-15)
        #expect(abs(s.rate(at: 3999) - 2 * d / 4000.0.squareRoot()) < 1e-12)
        #expect(abs(s.rate(at: 15999) - 2 * d / 16000.0.squareRoot()) < 1e-12)
        #expect(s.rate(at: 1999) < s.rate(at: 3999) && s.rate(at: 7999) < s.rate(at: 3999))
    }

    @Test func cooldownEndsInAStraightLineAtTheMinimum() {
        let plain = LearningRateSchedule(kind: .inverseSqrt, peak: 1, minimum: 0, warmupSteps: 100, totalSteps: 1000, width: 256)
        var s = plain
        s.cooldownSteps = 400
        for step in [0, 99, 500, 599] { #expect(s.rate(at: step) == plain.rate(at: step)) }   // before the cooldown
        #expect(abs(s.rate(at: 600) - plain.rate(at: 600)) < 1e-15)                           // (1000 − 600) / 400 = 1
        #expect(abs(s.rate(at: 800) - plain.rate(at: 800) * 0.5) < 1e-15)
        #expect(abs(s.rate(at: 999) - plain.rate(at: 999) / 400) < 1e-15)
        #expect(s.rate(at: 1000) == 0)
        // Towards a non-zero minimum for the other kinds.
        let c = LearningRateSchedule(kind: .constant, peak: 1e-3, minimum: 1e-4, warmupSteps: 0, totalSteps: 100, cooldownSteps: 10)
        #expect(abs(c.rate(at: 95) - (1e-4 + 0.9e-3 * 0.5)) < 1e-15)
        #expect(abs(c.rate(at: 100) - 1e-4) < 1e-15)
    }

    @Test func plateauLowersTheRateAfterPatienceRunsOut() {
        var p = ReduceOnPlateau(factor: 0.5, patience: 2, threshold: 0.01, minimumScale: 0.2)
        var lowered = [Bool]()
        for loss in [2.0, 1.5, 1.499, 1.6, 1.55, 1.0] { lowered.append(p.observe(validationLoss: loss)) }
        // 2.0 best, 1.5 improves, 1.499 is within the 1 % threshold (1 bad), 1.6 (2), 1.55 (3 > patience:
        // halve), 1.0 improves and resets the count.
        #expect(lowered == [false, false, false, false, true, false])
        #expect(p.scale == 0.5 && p.best == 1.0 && p.badEvaluations == 0)
        for _ in 0..<3 { p.observe(validationLoss: 1.2) }
        #expect(p.scale == 0.25)
        for _ in 0..<3 { p.observe(validationLoss: 1.2) }
        #expect(p.scale == 0.2)                            // clamped at the minimum scale
    }
}
