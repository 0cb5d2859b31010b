// Sublayers: finite-difference gradient checks of each sublayer on its own — attention (self
// causal, self padded, cross), feed-forward (GELU, ReLU) and the residual wrapper (pre-LN,
// post-LN) — with dropout on, for the parameters, the input and cross-attention's memory.
import Testing
import Kernels
@testable import Models
import TestSupport

/// Buffers for one sublayer declared through a ModelBuilder: random parameters, zero gradients,
/// a random input x (B,T,C) and memory (B,S,C), and a Pass over them.
final class SublayerBench {
    static let B = 2, T = 4, S = 3, C = 8, H = 2, F = 12
    var builder = ModelBuilder()
    private(set) var parameters: FlatBuffer!, gradients: FlatBuffer!, activations: FlatBuffer!
    private(set) var scratch: BackwardScratch!
    let x = Buf(randomFloats(B * T * C, seed: 11))
    let memory = Buf(randomFloats(B * S * C, seed: 12))
    /// (B) valid memory positions (and keys of padded self-attention): 3 and 2.
    let lengths: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        p[0] = 3; p[1] = 2
        return p
    }()
    deinit { lengths.deallocate() }
    var rows: Int { Self.B * Self.T }
    var probabilities: Int { Self.B * Self.H * Self.T * Self.T }

    /// Allocates everything declared so far (plus the shared backward scratch).
    func allocate(seed: UInt64) {
        scratch = BackwardScratch(&builder, rows: rows, width: Self.C, hidden: Self.F, probabilities: probabilities,
                                  cross: true, postNorm: true, relu: true)
        parameters = FlatBuffer(count: builder.layout.count)
        gradients = FlatBuffer(count: builder.layout.count)
        activations = FlatBuffer(count: builder.activationCount)
        let noise = randomFloats(parameters.count, seed: seed, scale: 0.5)
        for t in builder.layout.tensors {
            // LayerNorm scales near 1, everything else small and random.
            let one: Float = t.shape.count == 1 && t.name.hasSuffix("norm.weight") ? 1 : 0
            for i in t.range { parameters.pointer[i] = one + noise[i] }
        }
    }

    func pass(dropout: Float, length: Int = SublayerBench.T) -> Pass {
        Pass(p: Weights(base: parameters.pointer), g: Weights(base: gradients.pointer),
             a: Buffers(base: activations.pointer), scratch: scratch, batch: Self.B, length: length,
             memoryLength: Self.S, width: Self.C, heads: Self.H, maskStride: length + 1,
             dropout: dropout > 0 ? DropoutStream(key: 7, firstExample: 1) : nil, residualDropout: dropout,
             attentionDropout: dropout, keyLengths: UnsafePointer(lengths), bf16: nil, progress: nil)
    }

    /// Checks the analytic gradients of every parameter and of `values` (with `analytic`).
    func expectGradients(_ name: String, inputs: [(UnsafeMutablePointer<Float>, [Float])], loss: () -> Double) {
        let all = Array(0..<parameters.count)
        let r = kinkTolerantGradCheck(values: parameters.pointer, analytic: Array(gradients.buffer), indices: all, loss: loss)
        print("\(name) parameters: \(r)")
        #expect(r.checked > 0 && r.worstRelativeError < 2e-2, "\(name) parameters: \(r)")
        for (values, analytic) in inputs {
            let r = kinkTolerantGradCheck(values: values, analytic: analytic, indices: Array(analytic.indices), loss: loss)
            print("\(name) input: \(r)")
            #expect(r.worstRelativeError < 2e-2, "\(name) input: \(r)")
        }
    }
}

@Suite struct SublayerGradientTests {
    static let dropout: Float = 0.2

    @Test(arguments: [AttentionSublayer.Mask.causal, .padded])
    func selfAttention(mask: AttentionSublayer.Mask) {
        let bench = SublayerBench(), C = SublayerBench.C
        let site = MaskSite(layer: 0, GPT.DropoutSite.attentionProbabilities)
        let attention = AttentionSublayer(&bench.builder, qkv: "qkv", out: "out", mask: mask, site: site, rows: bench.rows,
                                          width: C, probabilities: bench.probabilities, dropout: true)
        bench.allocate(seed: 1)
        let s = bench.pass(dropout: Self.dropout), w = randomFloats(bench.rows * C, seed: 2)
        func loss() -> Double { weightedSum(attention.forward(bench.x.p, memory: nil, s), w) }
        _ = loss()
        let dx = Buf(zeros: bench.rows * C)
        attention.backward(branch: w, dinput: dx.p, accumulate: false, inp: bench.x.p, memory: nil, s)
        bench.expectGradients("self-attention \(mask)", inputs: [(bench.x.p, dx.array)], loss: loss)
    }

