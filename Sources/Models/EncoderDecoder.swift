// EncoderDecoder: the Transformer of "Attention Is All You Need" — an encoder stack (self-attention
// with a source padding mask, ReLU feed-forward), a decoder stack (causal self-attention,
// encoder-decoder attention, feed-forward), residual + LayerNorm around every sub-layer (post-LN,
// or pre-LN with a final LayerNorm per stack), sinusoidal positions, one shared vocabulary with one
// embedding tied to the encoder input, decoder input and output projection — as a forward/backward
// pair over one flat, layer-major parameter buffer. It is not the training loop (Training) nor
// beam search (Translator).
//
// Shape legend: B batch (pairs), S source length, T target length (padded, ≤ maxLength), C width,
// H heads, D = C/H, F feed-forward width, V vocabulary. Linear weights are stored (in, out).
import Kernels
import Support

/// Pointers to every tensor of one parameter-shaped buffer (parameters or gradients).
public struct EncoderDecoderTensors {
    public struct Affine { public let weight, bias: UnsafeMutablePointer<Float> }   // Linear (in,out),(out) or LayerNorm (C),(C)
    public struct EncoderBlock {
        public let selfQKV, selfOut, selfNorm: Affine         // (C,3C) (C,C) LN
        public let fc1, fc2, ffnNorm: Affine                  // (C,F) (F,C) LN
    }
    public struct DecoderBlock {
        public let selfQKV, selfOut, selfNorm: Affine         // (C,3C) (C,C) LN
        public let crossQ, crossKV, crossOut, crossNorm: Affine // (C,C) (C,2C) (C,C) LN
        public let fc1, fc2, ffnNorm: Affine
    }
    public let embedding: UnsafeMutablePointer<Float>       // (V, C)
    public let encoder: [EncoderBlock]
    public let decoder: [DecoderBlock]
    /// Final LayerNorms of each stack (pre-LN only).
    public let encoderNorm, decoderNorm: Affine?

    public init(base: UnsafeMutablePointer<Float>, layout: ParameterLayout, config c: EncoderDecoderConfig) {
        func at(_ name: String) -> UnsafeMutablePointer<Float> { base + layout.spec(name)!.offset }
        func affine(_ name: String) -> Affine { Affine(weight: at(name + ".weight"), bias: at(name + ".bias")) }
        embedding = at("embedding.weight")
        encoder = (0..<c.encoderLayers).map { l in
            let p = "encoder.layers.\(l)."
            return EncoderBlock(selfQKV: affine(p + "self_attn.qkv_proj"), selfOut: affine(p + "self_attn.out_proj"),
                                selfNorm: affine(p + "self_attn_layer_norm"), fc1: affine(p + "fc1"), fc2: affine(p + "fc2"),
                                ffnNorm: affine(p + "ffn_layer_norm"))
        }
        decoder = (0..<c.decoderLayers).map { l in
            let p = "decoder.layers.\(l)."
            return DecoderBlock(selfQKV: affine(p + "self_attn.qkv_proj"), selfOut: affine(p + "self_attn.out_proj"),
                                selfNorm: affine(p + "self_attn_layer_norm"),
                                crossQ: affine(p + "encoder_attn.q_proj"), crossKV: affine(p + "encoder_attn.kv_proj"),
                                crossOut: affine(p + "encoder_attn.out_proj"), crossNorm: affine(p + "encoder_attn_layer_norm"),
                                fc1: affine(p + "fc1"), fc2: affine(p + "fc2"), ffnNorm: affine(p + "ffn_layer_norm"))
        }
        encoderNorm = (c.normPlacement == .pre) ? affine("encoder.layer_norm") : nil
        decoderNorm = (c.normPlacement == .pre) ? affine("decoder.layer_norm") : nil
    }
}

public final class EncoderDecoder {
    public let config: EncoderDecoderConfig
    public let layout: ParameterLayout
    public let parameters: FlatBuffer   // (P) all weights, layer-major
    public let gradients: FlatBuffer    // (P) same layout; backward adds into it
    public let params: EncoderDecoderTensors
    public let grads: EncoderDecoderTensors
    /// Largest batch the activation buffers hold.
    public let maxBatch: Int
    /// The sinusoidal table (maxLength, C); not a parameter.
    public let positionSignal: FlatBuffer
    let acts: EncoderDecoderActivations
    /// How the matrix products run; with bf16, the weights' bf16 copy and the conversion scratch.
    public let precision: Precision
    let bf16: BF16Operands?
    /// Called after backward has finished each layout group: decoder blocks last → first (groups
    /// E+D … E+1), then encoder blocks (E … 1), then the embedding (0), so all-reduce can start early.
    public var onGroupReady: ((Int) -> Void)?
    /// Called between the sub-layers of backward, so communication in flight can progress.
    public var onBackwardProgress: (() -> Void)?

    private var lastBatch = 0, lastSource = 0, lastTarget = 0, lastSmoothing: Float = 0
    private var lastDropout: DropoutStream?
    private var pDrop: Float = 0, pAttention: Float = 0

