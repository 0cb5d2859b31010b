// BFloat16: rounding against an independent nearest-value reference, the vector path against the
// scalar one, and Linear / TiedProjection in bf16 against fp32 layers fed the bf16-rounded
// operands (bf16 × bf16 products are exact in fp32, so only the order of the fp32 sums differs).
import Testing
import Kernels
import TestSupport
import Support

@Suite struct BFloat16Tests {
    /// The nearest bf16 by distance (computed in Double), ties to the even mantissa.
    func nearest(_ x: Float) -> UInt16 {
        let down = x.bitPattern & 0xFFFF_0000
        let lo = Float(bitPattern: down), hi = Float(bitPattern: down &+ 0x1_0000)
        let dl = abs(Double(x) - Double(lo)), dh = abs(Double(x) - Double(hi))
        let pick: UInt32 = dl < dh ? down : dh < dl ? down &+ 0x1_0000 : ((down >> 16) & 1 == 0 ? down : down &+ 0x1_0000)
        return UInt16(pick >> 16)
    }

    @Test func roundingIsToNearestWithTiesToEven() {
        var values: [Float] = [0, -0, 1, -1, 1.00390625, 1.01171875, 3.14159265, -2.71828, 65504, 
                               .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNormalMagnitude]
        // Exact ties: the bit below bf16's last mantissa bit set and nothing under it.
        values += [Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0xBF80_8000)]
        values += randomFloats(20000, seed: 7, scale: 1000) + randomFloats(2000, seed: 8, scale: 1e-3)
        // Normal numbers only: the compute threads treat denormals as zero (so would the reference).
        for x in values where x.isNormal && abs(x) < Float(bitPattern: 0x7F7F_8000) {
            #expect(BFloat16.round(x) == nearest(x), "\(x)")
        }
        #expect(BFloat16.round(Float(bitPattern: 0x3F80_8000)) == 0x3F80)   // 1 + 2⁻⁸: tie, to even
        #expect(BFloat16.round(Float(bitPattern: 0x3F81_8000)) == 0x3F82)   // odd neighbour: up
        #expect(BFloat16.round(.infinity) == 0x7F80 && BFloat16.round(-.infinity) == 0xFF80)
        #expect(BFloat16.widen(BFloat16.round(.nan)).isNaN)
        #expect(BFloat16.widen(BFloat16.round(Float(bitPattern: 0x7F80_0001))).isNaN)   // a NaN that rounding would make ∞
        #expect(BFloat16.round(Float(bitPattern: 0x7F7F_FFFF)) == 0x7F80)   // past the largest bf16: ∞
        #expect(BFloat16.round(Float(bitPattern: 0x0000_8001)) == 0x0001)   // denormals round by the same rule
        #expect(BFloat16.round(Float(bitPattern: 0x0001_8000)) == 0x0002)
        for h: UInt16 in [0x0000, 0x3F80, 0xC049, 0x7F7F, 0x0001] { #expect(BFloat16.round(BFloat16.widen(h)) == h) }
    }

