// The erf form of GELU (BERT's): the vectorised erf against Foundation's erf in double precision,
// GELU and its derivative against x·Φ(x) in double precision and central differences, the kernels
// (whole buffers with tails, and fused into Linear) against the scalar values, and the tanh form
// untouched by the form argument.
import Testing
import Foundation
import Kernels
import TestSupport
import Support

@Suite struct GELUErfTests {
    /// x·Φ(x) = ½·x·(1 + erf(x/√2)) in double precision.
    static func reference(_ x: Double) -> Double { 0.5 * x * (1 + Foundation.erf(x / 2.0.squareRoot())) }

    @Test func erfMatchesFoundation() {
        var worst = 0.0, worstAt: Float = 0
        for i in 0...240_000 {
            let x = -12 + Float(i) * 1e-4
            let error = abs(Double(GELU.erf(x)) - Foundation.erf(Double(x)))
            if error > worst { worst = error; worstAt = x }
        }
        print("erf: worst absolute error \(worst) at \(worstAt)")
        #expect(worst < 1.5e-7, "worst absolute error \(worst) at \(worstAt)")
        #expect(GELU.erf(0) == 0 && GELU.erf(30) == 1 && GELU.erf(-30) == -1)
    }

    @Test func exactGELUAndItsDerivativeMatchDoublePrecision() {
        var worstValue = 0.0, worstDerivative = 0.0, worstDifference = 0.0
        let h = 1e-4
        for i in 0...40_000 {
            let x = -10 + Float(i) * 5e-4, xd = Double(x)
            worstValue = max(worstValue, abs(Double(GELU.value(x, form: .erf)) - Self.reference(xd)) / max(1, abs(xd)))
            let exact = 0.5 * (1 + Foundation.erf(xd / 2.0.squareRoot())) + xd * Foundation.exp(-xd * xd / 2) / (2 * Double.pi).squareRoot()
            worstDerivative = max(worstDerivative, abs(Double(GELU.derivative(x, form: .erf)) - exact))
            // The closed form is GELU's derivative: central differences of x·Φ(x).
            let numeric = (Self.reference(xd + h) - Self.reference(xd - h)) / (2 * h)
            worstDifference = max(worstDifference, abs(numeric - exact))
        }
        print("erf GELU: value error \(worstValue), derivative error \(worstDerivative), finite differences \(worstDifference)")
        #expect(worstValue < 2e-7)
        #expect(worstDerivative < 5e-7)
        #expect(worstDifference < 1e-7)
        // Differs from the tanh form where the approximation shows (≈ 1e-4 near |x| ≈ 2).
        #expect(abs(GELU.value(2, form: .erf) - GELU.value(2, form: .tanh)) > 1e-5)
    }

    /// The kernel's derivative against central differences of the kernel itself (float, a coarse step).
    @Test func kernelDerivativeMatchesItsFiniteDifferences() {
        var worst: Float = 0
        let h: Float = 1e-2
        for i in 0...1200 {
            let x = -6 + Float(i) * 0.01
            let numeric = (Double(GELU.value(x + h, form: .erf)) - Double(GELU.value(x - h, form: .erf))) / Double(2 * h)
            worst = max(worst, Float(abs(numeric - Double(GELU.derivative(x, form: .erf)))))
        }
        #expect(worst < 1e-4, "worst difference \(worst)")
    }

    /// Buffers of odd lengths (vector body and scalar tail) give the scalar values; backward may
    /// run in place; the tanh form ignores nothing (default and explicit agree bit for bit).
    @Test func kernelsMatchTheScalarValues() {
        ThreadPool.configure(threads: 2)
        for n in [1, 7, 8, 13, 3001] {
            let x = Buf(randomFloats(n, seed: UInt64(n), scale: 6)), dout = Buf(randomFloats(n, seed: UInt64(n) + 1))
            let y = Buf(zeros: n), dx = Buf(zeros: n)
            GELU.forward(out: y.p, inp: x.p, count: n, form: .erf)
            GELU.backward(dinp: dx.p, inp: x.p, dout: dout.p, count: n, form: .erf)
            for i in 0..<n {
                #expect(y.p[i] == GELU.value(x.p[i], form: .erf))
                #expect(dx.p[i] == GELU.derivative(x.p[i], form: .erf) * dout.p[i])
            }
            GELU.backward(dinp: dout.p, inp: x.p, dout: dout.p, count: n, form: .erf)
            #expect(dout.array == dx.array)
            let tanhDefault = Buf(zeros: n), tanhExplicit = Buf(zeros: n)
            GELU.forward(out: tanhDefault.p, inp: x.p, count: n)
            GELU.forward(out: tanhExplicit.p, inp: x.p, count: n, form: .tanh)
            #expect(tanhDefault.array == tanhExplicit.array)
            #expect(tanhDefault.array != y.array)
        }
    }

