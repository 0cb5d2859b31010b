// AdamW against a scalar reference, clipping, and the learning-rate schedule.
import Testing
import Foundation
import Models
import Training
import Kernels
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

    /// Both kernel ISAs run the same operations in the same order, so ranks on AVX2 and AVX-512
    /// CPUs keep bit-identical replicas: every parameter and moment after 3 steps, over segments
    /// whose ends fall inside 16-lane vectors (the masked edges) and a clipping scale.
    @Test func adamWPathsGiveTheSameBits() {
        var layout = ParameterLayout()
        layout.add("matrix", [7, 9], decay: true)
        layout.add("bias", [5])
        layout.add("more", [3, 11], decay: true)
        let n = layout.count
        let start = randomFloats(n, seed: 31)
        var results: [[Float]] = []
        for isa in KernelISA.available {
            let p = FlatBuffer(count: n), g = FlatBuffer(count: n)
            for i in 0..<n { p.pointer[i] = start[i] }
            let opt = AdamW(layout: layout, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1)
            for step in 1...3 {
                let grads = randomFloats(n, seed: UInt64(40 + step))
                for i in 0..<n { g.pointer[i] = grads[i] }
                opt.step(parameters: p, gradients: g, learningRate: 0.003, gradientScale: 0.6, isa: isa)
            }
            results.append((0..<n).map { p.pointer[$0] } + (0..<n).map { opt.m.pointer[$0] } + (0..<n).map { opt.v.pointer[$0] })
        }
        #expect(results.allSatisfy { $0 == results[0] }, "\(KernelISA.available)")
        #expect(results[0] != start + start + start)   // the steps moved something
    }

    @Test func clippingScalesToTheMaximumNorm() {
        let g = FlatBuffer(count: 4)
        for (i, x) in [Float(3), 4, 0, 0].enumerated() { g.pointer[i] = x }
        let norm = GradientClipping.norm(g)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(GradientClipping.factor(norm: norm, maxNorm: 1) - 0.2) < 1e-6)
        #expect(GradientClipping.factor(norm: norm, maxNorm: 10) == 1)        // below the limit: untouched
        #expect(GradientClipping.factor(norm: norm, maxNorm: 0) == 1)         // 0 turns clipping off
        #expect(GradientClipping.factor(norm: .infinity, maxNorm: 1) == 1)
    }

    /// A step with gradientScale s equals a step on gradients multiplied by s beforehand.
    @Test func gradientScaleEqualsScaledGradients() {
        var layout = ParameterLayout()
        layout.add("matrix", [3, 5], decay: true)
        layout.add("bias", [5])
        let n = layout.count
        let start = randomFloats(n, seed: 7), grads = randomFloats(n, seed: 8)
        let scaled = FlatBuffer(count: n), unscaled = FlatBuffer(count: n)
        let g = FlatBuffer(count: n), gs = FlatBuffer(count: n)
        for i in 0..<n {
            scaled.pointer[i] = start[i]; unscaled.pointer[i] = start[i]
            g.pointer[i] = grads[i]; gs.pointer[i] = grads[i] * 0.25
        }
        let a = AdamW(layout: layout, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
        let b = AdamW(layout: layout, beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1)
        for _ in 0..<3 {
            a.step(parameters: scaled, gradients: g, learningRate: 0.01, gradientScale: 0.25)
            b.step(parameters: unscaled, gradients: gs, learningRate: 0.01)
        }
        for i in 0..<n { #expect(scaled.pointer[i] == unscaled.pointer[i], "parameter \(i)") }
        #expect(g.pointer[0] == grads[0])   // the gradient buffer itself is not scaled
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