    @Test func vectorPathMatchesScalar() {
        ThreadPool.configure(threads: 2)
        var x = randomFloats(10_003, seed: 9, scale: 50)
        x[5] = .nan; x[17] = .infinity; x[40] = Float(bitPattern: 0x7F80_0001); x[41] = Float(bitPattern: 0x3F80_8000)
        x[42] = Float(bitPattern: 0x0001_8000); x[43] = -Float(bitPattern: 0x0001_8000)   // denormals
        let out = UnsafeMutablePointer<UInt16>.allocate(capacity: x.count)
        defer { out.deallocate() }
        BFloat16.round(x, into: out, count: x.count)
        for i in x.indices {
            if x[i].isNaN {
                #expect(BFloat16.widen(out[i]).isNaN)
            } else if x[i].isSubnormal && BF16Gemm.available {
                // AVX512_BF16's conversion treats a denormal input as zero of its sign.
                #expect(out[i] == (x[i].sign == .minus ? 0x8000 : 0), "\(i)")
            } else {
                #expect(out[i] == BFloat16.round(x[i]), "\(i)")
            }
        }
        // Every length of the vector tail (0…33 values), at an odd offset.
        for count in 0...33 {
            BFloat16.round(x, into: out, range: 101..<(101 + count))
            for i in 101..<(101 + count) { #expect(out[i] == BFloat16.round(x[i]), "\(count): \(i)") }
        }
    }

    func rounded(_ x: [Float]) -> [Float] { x.map { BFloat16.widen(BFloat16.round($0)) } }

    func expectClose(_ a: [Float], _ b: [Float], _ what: String) {
        let scale = b.reduce(Float(0)) { max($0, abs($1)) }
        var worst: Float = 0
        for i in a.indices { worst = max(worst, abs(a[i] - b[i])) }
        #expect(worst <= 2e-5 * max(scale, 1), "\(what): worst \(worst) of scale \(scale)")
    }

    /// Row splits of both forward paths (rows ≥ outputs, and fewer), and backward with and
    /// without accumulation into dinp.
    @Test(arguments: [(48, 24, 20), (6, 24, 40), (33, 16, 48)])
    func linearInBF16IsTheFP32LayerOnRoundedOperands(_ shape: (N: Int, I: Int, O: Int)) {
        ThreadPool.configure(threads: 2)
        let (N, I, O) = shape
        let x = randomFloats(N * I, seed: 11, scale: 2), w = randomFloats(I * O, seed: 12), b = randomFloats(O, seed: 13)
        let dout = randomFloats(N * O, seed: 14)
        let params = Buf(w + b)   // the "model's" flat parameters: weight, then bias
        let weights = BF16Weights(source: params.p, count: params.count)
        let ops = BF16Operands(weights: weights, inputCapacity: N * I, gradientCapacity: N * O)

        let xb = Buf(x), out = Buf(zeros: N * O), gelu = Buf(zeros: N * O)
        Linear.forward(out: out.p, gelu: gelu.p, inp: xb.p, weight: params.p, bias: params.p + I * O,
                       rows: N, inputs: I, outputs: O, bf16: ops)
        let rx = Buf(rounded(x)), rw = Buf(rounded(w)), refOut = Buf(zeros: N * O), refGelu = Buf(zeros: N * O)
        Linear.forward(out: refOut.p, gelu: refGelu.p, inp: rx.p, weight: rw.p, bias: params.p + I * O,
                       rows: N, inputs: I, outputs: O)
        expectClose(out.array, refOut.array, "forward")
        expectClose(gelu.array, refGelu.array, "forward GELU")
        #expect(out.array != Linear_fp32(x: x, w: w, b: b, N: N, I: I, O: O), "bf16 rounding must show")

        for accumulate in [false, true] {
            let start = randomFloats(N * I, seed: 15)
            let dx = Buf(start), dw = Buf(zeros: I * O), db = Buf(zeros: O)
            Linear.backward(dinp: dx.p, dweight: dw.p, dbias: db.p, dout: dout, inp: xb.p, weight: params.p,
                            rows: N, inputs: I, outputs: O, accumulateInput: accumulate, bf16: ops)
            let rdx = Buf(start), rdw = Buf(zeros: I * O), rdb = Buf(zeros: O)
            Linear.backward(dinp: rdx.p, dweight: rdw.p, dbias: rdb.p, dout: rounded(dout), inp: rx.p, weight: rw.p,
                            rows: N, inputs: I, outputs: O, accumulateInput: accumulate)
            expectClose(dx.array, rdx.array, "dinp (accumulate \(accumulate))")
            expectClose(dw.array, rdw.array, "dweight")
            // The bias gradient sums dout itself (fp32), not its bf16 rounding.
            let exactDb = Buf(zeros: O), scratch = Buf(zeros: I * O)
            Linear.backward(dinp: nil, dweight: scratch.p, dbias: exactDb.p, dout: dout, inp: xb.p, weight: params.p,
                            rows: N, inputs: I, outputs: O)
            #expect(db.array == exactDb.array)
        }
    }

    func Linear_fp32(x: [Float], w: [Float], b: [Float], N: Int, I: Int, O: Int) -> [Float] {
        let out = Buf(zeros: N * O), xb = Buf(x), wb = Buf(w), bb = Buf(b)
        Linear.forward(out: out.p, inp: xb.p, weight: wb.p, bias: bb.p, rows: N, inputs: I, outputs: O)
        return out.array
    }

    /// Attention with bf16 operands against fp32 attention on the rounded Q, K, V (and output
    /// gradient): only the probabilities' and their gradient's rounding differs, so they agree to
    /// bf16 precision. Packed Q/K/V rows (self-attention's stride 3C), causal with several query
    /// blocks, cross-attention with key padding, and dropout.
    @Test(arguments: [(70, 70, true, false, Float(0)), (9, 13, false, true, Float(0)), (20, 20, true, false, Float(0.2))])
    func attentionInBF16IsFP32AttentionOnRoundedOperands(_ c: (Tq: Int, Tk: Int, causal: Bool, padded: Bool, dropout: Float)) {
        ThreadPool.configure(threads: 2)
        let (Tq, Tk, causal, padded, dropout) = c
        let B = 2, H = 3, D = 8, C = H * D, stride = 3 * C
        let shape = AttentionShape(batch: B, queryLength: Tq, keyLength: Tk, heads: H, headSize: D, causal: causal)
        // One (B, T, 3C) tensor holds Q, K and V at column offsets 0, C, 2C (T = max(Tq, Tk) rows).
        let T = max(Tq, Tk)
        let qkv = randomFloats(B * T * stride, seed: 41, scale: 2), dout = randomFloats(B * Tq * C, seed: 42)
        let q16 = UnsafeMutablePointer<UInt16>.allocate(capacity: qkv.count)
        let d16 = UnsafeMutablePointer<UInt16>.allocate(capacity: dout.count)
        defer { q16.deallocate(); d16.deallocate() }
        for i in qkv.indices { q16[i] = BFloat16.round(qkv[i]) }
        let keyLengths: [Int32] = [Int32(Tk), Int32(Tk - 3)]
        func run(_ x: [Float], _ dy: [Float], bf16: AttentionBF16?) -> [[Float]] {
            let xb = Buf(x), out = Buf(zeros: B * Tq * C), probs = Buf(zeros: shape.probabilityCount)
            let dropped = Buf(zeros: shape.probabilityCount), dprobs = Buf(zeros: shape.probabilityCount)
            let dx = Buf(zeros: x.count)
            let kb = T * stride   // keys' batch stride: the packed tensor's
            keyLengths.withUnsafeBufferPointer { kl in
                let lengths = padded ? kl.baseAddress : nil
                Attention.forward(out: out.p, outStride: C, probs: probs.p, q: xb.p, qStride: stride, k: xb.p + C,
                                  kStride: stride, v: xb.p + 2 * C, vStride: stride, shape: shape, keyBatchStride: kb,
                                  keyLengths: lengths, dropout: dropout, dropoutKey: 3, dropoutCounter: 1,
                                  probsDropped: dropped.p, bf16: bf16)
                if Tq == T && Tk == T {
                    Attention.backward(dq: dx.p, dqStride: stride, dk: dx.p + C, dkStride: stride, dv: dx.p + 2 * C,
                                       dvStride: stride, dprobs: dprobs.p, dout: dy, doutStride: C, probs: probs.p,
                                       q: xb.p, qStride: stride, k: xb.p + C, kStride: stride, v: xb.p + 2 * C,
                                       vStride: stride, shape: shape, keyLengths: lengths, dropout: dropout,
                                       dropoutKey: 3, dropoutCounter: 1, probsDropped: dropped.p, bf16: bf16)
                }
            }
            return [out.array, dx.array]
        }
        let low = run(qkv, dout, bf16: AttentionBF16(q: q16, k: q16 + C, v: q16 + 2 * C, doutScratch: d16))
        let reference = run(rounded(qkv), rounded(dout), bf16: nil)
        let unrounded = run(qkv, dout, bf16: nil)
        for (i, name) in ["output", "dQ/dK/dV"].enumerated() {
            let scale = reference[i].reduce(Float(0)) { max($0, abs($1)) }
            var worst: Float = 0
            for j in low[i].indices { worst = max(worst, abs(low[i][j] - reference[i][j])) }
            #expect(worst <= 1e-2 * max(scale, 1), "\(name) (Tq \(Tq), Tk \(Tk)): worst \(worst) of scale \(scale)")
        }
        #expect(low[0] != unrounded[0], "bf16 rounding must show")
    }

    @Test func tiedProjectionInBF16IsTheFP32OneOnRoundedOperands() {
        ThreadPool.configure(threads: 2)
        let N = 20, C = 16, V = 37
        let x = randomFloats(N * C, seed: 21), e = randomFloats(V * C, seed: 22), dlogits = randomFloats(N * V, seed: 23)
        let params = Buf(e), weights = BF16Weights(source: params.p, count: params.count)
        let ops = BF16Operands(weights: weights, inputCapacity: N * C, gradientCapacity: N * V)
        let xb = Buf(x), logits = Buf(zeros: N * V), dx = Buf(zeros: N * C), de = Buf(randomFloats(V * C, seed: 24))
        let start = de.array
        TiedProjection.forward(logits: logits.p, x: xb.p, embedding: params.p, rows: N, width: C, vocabulary: V, bf16: ops)
        TiedProjection.backward(dx: dx.p, dembedding: de.p, dlogits: dlogits, x: xb.p, embedding: params.p,
                                rows: N, width: C, vocabulary: V, bf16: ops)
        let rx = Buf(rounded(x)), re = Buf(rounded(e)), rLogits = Buf(zeros: N * V), rdx = Buf(zeros: N * C), rde = Buf(start)
        TiedProjection.forward(logits: rLogits.p, x: rx.p, embedding: re.p, rows: N, width: C, vocabulary: V)
        TiedProjection.backward(dx: rdx.p, dembedding: rde.p, dlogits: rounded(dlogits), x: rx.p, embedding: re.p,
                                rows: N, width: C, vocabulary: V)
        expectClose(logits.array, rLogits.array, "logits")
        expectClose(dx.array, rdx.array, "dx")
        expectClose(de.array, rde.array, "dembedding (accumulated)")
    }

    @Test func weightsCopyFollowsRefresh() {
        let params = Buf(randomFloats(100, seed: 31))
        let weights = BF16Weights(source: params.p, count: 100)
        #expect(weights.of(params.p + 7).pointee == BFloat16.round(params.p[7]))
        params.p[7] = 123.456
        #expect(weights.of(params.p + 7).pointee != BFloat16.round(123.456))
        weights.refresh()
        #expect(weights.of(params.p + 7).pointee == BFloat16.round(123.456))
    }

    @Test func bf16NeedsAVX512BF16OrAMX() {
        let zen3 = CPUFeatures(vendor: "AuthenticAMD", brand: "AMD EPYC 7B13", family: 25, model: 1,
                               extensions: [.avx2, .fma, .avx])
        let why = Precision.bf16Unsupported(on: zen3)
        #expect(why?.contains("AMD EPYC 7B13") == true && why?.contains("AVX512_BF16") == true, "\(why ?? "nil")")
        #expect(Precision.bf16Unsupported(on: CPUFeatures(vendor: "AuthenticAMD", extensions: [.avx2, .avx512f, .avx512_bf16])) == nil)
        #expect(Precision.bf16Unsupported(on: CPUFeatures(vendor: "GenuineIntel", extensions: [.amx_bf16, .amx_tile])) == nil)
        #expect(Precision.bf16Unsupported(on: CPUFeatures(vendor: "GenuineIntel", extensions: [.avx512f, .avx512bw])) != nil)
    }
}