    /// Layer ids of the dropout streams: encoder l → l, decoder l → decoderKeyBase + l.
    static let decoderKeyBase = 1 << 12, sourceEmbeddingKey = 1 << 13, targetEmbeddingKey = (1 << 13) + 1

    /// The layout: the shared embedding (group 0), each encoder block (groups 1…E; the last one also
    /// holds `encoder.layer_norm` under pre-LN), each decoder block (groups E+1…E+D; likewise
    /// `decoder.layer_norm`). Names follow fairseq's Transformer, with the self-attention Q/K/V fused
    /// into `qkv_proj` (C, 3C) and the encoder-attention K/V into `kv_proj` (C, 2C).
    public static func layout(_ c: EncoderDecoderConfig) -> ParameterLayout {
        let C = c.width, F = c.ffnWidth
        var layout = ParameterLayout()
        func linear(_ name: String, _ i: Int, _ o: Int) {
            layout.add(name + ".weight", [i, o], decay: true); layout.add(name + ".bias", [o])
        }
        func norm(_ name: String) { layout.add(name + ".weight", [C]); layout.add(name + ".bias", [C]) }
        layout.add("embedding.weight", [c.vocabularySize, C], decay: true)
        layout.endGroup("embedding")
        for l in 0..<c.encoderLayers {
            let p = "encoder.layers.\(l)."
            linear(p + "self_attn.qkv_proj", C, 3 * C); linear(p + "self_attn.out_proj", C, C); norm(p + "self_attn_layer_norm")
            linear(p + "fc1", C, F); linear(p + "fc2", F, C); norm(p + "ffn_layer_norm")
            if l == c.encoderLayers - 1 && (c.normPlacement == .pre) { norm("encoder.layer_norm") }
            layout.endGroup("encoder.layers.\(l)")
        }
        for l in 0..<c.decoderLayers {
            let p = "decoder.layers.\(l)."
            linear(p + "self_attn.qkv_proj", C, 3 * C); linear(p + "self_attn.out_proj", C, C); norm(p + "self_attn_layer_norm")
            linear(p + "encoder_attn.q_proj", C, C); linear(p + "encoder_attn.kv_proj", C, 2 * C)
            linear(p + "encoder_attn.out_proj", C, C); norm(p + "encoder_attn_layer_norm")
            linear(p + "fc1", C, F); linear(p + "fc2", F, C); norm(p + "ffn_layer_norm")
            if l == c.decoderLayers - 1 && (c.normPlacement == .pre) { norm("decoder.layer_norm") }
            layout.endGroup("decoder.layers.\(l)")
        }
        return layout
    }

    public init(config: EncoderDecoderConfig, maxBatch: Int, precision: Precision = .fp32) {
        if let problem = config.problem { preconditionFailure("EncoderDecoderConfig: \(problem)") }
        self.config = config
        self.maxBatch = maxBatch
        layout = EncoderDecoder.layout(config)
        parameters = FlatBuffer(count: layout.count)
        gradients = FlatBuffer(count: layout.count)
        params = EncoderDecoderTensors(base: parameters.pointer, layout: layout, config: config)
        grads = EncoderDecoderTensors(base: gradients.pointer, layout: layout, config: config)
        positionSignal = FlatBuffer(count: config.maxLength * config.width)
        SinusoidalEmbedding.signal(into: positionSignal.pointer, positions: config.maxLength, channels: config.width)
        acts = EncoderDecoderActivations(config: config, batch: maxBatch)
        self.precision = precision
        // Scratch for the widest product input (C or F) and output gradient (3C, F or V).
        let rows = maxBatch * config.maxLength, C = config.width, F = config.ffnWidth
        bf16 = precision == .fp32 ? nil
            : BF16Operands(weights: BF16Weights(source: parameters.pointer, count: layout.count),
                           inputCapacity: rows * max(C, F), gradientCapacity: rows * max(3 * C, F, config.vocabularySize))
    }

    /// Refreshes the bf16 copy of the weights after the parameters changed (no-op in fp32).
    public func parametersDidChange() { bf16?.weights.refresh() }

    /// Xavier-uniform (Glorot) for every matrix, the embedding included (as Marian and
    /// tensor2tensor's `uniform_unit_scaling`-era code; fused Q/K/V and K/V count as separate C×C
    /// matrices), biases 0, LayerNorm scale 1. Counter-based, so it depends on the seed alone.
    public func initialize(seed: UInt64) {
        let C = config.width
        for (index, t) in layout.tensors.enumerated() {
            let p = parameters.pointer + t.offset
            if t.shape.count == 1 {
                let isNormScale = t.name.hasSuffix("layer_norm.weight")
                p.update(repeating: isNormScale ? 1 : 0, count: t.count)
                continue
            }
            var fanIn = t.shape[0], fanOut = t.shape[1]
            if t.name.hasSuffix("qkv_proj.weight") || t.name.hasSuffix("kv_proj.weight") { fanIn = C; fanOut = C }
            let bound = (6 / Float(fanIn + fanOut)).squareRoot()
            let key = CounterRandom.key(seed, 0xED, UInt64(index))
            for i in 0..<t.count { p[i] = (CounterRandom.uniform(key: key, counter: UInt64(i)) * 2 - 1) * bound }
        }
        parametersDidChange()
    }

