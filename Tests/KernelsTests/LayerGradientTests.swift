// Finite-difference gradient checks for every kernel layer: the analytic backward of each must
// match central differences of its forward.
import Testing
import Foundation
import Kernels
import TestSupport

/// Worst relative error allowed in float32 central differences.
let tolerance = 2e-2

@Suite struct LayerGradientTests {
    @Test func encoder() {
        let B = 2, T = 3, C = 4, V = 5
        let tokens: [Int32] = [1, 4, 1, 0, 2, 1]           // repeated tokens must accumulate
        let wte = Buf(randomFloats(V * C, seed: 1)), wpe = Buf(randomFloats(T * C, seed: 2))
        let out = Buf(zeros: B * T * C), w = randomFloats(B * T * C, seed: 3)
        func loss() -> Double {
            Encoder.forward(out: out.p, tokens: tokens, wte: wte.p, wpe: wpe.p, batch: B, time: T, channels: C)
            return weightedSum(out.p, w)
        }
        let dwte = Buf(zeros: V * C), dwpe = Buf(zeros: T * C)
        Encoder.backward(dwte: dwte.p, dwpe: dwpe.p, dout: w, tokens: tokens, batch: B, time: T, channels: C)
        let r1 = gradCheck(values: wte.p, analytic: dwte.array, indices: Array(0..<(V * C)), loss: loss)
        let r2 = gradCheck(values: wpe.p, analytic: dwpe.array, indices: Array(0..<(T * C)), loss: loss)
        #expect(r1.worstRelativeError < tolerance, "wte: \(r1)")
        #expect(r2.worstRelativeError < tolerance, "wpe: \(r2)")
    }

    @Test func layerNorm() {
        let N = 4, C = 16
        let x = Buf(randomFloats(N * C, seed: 4, scale: 2)), weight = Buf(randomFloats(C, seed: 5).map { 1 + $0 / 2 })
        let bias = Buf(randomFloats(C, seed: 6)), out = Buf(zeros: N * C), mean = Buf(zeros: N), rstd = Buf(zeros: N)
        let w = randomFloats(N * C, seed: 7)
        func loss() -> Double {
            LayerNorm.forward(out: out.p, mean: mean.p, rstd: rstd.p, inp: x.p, weight: weight.p, bias: bias.p, rows: N, channels: C)
            return weightedSum(out.p, w)
        }
        _ = loss()
        let dx = Buf(zeros: N * C), dw = Buf(zeros: C), db = Buf(zeros: C)
        LayerNorm.backward(dinp: dx.p, dweight: dw.p, dbias: db.p, dout: w, inp: x.p, weight: weight.p,
                           mean: mean.p, rstd: rstd.p, rows: N, channels: C)
        for (name, values, grad) in [("inp", x, dx), ("weight", weight, dw), ("bias", bias, db)] {
            let r = gradCheck(values: values.p, analytic: grad.array, indices: Array(0..<values.count), step: 1e-2, loss: loss)
            #expect(r.worstRelativeError < tolerance, "\(name): \(r)")
        }
    }