    @Test func crossAttention() {
        let bench = SublayerBench(), C = SublayerBench.C
        let site = MaskSite(layer: 0, EncoderDecoder.DropoutSite.crossAttentionProbabilities)
        let attention = AttentionSublayer(&bench.builder, q: "q", kv: "kv", out: "out", site: site, rows: bench.rows,
                                          width: C, probabilities: bench.probabilities, dropout: true)
        bench.allocate(seed: 3)
        let s = bench.pass(dropout: Self.dropout), w = randomFloats(bench.rows * C, seed: 4)
        func loss() -> Double { weightedSum(attention.forward(bench.x.p, memory: bench.memory.p, s), w) }
        _ = loss()
        let dx = Buf(zeros: bench.rows * C), dmemory = s.a[bench.scratch.dmemory]
        VectorOps.zero(dmemory, count: bench.memory.count)
        attention.backward(branch: w, dinput: dx.p, accumulate: false, inp: bench.x.p, memory: bench.memory.p, s)
        let dm = Array(UnsafeBufferPointer(start: dmemory, count: bench.memory.count))
        #expect(dm.contains { $0 != 0 })
        bench.expectGradients("cross-attention", inputs: [(bench.x.p, dx.array), (bench.memory.p, dm)], loss: loss)
    }

    @Test(arguments: [FeedForwardSublayer.Activation.gelu, .relu])
    func feedForward(activation: FeedForwardSublayer.Activation) {
        let bench = SublayerBench(), C = SublayerBench.C
        let ffn = FeedForwardSublayer(&bench.builder, fc1: "fc1", fc2: "fc2", activation: activation, rows: bench.rows,
                                      width: C, hidden: SublayerBench.F)
        bench.allocate(seed: 5)
        let s = bench.pass(dropout: 0), w = randomFloats(bench.rows * C, seed: 6)
        func loss() -> Double { weightedSum(ffn.forward(bench.x.p, s), w) }
        _ = loss()
        let dx = Buf(zeros: bench.rows * C)
        ffn.backward(branch: w, dinput: dx.p, accumulate: false, inp: bench.x.p, s)
        bench.expectGradients("feed-forward \(activation)", inputs: [(bench.x.p, dx.array)], loss: loss)
    }

    /// The wrapper around a GELU feed-forward, with residual dropout and examples whose mask
    /// counters are a stride apart (as the encoder-decoder's are).
    @Test(arguments: [NormPlacement.pre, .post])
    func residual(placement: NormPlacement) {
        let bench = SublayerBench(), C = SublayerBench.C
        let norm = bench.builder.norm("norm", width: C)
        let ffn = FeedForwardSublayer(&bench.builder, fc1: "fc1", fc2: "fc2", activation: .gelu, rows: bench.rows,
                                      width: C, hidden: SublayerBench.F)
        let wrapper = ResidualSublayer(&bench.builder, norm: norm, placement: placement,
                                       site: MaskSite(layer: 0, GPT.DropoutSite.feedForwardOutput), rows: bench.rows,
                                       width: C, epsilon: 1e-5)
        bench.allocate(seed: 7)
        let s = bench.pass(dropout: Self.dropout), w = randomFloats(bench.rows * C, seed: 8)
        func loss() -> Double { weightedSum(wrapper.forward(bench.x.p, s) { ffn.forward($0, s) }, w) }
        _ = loss()
        var d = ResidualGradient(current: s.a[bench.scratch.gradient], spare: s.a[bench.scratch.spare])
        d.current.update(from: w, count: w.count)
        wrapper.backward(&d, x: bench.x.p, s) { branch, dinput, accumulate in
            ffn.backward(branch: branch, dinput: dinput, accumulate: accumulate, inp: wrapper.input(bench.x.p, s.a), s)
        }
        let dx = Array(UnsafeBufferPointer(start: d.current, count: w.count))
        bench.expectGradients("residual \(placement)", inputs: [(bench.x.p, dx)], loss: loss)
    }
}