    /// Activations and backward scratch; with bf16 also the conversion scratch and the weights'
    /// bf16 copy.
    public var activationBytes: Int { acts.bytes + (bf16.map { $0.scratchBytes + $0.weights.bytes } ?? 0) }
    var preNorm: Bool { config.normPlacement == .pre }
    var embeddingScale: Float { Float(config.width).squareRoot() }

    // MARK: Forward

    /// Runs the model on B pairs: `source` (B, S) with `sourceLengths` (B) valid tokens each (the
    /// rest is padding, masked out of every attention over the source), `targetInput` (B, T) (the
    /// target shifted right, e.g. BOS y₁ … yₙ) and `targetOutput` (B, T) (y₁ … yₙ EOS; ids < 0 are
    /// padding, ignored by the loss). Padding token ids must still be valid ids (e.g. 0).
    /// Returns (Σ label-smoothed loss, counted tokens) and keeps what `backward` needs. Without
    /// `targetOutput` the logits (B, T, V) stay in `logits`. `dropout` nil means evaluation.
    @discardableResult
    public func forward(source: UnsafePointer<Int32>, sourceLengths: UnsafePointer<Int32>,
                        targetInput: UnsafePointer<Int32>, targetOutput: UnsafePointer<Int32>?,
                        batch B: Int, sourceLength S: Int, targetLength T: Int,
                        labelSmoothing: Float = 0, dropout: DropoutStream? = nil) -> (sum: Double, count: Int) {
        precondition(B <= maxBatch && S <= config.maxLength && T <= config.maxLength,
                     "EncoderDecoder.forward: batch \(B) or lengths \(S), \(T) exceed \(maxBatch) × \(config.maxLength)")
        let a = acts, C = config.width, V = config.vocabularySize
        a.targetInput.update(from: targetInput, count: B * T)
        if let targetOutput { a.targetOutput.update(from: targetOutput, count: B * T) }
        else { a.targetOutput.update(repeating: -1, count: B * T) }
        lastTarget = T; lastSmoothing = labelSmoothing
        encodeStack(source: source, sourceLengths: sourceLengths, batch: B, sourceLength: S, dropout: dropout)
        let decoded = decodeStack()
        // Tied output projection: logits(BT, V) = decoded(BT, C) · embeddingᵀ
        TiedProjection.forward(logits: a.logits, x: decoded, embedding: params.embedding, rows: B * T, width: C,
                               vocabulary: V, bf16: bf16)
        guard targetOutput != nil else { return (0, 0) }
        return CrossEntropy.forward(losses: a.losses, logits: a.logits, targets: a.targetOutput, rows: B * T,
                                    vocabulary: V, labelSmoothing: labelSmoothing)
    }

    /// Runs only the encoder (no dropout) and returns its output (B, S, C), valid until the next
    /// forward. The decoders of Translator read it.
    public func encode(source: UnsafePointer<Int32>, sourceLengths: UnsafePointer<Int32>,
                       batch B: Int, sourceLength S: Int) -> UnsafePointer<Float> {
        precondition(B <= maxBatch && S <= config.maxLength, "EncoderDecoder.encode: batch or length too large")
        encodeStack(source: source, sourceLengths: sourceLengths, batch: B, sourceLength: S, dropout: nil)
        return UnsafePointer(encoded)
    }

    /// Logits (B, T, V) of the last forward without targets.
    public var logits: UnsafePointer<Float> { UnsafePointer(acts.logits) }

    private func encodeStack(source: UnsafePointer<Int32>, sourceLengths: UnsafePointer<Int32>, batch B: Int,
                             sourceLength S: Int, dropout: DropoutStream?) {
        let a = acts, p = params, C = config.width, H = config.heads, rows = B * S
        for b in 0..<B {
            precondition(sourceLengths[b] >= 1 && Int(sourceLengths[b]) <= S,
                         "EncoderDecoder: source length \(sourceLengths[b]) of item \(b) is not in 1…\(S)")
        }
        a.sourceTokens.update(from: source, count: rows)
        a.sourceLengths.update(from: sourceLengths, count: B)
        lastBatch = B; lastSource = S; lastDropout = dropout
        pDrop = dropout == nil ? 0 : config.dropout
        pAttention = dropout == nil ? 0 : config.attentionDropout
        let first = dropout?.firstExample ?? 0
        SinusoidalEmbedding.forward(out: a.sourceEmbedded, tokens: a.sourceTokens, table: p.embedding,
                                    signal: positionSignal.pointer, scale: embeddingScale, batch: B, time: S, channels: C)
        drop(a.sourceEmbedded, count: rows * C, layer: Self.sourceEmbeddingKey, site: 0, counter: first * S * C)
        let shape = AttentionShape(batch: B, queryLength: S, keyLength: S, heads: H, headSize: C / H, causal: false)
        var x = UnsafePointer(a.sourceEmbedded)
        for l in 0..<config.encoderLayers {
            let w = p.encoder[l], y = a.encoder[l]
            var inp = enter(x, y.attnNorm, w.selfNorm, rows: rows)
            selfAttention(y.attn, inp: inp, qkv: w.selfQKV, out: w.selfOut, shape: shape, layer: l)
            x = leave(x, branch: y.attn.projected, y.attnNorm, w.selfNorm, rows: rows, layer: l, site: 2, counter: first * S * C)
            inp = enter(x, y.ffnNorm, w.ffnNorm, rows: rows)
            feedForward(y.ffn, inp: inp, fc1: w.fc1, fc2: w.fc2, rows: rows)
            x = leave(x, branch: y.ffn.out, y.ffnNorm, w.ffnNorm, rows: rows, layer: l, site: 5, counter: first * S * C)
        }
        if let norm = p.encoderNorm {
            let n = a.encoderNorm
            LayerNorm.forward(out: n.ln, mean: n.mean, rstd: n.rstd, inp: x, weight: norm.weight, bias: norm.bias,
                              rows: rows, channels: C, epsilon: config.layerNormEpsilon)
        }
    }

