// AdamW against a scalar reference, clipping, and the learning-rate schedule.
import Testing
import Foundation
import Models
import Training
import TestSupport

@Suite struct OptimizerTests {
    @Test func adamWMatchesReferenceAndDecaysOnlyFlaggedTensors() {
        var layout = ParameterLayout()
        layout.add("matrix", [2, 2], decay: true)
        layout.add("bias", [2])
        let p = FlatBuffer(count: 6), g = FlatBuffer(count: 6)
        let start: [Float] = [0.5, -1, 2, 0.1, 0.3, -0.7]
        for i in 0..<6 { p.pointer[i] = start[i] }
        let opt = AdamW(layout: layout, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
        // Reference in double precision.
        var rp = start.map(Double.init), m = [Double](repeating: 0, count: 6), v = m
        for step in 1...3 {
            let grads = randomFloats(6, seed: UInt64(step))
            for i in 0..<6 { g.pointer[i] = grads[i] }
            opt.step(parameters: p, gradients: g, learningRate: 0.01)
            for i in 0..<6 {
                let gi = Double(grads[i])
                if i < 4 { rp[i] *= 1 - 0.01 * 0.1 }
                m[i] = 0.9 * m[i] + 0.1 * gi; v[i] = 0.99 * v[i] + 0.01 * gi * gi
                let mh = m[i] / (1 - pow(0.9, Double(step))), vh = v[i] / (1 - pow(0.99, Double(step)))
                rp[i] -= 0.01 * mh / (vh.squareRoot() + 1e-8)
            }
        }
        for i in 0..<6 { #expect(abs(Double(p.pointer[i]) - rp[i]) < 1e-6, "parameter \(i)") }
    }

    @Test func clippingScalesToTheMaximumNorm() {
        let g = FlatBuffer(count: 4)
        for (i, x) in [Float(3), 4, 0, 0].enumerated() { g.pointer[i] = x }
        let norm = GradientClipping.clip(g, maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(g.pointer[0] - 0.6) < 1e-5 && abs(g.pointer[1] - 0.8) < 1e-5)
        let small = GradientClipping.clip(g, maxNorm: 10)   // below the limit: untouched
        #expect(abs(small - 1) < 1e-5 && abs(g.pointer[0] - 0.6) < 1e-5)
    }

    @Test func cosineScheduleWithWarmup() {
        let s = LearningRateSchedule(kind: .cosine, peak: 1e-3, minimum: 1e-4, warmupSteps: 100, totalSteps: 2000)
        #expect(abs(s.rate(at: 0) - 1e-3 / 101) < 1e-12)
        #expect(abs(s.rate(at: 99) - 1e-3 * 100 / 101) < 1e-12)
        #expect(abs(s.rate(at: 100) - 1e-3) < 1e-12)
        #expect(abs(s.rate(at: 1050) - 5.5e-4) < 1e-9)
        #expect(abs(s.rate(at: 2000) - 1e-4) < 1e-12)
        let c = LearningRateSchedule(kind: .constant, peak: 1e-3, minimum: 0, warmupSteps: 0, totalSteps: 10)
        #expect(c.rate(at: 0) == 1e-3 && c.rate(at: 9) == 1e-3)
    }
}
