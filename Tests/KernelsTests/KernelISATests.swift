// The run-time kernel ISA: the choice from cpuid and LOOM_KERNELS_ISA as a pure function, and every
// 16-lane AVX-512 kernel against the 8-lane Swift path on the same inputs (where this CPU has
// AVX-512; the choice tests run everywhere).
import Testing
import Foundation
import Kernels

@Suite struct KernelISATests {
    let avx512CPU = CPUFeatures(vendor: "AuthenticAMD", family: 26, model: 2,
                                extensions: [.avx, .avx2, .fma, .avx512f, .avx512bw, .avx512vl, .avx512dq, .avx512cd])
    let avx2CPU = CPUFeatures(vendor: "AuthenticAMD", family: 25, model: 1, extensions: [.avx, .avx2, .fma])

    @Test func choosesTheWidestTheCPUAndBuildRun() {
        #expect(KernelISA.choose(cpu: avx512CPU, avx512Compiled: true, requested: nil)
                == .init(isa: .avx512, chosenBy: "cpuid", error: nil))
        #expect(KernelISA.choose(cpu: avx2CPU, avx512Compiled: true, requested: nil).isa == .avx2)
        #expect(KernelISA.choose(cpu: avx512CPU, avx512Compiled: false, requested: nil).isa == .avx2)
        #expect(KernelISA.choose(cpu: avx512CPU, avx512Compiled: true, requested: "auto").isa == .avx512)
        // AVX-512 F without DQ (Knights Landing) is not enough.
        var partial = avx512CPU
        partial.extensions.remove(.avx512dq)
        #expect(KernelISA.choose(cpu: partial, avx512Compiled: true, requested: nil).isa == .avx2)
    }

    @Test func overrideForcesOrIsRefused() {
        #expect(KernelISA.choose(cpu: avx512CPU, avx512Compiled: true, requested: "AVX2")
                == .init(isa: .avx2, chosenBy: "LOOM_KERNELS_ISA", error: nil))
        let refused = KernelISA.choose(cpu: avx2CPU, avx512Compiled: true, requested: "avx512")
        #expect(refused.isa == .avx2 && refused.error == .unsupported(avx2CPU.vectorLevel))
        #expect(refused.error!.description.contains("LOOM_KERNELS_ISA=avx512"))
        let unknown = KernelISA.choose(cpu: avx512CPU, avx512Compiled: true, requested: "sse9")
        #expect(unknown.isa == .avx512 && unknown.error == .unknown("sse9"))
    }

    @Test func thisProcessRunsTheCPUsBest() {
        let cpu = CPUFeatures.current()
        if ProcessInfo.processInfo.environment["LOOM_KERNELS_ISA"] == nil {
            #expect(KernelISA.selected == (KernelISA.supportsAVX512(cpu) ? .avx512 : .avx2))
        }
        #expect(KernelISA.available.contains(.avx2))
        #expect(KernelISA.available.contains(.avx512) == KernelISA.supportsAVX512(cpu))
    }

    /// Deterministic values in [-scale, scale).
    func values(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return scale * (Float(state >> 40) / Float(1 << 23) - 1)
        }
    }

    func worstDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    }

    /// Runs `body` once per ISA on a copy of `input`, returning each result.
    func perISA(_ input: [Float], _ body: (UnsafeMutablePointer<Float>, KernelISA) -> Void) -> [KernelISA: [Float]] {
        var out: [KernelISA: [Float]] = [:]
        for isa in KernelISA.available {
            var copy = input
            copy.withUnsafeMutableBufferPointer { body($0.baseAddress!, isa) }
            out[isa] = copy
        }
        return out
    }

    @Test(arguments: [1, 7, 8, 15, 16, 17, 33, 64, 100])
    func softmaxRowsAgree(n: Int) {
        let input = values(n, seed: UInt64(n), scale: 8)
        let rows = perISA(input) { p, isa in Softmax.row(p, count: n, isa: isa) }
        // The reference in double precision.
        let top = Double(input.max()!), e = input.map { Foundation.exp(Double($0) - top) }, total = e.reduce(0, +)
        for (isa, row) in rows {
            let worst = zip(row, e).map { abs(Double($0) - $1 / total) }.max()!
            #expect(worst < 1e-6, "\(isa) n \(n): \(worst)")
        }
        let sums = perISA(input) { p, isa in p[0] = Softmax.exponentiate(p, count: n, subtract: 0.5, scale: 0.7, isa: isa) }
        if let wide = sums[.avx512] { #expect(abs(wide[0] - sums[.avx2]![0]) <= 1e-5 * abs(sums[.avx2]![0]), "n \(n)") }
        for isa in KernelISA.available {
            input.withUnsafeBufferPointer { #expect(Softmax.maximum($0.baseAddress!, count: n, isa: isa) == input.max()!) }
        }
    }

    @Test(arguments: [(5, 8), (16, 16), (17, 32), (40, 64), (0, 3)])
    func softmaxBackwardRowsAgree(limit: Int, count: Int) {
        var p = values(count, seed: 3).map { abs($0) }
        let total = p.prefix(limit).reduce(0, +)
        for j in p.indices { p[j] = j < limit ? p[j] / max(total, 1e-6) : 0.25 }
        let d = values(count, seed: 4)
        let rows = p.withUnsafeBufferPointer { pp in
            perISA(d) { dp, isa in Softmax.backwardRow(pp.baseAddress!, dp, limit: limit, count: count, scale: 0.125, isa: isa) }
        }
        let dot = (0..<limit).reduce(0.0) { $0 + Double(p[$1]) * Double(d[$1]) }
        for (isa, row) in rows {
            for j in 0..<count {
                let expected = j < limit ? Double(p[j]) * (Double(d[j]) - dot) * 0.125 : 0
                #expect(abs(Double(row[j]) - expected) < 1e-6, "\(isa) limit \(limit) j \(j)")
            }
        }
    }

    /// GELU's two paths run the same operations in the same order: the same values bit for bit.
    @Test func geluPathsGiveTheSameValues() {
        let n = 4099
        let x = values(n, seed: 11, scale: 9) + [0, -0.0, 1e-30, 87, -87, 10, -10]
        let dout = values(x.count, seed: 12)
        var results: [KernelISA: ([Float], [Float])] = [:]
        for isa in KernelISA.available {
            var y = [Float](repeating: .nan, count: x.count), dx = y
            GELU.forward(out: &y, inp: x, count: x.count, isa: isa)
            GELU.backward(dinp: &dx, inp: x, dout: dout, count: x.count, isa: isa)
            results[isa] = (y, dx)
        }
        let (y, dx) = results[.avx2]!
        for i in x.indices {
            let reference = 0.5 * Double(x[i]) * (1 + Foundation.tanh(0.7978845608028654 * (Double(x[i]) + 0.044715 * pow(Double(x[i]), 3))))
            #expect(abs(Double(y[i]) - reference) < 1e-5 * max(1, abs(reference)), "x \(x[i])")
        }
        if let (wide, dwide) = results[.avx512] {
            #expect(wide == y, "forward: worst \(worstDifference(wide, y))")
            #expect(dwide == dx, "backward: worst \(worstDifference(dwide, dx))")
        }
    }

    @Test(arguments: [(3, 128), (5, 384), (4, 37), (2, 16), (3, 7)])
    func layerNormPathsAgree(rows N: Int, channels C: Int) {
        let x = values(N * C, seed: 21, scale: 3).enumerated().map { $0.element + Float($0.offset % 5) }
        let w = values(C, seed: 22), b = values(C, seed: 23), dout = values(N * C, seed: 24)
        var results: [KernelISA: [[Float]]] = [:]
        for isa in KernelISA.available {
            var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
            LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: N, channels: C, isa: isa)
            var dinp = values(N * C, seed: 25), dw = values(C, seed: 26), db = values(C, seed: 27)
            LayerNorm.backward(dinp: &dinp, dweight: &dw, dbias: &db, dout: dout, inp: x, weight: w, mean: mean, rstd: rstd,
                               rows: N, channels: C, isa: isa)
            results[isa] = [out, mean, rstd, dinp, dw, db]
        }
        // The 8-lane path against a double-precision forward.
        let narrow = results[.avx2]!
        for r in 0..<N {
            let row = x[(r * C)..<((r + 1) * C)].map(Double.init)
            let m = row.reduce(0, +) / Double(C)
            let s = 1 / ((row.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(C) + 1e-5).squareRoot())
            for c in 0..<C {
                let expected = (row[c] - m) * s * Double(w[c]) + Double(b[c])
                #expect(abs(Double(narrow[0][r * C + c]) - expected) < 1e-5, "row \(r) channel \(c)")
            }
        }
        if let wide = results[.avx512] {
            for (name, pair) in zip(["out", "mean", "rstd", "dinp", "dweight", "dbias"], zip(wide, narrow)) {
                #expect(worstDifference(pair.0, pair.1) < 2e-6, "\(name) N \(N) C \(C): \(worstDifference(pair.0, pair.1))")
            }
        }
    }
}