    /// The decoder over `acts.targetInput` (lastTarget positions) against the last encoder output;
    /// returns the decoder's output (B, T, C).
    private func decodeStack() -> UnsafePointer<Float> {
        let a = acts, p = params, C = config.width, H = config.heads
        let B = lastBatch, S = lastSource, T = lastTarget, rows = B * T
        let first = lastDropout?.firstExample ?? 0
        SinusoidalEmbedding.forward(out: a.targetEmbedded, tokens: a.targetInput, table: p.embedding,
                                    signal: positionSignal.pointer, scale: embeddingScale, batch: B, time: T, channels: C)
        drop(a.targetEmbedded, count: rows * C, layer: Self.targetEmbeddingKey, site: 0, counter: first * T * C)
        let causal = AttentionShape(batch: B, queryLength: T, keyLength: T, heads: H, headSize: C / H, causal: true)
        let cross = AttentionShape(batch: B, queryLength: T, keyLength: S, heads: H, headSize: C / H, causal: false)
        let memory = UnsafePointer(encoded)
        var x = UnsafePointer(a.targetEmbedded)
        for l in 0..<config.decoderLayers {
            let w = p.decoder[l], y = a.decoder[l], key = Self.decoderKeyBase + l
            var inp = enter(x, y.attnNorm, w.selfNorm, rows: rows)
            selfAttention(y.attn, inp: inp, qkv: w.selfQKV, out: w.selfOut, shape: causal, layer: key)
            x = leave(x, branch: y.attn.projected, y.attnNorm, w.selfNorm, rows: rows, layer: key, site: 2, counter: first * T * C)
            inp = enter(x, y.crossNorm, w.crossNorm, rows: rows)
            let c = y.cross
            Linear.forward(out: c.q, inp: inp, weight: w.crossQ.weight, bias: w.crossQ.bias, rows: rows, inputs: C, outputs: C, bf16: bf16)
            Linear.forward(out: c.kv, inp: memory, weight: w.crossKV.weight, bias: w.crossKV.bias,
                           rows: B * S, inputs: C, outputs: 2 * C, bf16: bf16)
            Attention.forward(out: c.context, outStride: C, probs: c.probs, q: c.q, qStride: C,
                              k: c.kv, kStride: 2 * C, v: c.kv + C, vStride: 2 * C, shape: cross,
                              keyLengths: a.sourceLengths, dropout: pAttention, dropoutKey: dropoutKey(key, 3),
                              dropoutCounter: first * H * T * S, probsDropped: c.probsDropped)
            Linear.forward(out: c.projected, inp: c.context, weight: w.crossOut.weight, bias: w.crossOut.bias,
                           rows: rows, inputs: C, outputs: C, bf16: bf16)
            x = leave(x, branch: c.projected, y.crossNorm, w.crossNorm, rows: rows, layer: key, site: 4, counter: first * T * C)
            inp = enter(x, y.ffnNorm, w.ffnNorm, rows: rows)
            feedForward(y.ffn, inp: inp, fc1: w.fc1, fc2: w.fc2, rows: rows)
            x = leave(x, branch: y.ffn.out, y.ffnNorm, w.ffnNorm, rows: rows, layer: key, site: 5, counter: first * T * C)
        }
        if let norm = p.decoderNorm {
            let n = a.decoderNorm
            LayerNorm.forward(out: n.ln, mean: n.mean, rstd: n.rstd, inp: x, weight: norm.weight, bias: norm.bias,
                              rows: rows, channels: C, epsilon: config.layerNormEpsilon)
            return UnsafePointer(n.ln)
        }
        return x
    }

    /// The encoder's output: the last block's (post-LN) or the final LayerNorm's (pre-LN).
    var encoded: UnsafeMutablePointer<Float> {
        preNorm ? acts.encoderNorm.ln : output(of: acts.encoder[config.encoderLayers - 1].ffnNorm)
    }
    var decoderBlocksOutput: UnsafeMutablePointer<Float> { output(of: acts.decoder[config.decoderLayers - 1].ffnNorm) }

