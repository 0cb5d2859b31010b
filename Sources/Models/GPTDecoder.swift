// GPTDecoder: incremental decoding for sampling — one new position at a time against a key/value
// cache, so each token costs one position instead of a re-run of the prefix. It is not training
// code and keeps no gradients; it reads the parameters of a GPT.
import Kernels

public final class GPTDecoder {
    public let model: GPT
    /// Positions already in the cache.
    public private(set) var position = 0
    private let keys: [UnsafeMutablePointer<Float>]     // per layer (maxT, C)
    private let values: [UnsafeMutablePointer<Float>]   // per layer (maxT, C)
    private let x, ln, qkv, atty, proj, fch, fchGelu, probs, logitsBuffer: UnsafeMutablePointer<Float>
    private let mean, rstd: UnsafeMutablePointer<Float>  // (1)
    private let storage: FlatBuffer

    public init(model: GPT) {
        self.model = model
        let c = model.config, T = c.contextLength, C = c.width
        func carve(_ a: inout Arena) -> [UnsafeMutablePointer<Float>] {
            (0..<(2 * c.layers)).map { _ in a.take(T * C) } +
            [a.take(C), a.take(C), a.take(3 * C), a.take(C), a.take(C), a.take(4 * C), a.take(4 * C),
             a.take(c.heads * T), a.take(c.vocabularySize), a.take(1), a.take(1)]
        }
        var counting = Arena()
        _ = carve(&counting)
        storage = FlatBuffer(count: counting.used)
        var arena = Arena(buffer: storage)
        let v = carve(&arena), L = c.layers
        keys = Array(v[0..<L]); values = Array(v[L..<(2 * L)])
        x = v[2 * L]; ln = v[2 * L + 1]; qkv = v[2 * L + 2]; atty = v[2 * L + 3]; proj = v[2 * L + 4]
        fch = v[2 * L + 5]; fchGelu = v[2 * L + 6]; probs = v[2 * L + 7]; logitsBuffer = v[2 * L + 8]
        mean = v[2 * L + 9]; rstd = v[2 * L + 10]
    }

    /// Forgets the cached prefix.
    public func reset() { position = 0 }

    /// Feeds `token` at the next position and returns the logits (V) for the position after it.
    public func step(token: Int32) -> UnsafePointer<Float> {
        let c = model.config, C = c.width, p = model.params, t = position
        precondition(t < c.contextLength, "GPTDecoder: context of \(c.contextLength) positions is full")
        let shape = AttentionShape(batch: 1, queryLength: 1, keyLength: t + 1, heads: c.heads,
                                   headSize: C / c.heads, causal: false)
        for i in 0..<C { x[i] = p.wte[Int(token) * C + i] + p.wpe[t * C + i] }
        for l in 0..<c.layers {
            let w = p.blocks[l]
            LayerNorm.forward(out: ln, mean: mean, rstd: rstd, inp: x, weight: w.ln1Weight, bias: w.ln1Bias,
                              rows: 1, channels: C, epsilon: c.layerNormEpsilon)
            Linear.forward(out: qkv, inp: ln, weight: w.qkvWeight, bias: w.qkvBias, rows: 1, inputs: C, outputs: 3 * C)
            (keys[l] + t * C).update(from: qkv + C, count: C)
            (values[l] + t * C).update(from: qkv + 2 * C, count: C)
            Attention.forward(out: atty, outStride: C, probs: probs, q: qkv, qStride: 3 * C,
                              k: keys[l], kStride: C, v: values[l], vStride: C, shape: shape)
            Linear.forward(out: proj, inp: atty, weight: w.attnProjWeight, bias: w.attnProjBias, rows: 1, inputs: C, outputs: C)
            for i in 0..<C { x[i] += proj[i] }
            LayerNorm.forward(out: ln, mean: mean, rstd: rstd, inp: x, weight: w.ln2Weight, bias: w.ln2Bias,
                              rows: 1, channels: C, epsilon: c.layerNormEpsilon)
            Linear.forward(out: fch, inp: ln, weight: w.fcWeight, bias: w.fcBias, rows: 1, inputs: C, outputs: 4 * C)
            GELU.forward(out: fchGelu, inp: fch, count: 4 * C)
            Linear.forward(out: proj, inp: fchGelu, weight: w.fcProjWeight, bias: w.fcProjBias, rows: 1, inputs: 4 * C, outputs: C)
            for i in 0..<C { x[i] += proj[i] }
        }
        LayerNorm.forward(out: ln, mean: mean, rstd: rstd, inp: x, weight: p.lnfWeight, bias: p.lnfBias,
                          rows: 1, channels: C, epsilon: c.layerNormEpsilon)
        Gemm.serial(transB: true, m: 1, n: c.vocabularySize, k: C, a: ln, lda: C, b: p.wte, ldb: C,
                    beta: 0, c: logitsBuffer, ldc: c.vocabularySize)
        position += 1
        return UnsafePointer(logitsBuffer)
    }
}