    /// The 8-lane (Swift) and 16-lane (CVectorKernels, where the CPU has AVX-512) paths run the
    /// same operations in the same order: the same values bit for bit, tails and edge values included.
    @Test func erfPathsGiveTheSameValues() {
        let x = randomFloats(4099, seed: 13, scale: 9) + [0, -0.0, 1e-30, 1, -1, 4, -4, 5.7, -5.7, 87, -87, 300, -300]
        let dout = randomFloats(x.count, seed: 14)
        var results: [KernelISA: ([Float], [Float])] = [:]
        for isa in KernelISA.available {
            var y = [Float](repeating: .nan, count: x.count), dx = y
            GELU.forward(out: &y, inp: x, count: x.count, form: .erf, isa: isa)
            GELU.backward(dinp: &dx, inp: x, dout: dout, count: x.count, form: .erf, isa: isa)
            results[isa] = (y, dx)
        }
        let (y, dx) = results[.avx2]!
        for i in x.indices {
            #expect(abs(Double(y[i]) - Self.reference(Double(x[i]))) < 2e-7 * max(1, abs(Double(x[i]))), "x \(x[i])")
        }
        if let (wide, dwide) = results[.avx512] {
            #expect(wide == y, "forward differs at \(x.indices.filter { wide[$0] != y[$0] }.prefix(5).map { x[$0] })")
            #expect(dwide == dx, "backward differs at \(x.indices.filter { dwide[$0] != dx[$0] }.prefix(5).map { x[$0] })")
        } else {
            print("erf GELU: no AVX-512 on this CPU, only the 8-lane path checked")
        }
    }

    /// Linear's fused erf GELU (forward) and GELU′ (backward) equal the separate layers.
    @Test(arguments: [(40, 24, 20), (5, 24, 20)])
    func fusedErfGELUMatchesTheSeparateLayers(_ shape: (N: Int, I: Int, O: Int)) {
        ThreadPool.configure(threads: 2)
        let (N, I, O) = shape
        let x = Buf(randomFloats(N * I, seed: 41)), weight = Buf(randomFloats(I * O, seed: 42))
        let bias = Buf(randomFloats(O, seed: 43))
        let out = Buf(zeros: N * O), activated = Buf(zeros: N * O)
        Linear.forward(out: out.p, gelu: activated.p, geluForm: .erf, inp: x.p, weight: weight.p, bias: bias.p,
                       rows: N, inputs: I, outputs: O)
        let plain = Buf(zeros: N * O)
        GELU.forward(out: plain.p, inp: out.p, count: N * O, form: .erf)
        #expect(activated.array == plain.array)

        let pre = Buf(randomFloats(N * I, seed: 44, scale: 3)), geluOfPre = Buf(zeros: N * I)
        GELU.forward(out: geluOfPre.p, inp: pre.p, count: N * I, form: .erf)
        let dout = randomFloats(N * O, seed: 45)
        let dpre = Buf(zeros: N * I), dw = Buf(zeros: I * O), db = Buf(zeros: O)
        Linear.backward(dinp: dpre.p, dweight: dw.p, dbias: db.p, dout: dout, inp: geluOfPre.p, weight: weight.p,
                        geluInput: pre.p, geluForm: .erf, rows: N, inputs: I, outputs: O)
        let dact = Buf(zeros: N * I), plainDpre = Buf(zeros: N * I), plainDw = Buf(zeros: I * O), plainDb = Buf(zeros: O)
        Linear.backward(dinp: dact.p, dweight: plainDw.p, dbias: plainDb.p, dout: dout, inp: geluOfPre.p,
                        weight: weight.p, rows: N, inputs: I, outputs: O)
        GELU.backward(dinp: plainDpre.p, inp: pre.p, dout: dact.p, count: N * I, form: .erf)
        #expect(dpre.array == plainDpre.array)
        #expect(dw.array == plainDw.array && db.array == plainDb.array)
    }
}

/// Rows: gather (plain and accumulating), scatter-add with repeated indices, the row add and the
/// column sums, against plain loops.
@Suite struct RowsTests {
    @Test func gatherScatterAndBias() {
        ThreadPool.configure(threads: 2)
        let M = 9, C = 37, tableRows = 4
        let table = Buf(randomFloats(tableRows * C, seed: 1)), indices: [Int32] = [3, 0, 3, 1, 1, 2, 0, 3, 3]
        let out = Buf(randomFloats(M * C, seed: 2)), before = out.array
        Rows.gather(out: out.p, table: table.p, indices: indices, rows: M, width: C, accumulate: true)
        for m in 0..<M { for c in 0..<C { #expect(out.p[m * C + c] == before[m * C + c] + table.p[Int(indices[m]) * C + c]) } }
        Rows.gather(out: out.p, table: table.p, indices: indices, rows: M, width: C)
        for m in 0..<M { for c in 0..<C { #expect(out.p[m * C + c] == table.p[Int(indices[m]) * C + c]) } }

        let grad = Buf(randomFloats(tableRows * C, seed: 3)), start = grad.array, inp = Buf(randomFloats(M * C, seed: 4))
        Rows.scatterAdd(table: grad.p, inp: inp.p, indices: indices, rows: M, width: C)
        for r in 0..<tableRows {
            for c in 0..<C {
                var sum = start[r * C + c]
                for m in 0..<M where indices[m] == Int32(r) { sum += inp.p[m * C + c] }
                #expect(grad.p[r * C + c] == sum)
            }
        }

        let row = Buf(randomFloats(C, seed: 5)), biased = Buf(inp.array)
        Rows.addRow(biased.p, row: row.p, rows: M, width: C)
        for m in 0..<M { for c in 0..<C { #expect(biased.p[m * C + c] == inp.p[m * C + c] + row.p[c]) } }
        let sums = Buf(randomFloats(C, seed: 6)), sumsBefore = sums.array
        Rows.addColumnSums(into: sums.p, from: inp.p, rows: M, width: C)
        for c in 0..<C {
            var s = sumsBefore[c]
            for m in 0..<M { s += inp.p[m * C + c] }
            #expect(abs(sums.p[c] - s) <= 1e-6 * max(1, abs(s)))
        }
    }
}