    @inline(__always) func output(of n: EncoderDecoderActivations.Sublayer) -> UnsafeMutablePointer<Float> {
        preNorm ? n.residual : n.ln
    }
    /// What a sub-layer's function reads: x (post-LN) or LN(x) (pre-LN).
    @inline(__always) func input(of n: EncoderDecoderActivations.Sublayer, _ x: UnsafePointer<Float>) -> UnsafePointer<Float> {
        preNorm ? UnsafePointer(n.ln) : x
    }
    @inline(__always) func dropoutKey(_ layer: Int, _ site: UInt64) -> UInt64 {
        lastDropout?.key(layer: layer, site: site) ?? 0
    }

    private func drop(_ x: UnsafeMutablePointer<Float>, count: Int, layer: Int, site: UInt64, counter: Int) {
        guard let d = lastDropout, pDrop > 0 else { return }
        let key = d.key(layer: layer, site: site)
        perExample(count: count, counter: counter) { offset, n, c in
            Dropout.apply(x + offset, count: n, probability: pDrop, key: key, counter: c)
        }
    }

    /// Splits a (B, L, C) tensor's dropout range by example, each keyed from (example, position,
    /// channel) with a stride of maxLength positions: a sentence's mask does not depend on how far
    /// its micro-batch was padded, so any split of a batch over ranks draws the same masks.
    /// `counter` is first example × L × C, as the call sites pass it.
    @inline(__always)
    private func perExample(count: Int, counter: Int, _ body: (_ offset: Int, _ count: Int, _ counter: Int) -> Void) {
        let B = max(lastBatch, 1), C = config.width
        let L = max(count / (B * C), 1)
        let first = counter / (L * C)
        for b in 0..<B { body(b * L * C, L * C, (first + b) * config.maxLength * C) }
    }

    private func enter(_ x: UnsafePointer<Float>, _ n: EncoderDecoderActivations.Sublayer,
                       _ norm: EncoderDecoderTensors.Affine, rows: Int) -> UnsafePointer<Float> {
        guard preNorm else { return x }
        LayerNorm.forward(out: n.ln, mean: n.mean, rstd: n.rstd, inp: x, weight: norm.weight, bias: norm.bias,
                          rows: rows, channels: config.width, epsilon: config.layerNormEpsilon)
        return UnsafePointer(n.ln)
    }

    /// residual = x + dropout(branch) (branch masked in place), then LN for post-LN; returns the output.
    private func leave(_ x: UnsafePointer<Float>, branch: UnsafeMutablePointer<Float>, _ n: EncoderDecoderActivations.Sublayer,
                       _ norm: EncoderDecoderTensors.Affine, rows: Int, layer: Int, site: UInt64, counter: Int) -> UnsafePointer<Float> {
        let C = config.width
        drop(branch, count: rows * C, layer: layer, site: site, counter: counter)
        Residual.forward(out: n.residual, a: x, b: branch, count: rows * C)
        guard !preNorm else { return UnsafePointer(n.residual) }
        LayerNorm.forward(out: n.ln, mean: n.mean, rstd: n.rstd, inp: n.residual, weight: norm.weight, bias: norm.bias,
                          rows: rows, channels: C, epsilon: config.layerNormEpsilon)
        return UnsafePointer(n.ln)
    }

    private func selfAttention(_ y: EncoderDecoderActivations.SelfAttention, inp: UnsafePointer<Float>,
                               qkv: EncoderDecoderTensors.Affine, out: EncoderDecoderTensors.Affine,
                               shape: AttentionShape, layer: Int) {
        let C = config.width, rows = shape.batch * shape.queryLength
        let first = lastDropout?.firstExample ?? 0
        Linear.forward(out: y.qkv, inp: inp, weight: qkv.weight, bias: qkv.bias, rows: rows, inputs: C, outputs: 3 * C, bf16: bf16)
        Attention.forward(out: y.context, outStride: C, probs: y.probs, q: y.qkv, qStride: 3 * C,
                          k: y.qkv + C, kStride: 3 * C, v: y.qkv + 2 * C, vStride: 3 * C, shape: shape,
                          keyLengths: shape.causal ? nil : acts.sourceLengths,
                          dropout: pAttention, dropoutKey: dropoutKey(layer, 1),
                          dropoutCounter: first * shape.probabilityCount / max(shape.batch, 1), probsDropped: y.probsDropped)
        Linear.forward(out: y.projected, inp: y.context, weight: out.weight, bias: out.bias, rows: rows, inputs: C, outputs: C, bf16: bf16)
    }

    private func feedForward(_ y: EncoderDecoderActivations.FeedForward, inp: UnsafePointer<Float>,
                             fc1: EncoderDecoderTensors.Affine, fc2: EncoderDecoderTensors.Affine, rows: Int) {
        let C = config.width, F = config.ffnWidth
        Linear.forward(out: y.hidden, inp: inp, weight: fc1.weight, bias: fc1.bias, rows: rows, inputs: C, outputs: F, bf16: bf16)
        ReLU.forward(out: y.hidden, inp: y.hidden, count: rows * F)
        Linear.forward(out: y.out, inp: y.hidden, weight: fc2.weight, bias: fc2.bias, rows: rows, inputs: F, outputs: C, bf16: bf16)
    }

