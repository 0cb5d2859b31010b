// Linear's fused paths: GELU inside the forward job, GELU′ inside the backward job, and the
// backward's three products as one parallel job, checked against plain loops and the unfused layers.
import Testing
import Kernels
import TestSupport
import Support

@Suite struct LinearFusionTests {
    /// Rows ≥ inputs (each thread's rows, then its GELU), and fewer rows than inputs (the other split).
    @Test(arguments: [(40, 24, 20), (5, 24, 20), (33, 16, 48)])
    func fusedGELUMatchesTheSeparateLayers(_ shape: (N: Int, I: Int, O: Int)) {
        ThreadPool.configure(threads: 2)
        let (N, I, O) = shape
        let x = Buf(randomFloats(N * I, seed: 31)), weight = Buf(randomFloats(I * O, seed: 32))
        let bias = Buf(randomFloats(O, seed: 33))
        // Forward: out and gelu(out) in one call, against out then GELU.forward.
        let out = Buf(zeros: N * O), activated = Buf(zeros: N * O)
        Linear.forward(out: out.p, gelu: activated.p, inp: x.p, weight: weight.p, bias: bias.p,
                       rows: N, inputs: I, outputs: O)
        let plainOut = Buf(zeros: N * O), plainActivated = Buf(zeros: N * O)
        Linear.forward(out: plainOut.p, inp: x.p, weight: weight.p, bias: bias.p, rows: N, inputs: I, outputs: O)
        GELU.forward(out: plainActivated.p, inp: plainOut.p, count: N * O)
        #expect(out.array == plainOut.array)
        #expect(activated.array == plainActivated.array)
        for r in 0..<N {
            for o in 0..<O {
                var sum = Double(bias.p[o])
                for i in 0..<I { sum += Double(x.p[r * I + i]) * Double(weight.p[i * O + o]) }
                #expect(abs(Double(out.p[r * O + o]) - sum) <= 1e-4 * max(1, abs(sum)))
            }
        }

        // Backward of a layer whose input was GELU(pre): dpre = (dout·Wᵀ) ⊙ GELU′(pre).
        let pre = Buf(randomFloats(N * I, seed: 34, scale: 3)), geluOfPre = Buf(zeros: N * I)
        GELU.forward(out: geluOfPre.p, inp: pre.p, count: N * I)
        let dout = randomFloats(N * O, seed: 35)
        let dpre = Buf(randomFloats(N * I, seed: 36)), dw = Buf(zeros: I * O), db = Buf(zeros: O)
        Linear.backward(dinp: dpre.p, dweight: dw.p, dbias: db.p, dout: dout, inp: geluOfPre.p, weight: weight.p,
                        geluInput: pre.p, rows: N, inputs: I, outputs: O)
        let dact = Buf(zeros: N * I), plainDpre = Buf(zeros: N * I), plainDw = Buf(zeros: I * O), plainDb = Buf(zeros: O)
        Linear.backward(dinp: dact.p, dweight: plainDw.p, dbias: plainDb.p, dout: dout, inp: geluOfPre.p,
                        weight: weight.p, rows: N, inputs: I, outputs: O)
        GELU.backward(dinp: plainDpre.p, inp: pre.p, dout: dact.p, count: N * I)
        #expect(dpre.array == plainDpre.array)
        #expect(dw.array == plainDw.array)
        #expect(db.array == plainDb.array)
        // …and every part of every output is there (no range skipped by the split).
        for i in 0..<I {
            for o in 0..<O {
                var sum = 0.0
                for r in 0..<N { sum += Double(geluOfPre.p[r * I + i]) * Double(dout[r * O + o]) }
                #expect(abs(Double(dw.p[i * O + o]) - sum) <= 1e-4 * max(1, abs(sum)))
            }
        }
        for o in 0..<O {
            let sum = (0..<N).reduce(0.0) { $0 + Double(dout[$1 * O + o]) }
            #expect(abs(Double(db.p[o]) - sum) <= 1e-4 * max(1, abs(sum)))
        }
        for r in 0..<N {
            for i in 0..<I {
                var sum = 0.0
                for o in 0..<O { sum += Double(dout[r * O + o]) * Double(weight.p[i * O + o]) }
                #expect(abs(Double(dact.p[r * I + i]) - sum) <= 1e-4 * max(1, abs(sum)))
            }
        }
    }
}