    @Test func linear() {
        let N = 5, I = 6, O = 7
        let x = Buf(randomFloats(N * I, seed: 8)), weight = Buf(randomFloats(I * O, seed: 9))
        let bias = Buf(randomFloats(O, seed: 10)), out = Buf(zeros: N * O), w = randomFloats(N * O, seed: 11)
        func loss() -> Double {
            Linear.forward(out: out.p, inp: x.p, weight: weight.p, bias: bias.p, rows: N, inputs: I, outputs: O)
            return weightedSum(out.p, w)
        }
        let dx = Buf(randomFloats(N * I, seed: 12)), dw = Buf(zeros: I * O), db = Buf(zeros: O)
        Linear.backward(dinp: dx.p, dweight: dw.p, dbias: db.p, dout: w, inp: x.p, weight: weight.p,
                        rows: N, inputs: I, outputs: O)   // dinp overwritten despite its old contents
        for (name, values, grad) in [("inp", x, dx), ("weight", weight, dw), ("bias", bias, db)] {
            let r = gradCheck(values: values.p, analytic: grad.array, indices: Array(0..<values.count), loss: loss)
            #expect(r.worstRelativeError < tolerance, "\(name): \(r)")
        }
        // accumulateInput adds instead of overwriting
        let before = dx.array
        Linear.backward(dinp: dx.p, dweight: dw.p, dbias: nil, dout: w, inp: x.p, weight: weight.p,
                        rows: N, inputs: I, outputs: O, accumulateInput: true)
        for i in 0..<(N * I) { #expect(abs(dx.p[i] - 2 * before[i]) <= 1e-5 * max(1, abs(before[i]))) }
    }

    @Test func gelu() {
        let N = 40
        let x = Buf(randomFloats(N, seed: 13, scale: 4)), out = Buf(zeros: N), w = randomFloats(N, seed: 14)
        func loss() -> Double { GELU.forward(out: out.p, inp: x.p, count: N); return weightedSum(out.p, w) }
        let dx = Buf(zeros: N)
        GELU.backward(dinp: dx.p, inp: x.p, dout: w, count: N)
        let r = gradCheck(values: x.p, analytic: dx.array, indices: Array(0..<N), step: 1e-2, loss: loss)
        #expect(r.worstRelativeError < tolerance, "\(r)")
    }

    @Test func crossEntropyWithSmoothingAndPadding() {
        let N = 6, V = 11
        let logits = Buf(randomFloats(N * V, seed: 15, scale: 3)), work = Buf(zeros: N * V), losses = Buf(zeros: N)
        let targets: [Int32] = [3, 0, -1, 10, 7, -1]
        for eps: Float in [0, 0.1] {
            func loss() -> Double {
                work.p.update(from: logits.p, count: N * V)
                return CrossEntropy.forward(losses: losses.p, logits: work.p, targets: targets, rows: N,
                                            vocabulary: V, labelSmoothing: eps).sum
            }
            let total = loss()
            #expect(total > 0)
            CrossEntropy.backward(dlogits: work.p, targets: targets, rows: N, vocabulary: V, scale: 1, labelSmoothing: eps)
            let r = gradCheck(values: logits.p, analytic: work.array, indices: Array(0..<(N * V)), step: 1e-2, loss: loss)
            #expect(r.worstRelativeError < tolerance, "ε=\(eps): \(r)")
        }
        // Padding rows contribute neither loss nor gradient.
        work.p.update(from: logits.p, count: N * V)
        CrossEntropy.forward(losses: losses.p, logits: work.p, targets: targets, rows: N, vocabulary: V)
        #expect(losses.p[2] == 0 && losses.p[5] == 0)
    }

    /// Self-attention (causal), cross-attention with key padding, and attention dropout, with the
    /// block products on SmallGemm and on Gemm.serial (Loom's kernel taking the causal band over
    /// whole heads where it runs, else OpenBLAS in blocks).
    @Test(arguments: [(4, 4, true, false, Float(0)), (3, 5, false, true, Float(0)), (4, 4, true, false, Float(0.3)),
                      (20, 20, true, false, Float(0))], [true, false])
    func attention(_ c: (Tq: Int, Tk: Int, causal: Bool, padded: Bool, dropout: Float), smallBlocks: Bool) {
        let (Tq, Tk, causal, padded, dropout) = c
        let B = 2, H = 2, D = 3, C = H * D
        var shape = AttentionShape(batch: B, queryLength: Tq, keyLength: Tk, heads: H, headSize: D, causal: causal)
        shape.smallBlocks = smallBlocks
        let q = Buf(randomFloats(B * Tq * C, seed: 16)), k = Buf(randomFloats(B * Tk * C, seed: 17))
        let v = Buf(randomFloats(B * Tk * C, seed: 18)), out = Buf(zeros: B * Tq * C)
        let probs = Buf(zeros: shape.probabilityCount), dropped = Buf(zeros: shape.probabilityCount)
        let keyLengths: [Int32] = [Int32(Tk), Int32(Tk - 2)]
        let w = randomFloats(B * Tq * C, seed: 19)
        func loss() -> Double {
            keyLengths.withUnsafeBufferPointer { kl in
                Attention.forward(out: out.p, outStride: C, probs: probs.p, q: q.p, qStride: C, k: k.p, kStride: C,
                                  v: v.p, vStride: C, shape: shape, keyLengths: padded ? kl.baseAddress : nil,
                                  dropout: dropout, dropoutKey: 42, dropoutCounter: 5, probsDropped: dropped.p)
            }
            return weightedSum(out.p, w)
        }
        _ = loss()
        if padded {   // masked keys get exactly zero probability
            for h in 0..<H { for i in 0..<Tq { for j in (Tk - 2)..<Tk { #expect(probs.p[((1 * H + h) * Tq + i) * Tk + j] == 0) } } }
        }
        let dq = Buf(zeros: q.count), dk = Buf(zeros: k.count), dv = Buf(zeros: v.count), dprobs = Buf(zeros: shape.probabilityCount)
        keyLengths.withUnsafeBufferPointer { kl in
            Attention.backward(dq: dq.p, dqStride: C, dk: dk.p, dkStride: C, dv: dv.p, dvStride: C, dprobs: dprobs.p,
                               dout: w, doutStride: C, probs: probs.p, q: q.p, qStride: C, k: k.p, kStride: C,
                               v: v.p, vStride: C, shape: shape, keyLengths: padded ? kl.baseAddress : nil,
                               dropout: dropout, dropoutKey: 42, dropoutCounter: 5, probsDropped: dropped.p)
        }
        for (name, values, grad) in [("q", q, dq), ("k", k, dk), ("v", v, dv)] {
            let r = gradCheck(values: values.p, analytic: grad.array, indices: Array(0..<values.count), step: 1e-2, loss: loss)
            #expect(r.worstRelativeError < tolerance, "d\(name) (Tq \(Tq), Tk \(Tk), causal \(causal), padded \(padded), dropout \(dropout), small blocks \(smallBlocks)): \(r)")
        }
    }

    @Test func dropoutIsItsOwnBackwardAndDropsTheRightShare() {
        let N = 20000
        let x = Buf([Float](repeating: 1, count: N)), out = Buf(zeros: N)
        Dropout.forward(out: out.p, inp: x.p, count: N, probability: 0.25, key: 7, counter: 100)
        let kept = out.array.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / Double(N) - 0.75) < 0.02)
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        // In place with the same key and counter gives the same mask.
        Dropout.apply(x.p, count: N, probability: 0.25, key: 7, counter: 100)
        #expect(x.array == out.array)
        // The counter offset shifts the stream: elements 100… of offset 0 equal elements 0… of offset 100.
        let shifted = Buf([Float](repeating: 1, count: N + 100))
        Dropout.apply(shifted.p, count: N + 100, probability: 0.25, key: 7, counter: 0)
        #expect(Array(shifted.array[100...]) == out.array)
    }
}

// The encoder-decoder's input layer: scaled token embedding + fixed sinusoidal positions.
@Suite struct SinusoidalEmbeddingTests {
    @Test func gradientOfTheScaledTable() {
        let B = 2, T = 3, C = 6, V = 5
        let tokens: [Int32] = [1, 4, 1, 0, 2, 1]           // repeated tokens must accumulate
        let table = Buf(randomFloats(V * C, seed: 21)), signal = Buf(zeros: (T + 2) * C)
        SinusoidalEmbedding.signal(into: signal.p, positions: T + 2, channels: C)
        let out = Buf(zeros: B * T * C), w = randomFloats(B * T * C, seed: 22)
        func loss() -> Double {
            SinusoidalEmbedding.forward(out: out.p, tokens: tokens, table: table.p, signal: signal.p, scale: 2.5,
                                        batch: B, time: T, channels: C, firstPosition: 2)
            return weightedSum(out.p, w)
        }
        let dtable = Buf(zeros: V * C)
        SinusoidalEmbedding.backward(dtable: dtable.p, dout: w, tokens: tokens, scale: 2.5, rows: B * T, channels: C)
        let r = gradCheck(values: table.p, analytic: dtable.array, indices: Array(0..<(V * C)), loss: loss)
        #expect(r.worstRelativeError < tolerance, "\(r)")
        // Row (b, t) = 2.5 · table[token] + signal[2 + t].
        _ = loss()
        let row = 4, pos = 2 + row % T
        for c in 0..<C {
            let expected = 2.5 * table.p[Int(tokens[row]) * C + c] + signal.p[pos * C + c]
            #expect(abs(out.p[row * C + c] - expected) < 1e-6)
        }
    }

    /// tensor2tensor's get_timing_signal_1d: sin in the first half, cos in the second, timescales
    /// 1 … 10⁴ geometrically over C/2 − 1 steps.
    @Test func signalLayoutIsTensor2Tensor() {
        let C = 8, P = 50
        let s = Buf(zeros: P * C)
        SinusoidalEmbedding.signal(into: s.p, positions: P, channels: C)
        for pos in [0, 1, 7, 49] {
            for i in 0..<(C / 2) {
                let timescale = pow(10_000.0, Double(i) / Double(C / 2 - 1))
                #expect(abs(Double(s.p[pos * C + i]) - sin(Double(pos) / timescale)) < 1e-6)
                #expect(abs(Double(s.p[pos * C + C / 2 + i]) - cos(Double(pos) / timescale)) < 1e-6)
            }
        }
        // Channel 0 has timescale 1, the last sin channel timescale 10⁴.
        #expect(abs(Double(s.p[7 * C]) - sin(7.0)) < 1e-6 && abs(Double(s.p[7 * C + 3]) - sin(7e-4)) < 1e-6)
    }
}