    // MARK: Backward

    /// Adds the gradient of (Σ loss · scale) of the last forward into `gradients`: `forward` read in
    /// reverse. `scale` is 1 / target tokens in the whole optimizer step, so micro-batches accumulate.
    public func backward(scale: Float) {
        let a = acts, p = params, g = grads, s = acts.scratch
        let C = config.width, V = config.vocabularySize, H = config.heads, E = config.encoderLayers
        let B = lastBatch, S = lastSource, T = lastTarget, rows = B * T
        let first = lastDropout?.firstExample ?? 0
        CrossEntropy.backward(dlogits: a.logits, targets: a.targetOutput, rows: rows, vocabulary: V, scale: scale,
                              labelSmoothing: lastSmoothing)
        // Tied head: ddecoded = dlogits · embedding ; dembedding += dlogitsᵀ · decoded
        let decoded = preNorm ? a.decoderNorm.ln : decoderBlocksOutput
        var d = s.dA, t = s.dB
        TiedProjection.backward(dx: preNorm ? s.dln : d, dembedding: g.embedding, dlogits: a.logits, x: decoded,
                                embedding: p.embedding, rows: rows, width: C, vocabulary: V, bf16: bf16)
        if let norm = p.decoderNorm, let gnorm = g.decoderNorm {
            VectorOps.zero(d, count: rows * C)
            LayerNorm.backward(dinp: d, dweight: gnorm.weight, dbias: gnorm.bias, dout: s.dln, inp: decoderBlocksOutput,
                               weight: norm.weight, mean: a.decoderNorm.mean, rstd: a.decoderNorm.rstd, rows: rows, channels: C)
        }
        VectorOps.zero(s.dencoded, count: B * S * C)
        let causal = AttentionShape(batch: B, queryLength: T, keyLength: T, heads: H, headSize: C / H, causal: true)
        let cross = AttentionShape(batch: B, queryLength: T, keyLength: S, heads: H, headSize: C / H, causal: false)
        let memory = UnsafePointer(encoded)
        for l in stride(from: config.decoderLayers - 1, through: 0, by: -1) {
            let w = p.decoder[l], dw = g.decoder[l], y = a.decoder[l], key = Self.decoderKeyBase + l
            let x0 = l == 0 ? UnsafePointer(a.targetEmbedded) : UnsafePointer(output(of: a.decoder[l - 1].ffnNorm))
            let x1 = UnsafePointer(output(of: y.attnNorm)), x2 = UnsafePointer(output(of: y.crossNorm))
            // Feed-forward sub-layer.
            var (branch, dinput, accumulate) = beginBackward(d, t, y.ffnNorm, w.ffnNorm, dw.ffnNorm, rows: rows,
                                                             layer: key, site: 5, counter: first * T * C)
            feedForwardBackward(y.ffn, branch: branch, dinput: dinput, accumulate: accumulate, inp: input(of: y.ffnNorm, x2),
                                fc1: w.fc1, fc2: w.fc2, dfc1: dw.fc1, dfc2: dw.fc2, rows: rows)
            endBackward(&d, &t, x: x2, y.ffnNorm, w.ffnNorm, dw.ffnNorm, rows: rows)
            onBackwardProgress?()
            // Encoder-decoder attention sub-layer.
            (branch, dinput, accumulate) = beginBackward(d, t, y.crossNorm, w.crossNorm, dw.crossNorm, rows: rows,
                                                         layer: key, site: 4, counter: first * T * C)
            let c = y.cross
            Linear.backward(dinp: s.dcontext, dweight: dw.crossOut.weight, dbias: dw.crossOut.bias, dout: branch,
                            inp: c.context, weight: w.crossOut.weight, rows: rows, inputs: C, outputs: C, bf16: bf16)
            Attention.backward(dq: s.dq, dqStride: C, dk: s.dqkv, dkStride: 2 * C, dv: s.dqkv + C, dvStride: 2 * C,
                               dprobs: s.dprobs, dout: s.dcontext, doutStride: C, probs: c.probs,
                               q: c.q, qStride: C, k: c.kv, kStride: 2 * C, v: c.kv + C, vStride: 2 * C, shape: cross,
                               keyLengths: a.sourceLengths, dropout: pAttention, dropoutKey: dropoutKey(key, 3),
                               dropoutCounter: first * H * T * S, probsDropped: c.probsDropped.map { UnsafePointer($0) })
            onBackwardProgress?()
            Linear.backward(dinp: s.dencoded, dweight: dw.crossKV.weight, dbias: dw.crossKV.bias, dout: s.dqkv,
                            inp: memory, weight: w.crossKV.weight, rows: B * S, inputs: C, outputs: 2 * C, accumulateInput: true, bf16: bf16)
            Linear.backward(dinp: dinput, dweight: dw.crossQ.weight, dbias: dw.crossQ.bias, dout: s.dq,
                            inp: input(of: y.crossNorm, x1), weight: w.crossQ.weight, rows: rows, inputs: C, outputs: C,
                            accumulateInput: accumulate, bf16: bf16)
            endBackward(&d, &t, x: x1, y.crossNorm, w.crossNorm, dw.crossNorm, rows: rows)
            onBackwardProgress?()
            // Causal self-attention sub-layer.
            (branch, dinput, accumulate) = beginBackward(d, t, y.attnNorm, w.selfNorm, dw.selfNorm, rows: rows,
                                                         layer: key, site: 2, counter: first * T * C)
            selfAttentionBackward(y.attn, branch: branch, dinput: dinput, accumulate: accumulate, inp: input(of: y.attnNorm, x0),
                                  qkv: w.selfQKV, out: w.selfOut, dqkv: dw.selfQKV, dout: dw.selfOut, shape: causal, layer: key)
            endBackward(&d, &t, x: x0, y.attnNorm, w.selfNorm, dw.selfNorm, rows: rows)
            onGroupReady?(1 + E + l)
        }
        // Decoder input embedding (its group is reported after the encoder's).
        SinusoidalEmbedding.backward(dtable: g.embedding, dout: masked(d, count: rows * C, layer: Self.targetEmbeddingKey,
                                                                       site: 0, counter: first * T * C),
                                     tokens: a.targetInput, scale: embeddingScale, rows: rows, channels: C)
        onBackwardProgress?()

        // Encoder: its output's gradient is Σ over decoder layers of the K/V projections' input gradients.
        let srows = B * S
        let selfShape = AttentionShape(batch: B, queryLength: S, keyLength: S, heads: H, headSize: C / H, causal: false)
        let encoderBlocksOutput = output(of: a.encoder[E - 1].ffnNorm)
        if let norm = p.encoderNorm, let gnorm = g.encoderNorm {
            VectorOps.zero(d, count: srows * C)
            LayerNorm.backward(dinp: d, dweight: gnorm.weight, dbias: gnorm.bias, dout: s.dencoded, inp: encoderBlocksOutput,
                               weight: norm.weight, mean: a.encoderNorm.mean, rstd: a.encoderNorm.rstd, rows: srows, channels: C)
        } else {
            d.update(from: s.dencoded, count: srows * C)
        }
        for l in stride(from: E - 1, through: 0, by: -1) {
            let w = p.encoder[l], dw = g.encoder[l], y = a.encoder[l]
            let x0 = l == 0 ? UnsafePointer(a.sourceEmbedded) : UnsafePointer(output(of: a.encoder[l - 1].ffnNorm))
            let x1 = UnsafePointer(output(of: y.attnNorm))
            var (branch, dinput, accumulate) = beginBackward(d, t, y.ffnNorm, w.ffnNorm, dw.ffnNorm, rows: srows,
                                                             layer: l, site: 5, counter: first * S * C)
            feedForwardBackward(y.ffn, branch: branch, dinput: dinput, accumulate: accumulate, inp: input(of: y.ffnNorm, x1),
                                fc1: w.fc1, fc2: w.fc2, dfc1: dw.fc1, dfc2: dw.fc2, rows: srows)
            endBackward(&d, &t, x: x1, y.ffnNorm, w.ffnNorm, dw.ffnNorm, rows: srows)
            onBackwardProgress?()
            (branch, dinput, accumulate) = beginBackward(d, t, y.attnNorm, w.selfNorm, dw.selfNorm, rows: srows,
                                                         layer: l, site: 2, counter: first * S * C)
            selfAttentionBackward(y.attn, branch: branch, dinput: dinput, accumulate: accumulate, inp: input(of: y.attnNorm, x0),
                                  qkv: w.selfQKV, out: w.selfOut, dqkv: dw.selfQKV, dout: dw.selfOut, shape: selfShape, layer: l)
            endBackward(&d, &t, x: x0, y.attnNorm, w.selfNorm, dw.selfNorm, rows: srows)
            onGroupReady?(1 + l)
        }
        SinusoidalEmbedding.backward(dtable: g.embedding, dout: masked(d, count: srows * C, layer: Self.sourceEmbeddingKey,
                                                                       site: 0, counter: first * S * C),
                                     tokens: a.sourceTokens, scale: embeddingScale, rows: srows, channels: C)
        onGroupReady?(0)
    }

    /// `v` through the residual dropout mask of (layer, site), into scratch; `v` itself without dropout.
    private func masked(_ v: UnsafePointer<Float>, count: Int, layer: Int, site: UInt64, counter: Int) -> UnsafePointer<Float> {
        guard let dropout = lastDropout, pDrop > 0 else { return v }
        let out = acts.scratch.dbranch, key = dropout.key(layer: layer, site: site)
        perExample(count: count, counter: counter) { offset, n, c in
            Dropout.forward(out: out + offset, inp: v + offset, count: n, probability: pDrop, key: key, counter: c)
        }
        return UnsafePointer(out)
    }

    /// Starts a sub-layer's backward from d = ∂L/∂output. Returns the gradient of the function's
    /// output (dropout-masked) and where the function's input gradient goes: post-LN adds it into t
    /// (which already holds ∂L/∂residual, the skip path), pre-LN writes it to the LN scratch.
    private func beginBackward(_ d: UnsafeMutablePointer<Float>, _ t: UnsafeMutablePointer<Float>,
                               _ n: EncoderDecoderActivations.Sublayer, _ norm: EncoderDecoderTensors.Affine,
                               _ gnorm: EncoderDecoderTensors.Affine, rows: Int, layer: Int, site: UInt64,
                               counter: Int) -> (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Bool) {
        let C = config.width
        if preNorm {
            return (masked(d, count: rows * C, layer: layer, site: site, counter: counter), acts.scratch.dln, false)
        }
        VectorOps.zero(t, count: rows * C)
        LayerNorm.backward(dinp: t, dweight: gnorm.weight, dbias: gnorm.bias, dout: d, inp: n.residual, weight: norm.weight,
                           mean: n.mean, rstd: n.rstd, rows: rows, channels: C)
        return (masked(t, count: rows * C, layer: layer, site: site, counter: counter), t, true)
    }

    /// Finishes a sub-layer's backward: afterwards d = ∂L/∂x (the sub-layer's input).
    private func endBackward(_ d: inout UnsafeMutablePointer<Float>, _ t: inout UnsafeMutablePointer<Float>,
                             x: UnsafePointer<Float>, _ n: EncoderDecoderActivations.Sublayer,
                             _ norm: EncoderDecoderTensors.Affine, _ gnorm: EncoderDecoderTensors.Affine, rows: Int) {
        if preNorm {
            // d (the skip path) += LN backward of the function's input gradient.
            LayerNorm.backward(dinp: d, dweight: gnorm.weight, dbias: gnorm.bias, dout: acts.scratch.dln, inp: x,
                               weight: norm.weight, mean: n.mean, rstd: n.rstd, rows: rows, channels: config.width)
        } else {
            swap(&d, &t)
        }
    }

    private func selfAttentionBackward(_ y: EncoderDecoderActivations.SelfAttention, branch: UnsafePointer<Float>,
                                       dinput: UnsafeMutablePointer<Float>, accumulate: Bool, inp: UnsafePointer<Float>,
                                       qkv: EncoderDecoderTensors.Affine, out: EncoderDecoderTensors.Affine,
                                       dqkv: EncoderDecoderTensors.Affine, dout: EncoderDecoderTensors.Affine,
                                       shape: AttentionShape, layer: Int) {
        let s = acts.scratch, C = config.width, rows = shape.batch * shape.queryLength
        let first = lastDropout?.firstExample ?? 0
        Linear.backward(dinp: s.dcontext, dweight: dout.weight, dbias: dout.bias, dout: branch, inp: y.context,
                        weight: out.weight, rows: rows, inputs: C, outputs: C, bf16: bf16)
        Attention.backward(dq: s.dqkv, dqStride: 3 * C, dk: s.dqkv + C, dkStride: 3 * C, dv: s.dqkv + 2 * C, dvStride: 3 * C,
                           dprobs: s.dprobs, dout: s.dcontext, doutStride: C, probs: y.probs,
                           q: y.qkv, qStride: 3 * C, k: y.qkv + C, kStride: 3 * C, v: y.qkv + 2 * C, vStride: 3 * C,
                           shape: shape, keyLengths: shape.causal ? nil : UnsafePointer(acts.sourceLengths),
                           dropout: pAttention, dropoutKey: dropoutKey(layer, 1),
                           dropoutCounter: first * shape.probabilityCount / max(shape.batch, 1),
                           probsDropped: y.probsDropped.map { UnsafePointer($0) })
        onBackwardProgress?()
        Linear.backward(dinp: dinput, dweight: dqkv.weight, dbias: dqkv.bias, dout: s.dqkv, inp: inp, weight: qkv.weight,
                        rows: rows, inputs: C, outputs: 3 * C, accumulateInput: accumulate, bf16: bf16)
    }

    private func feedForwardBackward(_ y: EncoderDecoderActivations.FeedForward, branch: UnsafePointer<Float>,
                                     dinput: UnsafeMutablePointer<Float>, accumulate: Bool, inp: UnsafePointer<Float>,
                                     fc1: EncoderDecoderTensors.Affine, fc2: EncoderDecoderTensors.Affine,
                                     dfc1: EncoderDecoderTensors.Affine, dfc2: EncoderDecoderTensors.Affine, rows: Int) {
        let s = acts.scratch, C = config.width, F = config.ffnWidth
        Linear.backward(dinp: s.dhidden, dweight: dfc2.weight, dbias: dfc2.bias, dout: branch, inp: y.hidden,
                        weight: fc2.weight, rows: rows, inputs: F, outputs: C, bf16: bf16)
        ReLU.backward(dinp: s.dpre, inp: y.hidden, dout: s.dhidden, count: rows * F)
        Linear.backward(dinp: dinput, dweight: dfc1.weight, dbias: dfc1.bias, dout: s.dpre, inp: inp, weight: fc1.weight,
                        rows: rows, inputs: C, outputs: F, accumulateInput: accumulate, bf16: bf16)
    }
}
