// EncoderDecoder: the Transformer of "Attention Is All You Need" — an encoder stack (self-attention
// with a source padding mask, ReLU feed-forward), a decoder stack (causal self-attention,
// encoder-decoder attention, feed-forward), residual + LayerNorm around every sublayer (post-LN,
// or pre-LN with a final LayerNorm per stack), sinusoidal positions, one shared vocabulary with one
// embedding tied to the encoder input, decoder input and output projection — as a forward/backward
// pair over one flat, layer-major parameter buffer, composed of the sublayers in Sublayers.swift.
//
// Shape legend: B batch (pairs), S source length, T target length (padded, ≤ maxLength), C width,
// H heads, F feed-forward width, V vocabulary, E/D encoder/decoder layers, M = maxLength.
// Linear weights are stored (in, out).
import Kernels
import Support

public final class EncoderDecoder {
    /// The dropout sites within a layer's mask stream.
    enum DropoutSite: UInt64 {
        case embedding = 0, selfAttentionProbabilities = 1, selfAttentionOutput = 2
        case crossAttentionProbabilities = 3, crossAttentionOutput = 4, feedForwardOutput = 5
    }
    /// The mask streams: one per encoder layer, one per decoder layer, one per embedded input.
    enum Stream {
        case encoder(Int), decoder(Int), sourceEmbedding, targetEmbedding
        var layer: Int {
            switch self {
            case .encoder(let l): l
            case .decoder(let l): (1 << 12) + l
            case .sourceEmbedding: 1 << 13
            case .targetEmbedding: (1 << 13) + 1
            }
        }
        var isDecoder: Bool { if case .decoder = self { true } else { false } }
    }

    public let config: EncoderDecoderConfig
    public let layout: ParameterLayout
    public let parameters: FlatBuffer   // (P) all weights, layer-major
    public let gradients: FlatBuffer    // (P) same layout; backward adds into it
    /// Largest batch the activation buffers hold.
    public let maxBatch: Int
    /// The sinusoidal table (maxLength, C); not a parameter.
    public let positionSignal: FlatBuffer
    let plan: EncoderDecoderPlan
    private let activations: FlatBuffer  // every Slot of `plan`
    private let sourceTokens, targetInput, targetOutput, sourceLengths: UnsafeMutablePointer<Int32>
    /// How the matrix products run; with bf16, the weights' bf16 copy and the conversion scratch.
    public let precision: Precision
    let bf16: BF16Operands?
    /// Called after backward has finished each layout group: decoder blocks last → first (groups
    /// E+D … E+1), then encoder blocks (E … 1), then the embedding (0), so all-reduce can start early.
    public var onGroupReady: ((Int) -> Void)?
    /// Called between the sublayers of backward, so communication in flight can progress.
    public var onBackwardProgress: (() -> Void)?

    private var lastBatch = 0, lastSource = 0, lastTarget = 0, lastSmoothing: Float = 0
    private var lastDropout: DropoutStream?

    /// The layout (see EncoderDecoderPlan for the names and groups).
    public static func layout(_ c: EncoderDecoderConfig) -> ParameterLayout { EncoderDecoderPlan(c, batch: 0).layout }

    public init(config: EncoderDecoderConfig, maxBatch: Int, precision: Precision = .fp32) {
        if let problem = config.problem { preconditionFailure("EncoderDecoderConfig: \(problem)") }
        self.config = config
        self.maxBatch = maxBatch
        plan = EncoderDecoderPlan(config, batch: maxBatch)
        layout = plan.layout
        parameters = FlatBuffer(count: layout.count)
        gradients = FlatBuffer(count: layout.count)
        positionSignal = FlatBuffer(count: config.maxLength * config.width)
        SinusoidalEmbedding.signal(into: positionSignal.pointer, positions: config.maxLength, channels: config.width)
        activations = FlatBuffer(count: plan.activationCount)
        let a = Buffers(base: activations.pointer), N = maxBatch * config.maxLength
        sourceTokens = a.ints(plan.sourceTokens, count: N); targetInput = a.ints(plan.targetInput, count: N)
        targetOutput = a.ints(plan.targetOutput, count: N); sourceLengths = a.ints(plan.sourceLengths, count: maxBatch)
        self.precision = precision
        // Scratch for the widest product input (C or F) and output gradient (3C, F or V).
        let C = config.width, F = config.ffnWidth
        bf16 = precision == .fp32 ? nil
            : BF16Operands(weights: BF16Weights(source: parameters.pointer, count: layout.count),
                           inputCapacity: N * max(C, F), gradientCapacity: N * max(3 * C, F, config.vocabularySize))
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
    public var activationBytes: Int { activations.bytes + (bf16.map { $0.scratchBytes + $0.weights.bytes } ?? 0) }
    var embeddingScale: Float { Float(config.width).squareRoot() }
    private var a: Buffers { Buffers(base: activations.pointer) }

    /// The views and settings of one stack's pass over B sequences of `length` positions.
    private func pass(length: Int) -> Pass {
        let training = lastDropout != nil
        return Pass(p: Weights(base: parameters.pointer), g: Weights(base: gradients.pointer), a: a, scratch: plan.scratch,
                    batch: lastBatch, length: length, memoryLength: lastSource, width: config.width, heads: config.heads,
                    maskStride: config.maxLength, dropout: lastDropout, residualDropout: training ? config.dropout : 0,
                    attentionDropout: training ? config.attentionDropout : 0, keyLengths: UnsafePointer(sourceLengths),
                    bf16: bf16, progress: onBackwardProgress)
    }
    private static func site(_ stream: Stream) -> MaskSite { MaskSite(layer: stream.layer, DropoutSite.embedding) }

    /// The encoder's output (B,S,C): the last block's (post-LN) or the final LayerNorm's (pre-LN).
    var encoded: UnsafeMutablePointer<Float> { plan.encoderNorm.map { a[$0.output] } ?? plan.encoder[config.encoderLayers - 1].output(a) }
    /// Input of stack block l (B,·,C): the embedded tokens or the previous block's output.
    private func input(_ blocks: [TransformerBlock], _ l: Int, embedded: Slot) -> UnsafePointer<Float> {
        UnsafePointer(l == 0 ? a[embedded] : blocks[l - 1].output(a))
    }

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
        let C = config.width, V = config.vocabularySize
        self.targetInput.update(from: targetInput, count: B * T)
        if let targetOutput { self.targetOutput.update(from: targetOutput, count: B * T) }
        else { self.targetOutput.update(repeating: -1, count: B * T) }
        lastTarget = T; lastSmoothing = labelSmoothing
        encodeStack(source: source, sourceLengths: sourceLengths, batch: B, sourceLength: S, dropout: dropout)
        let s = pass(length: T), embedded = a[plan.targetEmbedded]        // (B,T,C)
        SinusoidalEmbedding.forward(out: embedded, tokens: self.targetInput, table: s.p[plan.embedding],
                                    signal: positionSignal.pointer, scale: embeddingScale, batch: B, time: T, channels: C)
        s.mask(embedded, embedded, site: Self.site(.targetEmbedding))
        var x = UnsafePointer(embedded), memory = UnsafePointer(encoded)
        for block in plan.decoder { x = block.forward(x, memory: memory, s) }   // (B,T,C) each
        if let norm = plan.decoderNorm { x = norm.forward(x, s) }
        // Tied output projection: logits(BT, V) = x(BT, C) · embeddingᵀ
        TiedProjection.forward(logits: a[plan.logits], x: x, embedding: s.p[plan.embedding], rows: B * T, width: C,
                               vocabulary: V, bf16: bf16)
        guard targetOutput != nil else { return (0, 0) }
        return CrossEntropy.forward(losses: a[plan.losses], logits: a[plan.logits], targets: self.targetOutput, rows: B * T,
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
    public var logits: UnsafePointer<Float> { UnsafePointer(a[plan.logits]) }

    private func encodeStack(source: UnsafePointer<Int32>, sourceLengths: UnsafePointer<Int32>, batch B: Int,
                             sourceLength S: Int, dropout: DropoutStream?) {
        for b in 0..<B {
            precondition(sourceLengths[b] >= 1 && Int(sourceLengths[b]) <= S,
                         "EncoderDecoder: source length \(sourceLengths[b]) of item \(b) is not in 1…\(S)")
        }
        sourceTokens.update(from: source, count: B * S)
        self.sourceLengths.update(from: sourceLengths, count: B)
        lastBatch = B; lastSource = S; lastDropout = dropout
        let s = pass(length: S), embedded = a[plan.sourceEmbedded]          // (B,S,C)
        SinusoidalEmbedding.forward(out: embedded, tokens: sourceTokens, table: s.p[plan.embedding],
                                    signal: positionSignal.pointer, scale: embeddingScale, batch: B, time: S,
                                    channels: config.width)
        s.mask(embedded, embedded, site: Self.site(.sourceEmbedding))
        var x = UnsafePointer(embedded)
        for block in plan.encoder { x = block.forward(x, s) }               // (B,S,C) each
        if let norm = plan.encoderNorm { _ = norm.forward(x, s) }
    }

    // MARK: Backward

    /// Adds the gradient of (Σ loss · scale) of the last forward into `gradients`: `forward` read in
    /// reverse. `scale` is 1 / target tokens in the whole optimizer step, so micro-batches accumulate.
    public func backward(scale: Float) {
        let s = pass(length: lastTarget), t = plan.scratch, g = s.g, C = config.width, V = config.vocabularySize
        let E = config.encoderLayers, D = config.decoderLayers, rows = s.rows
        CrossEntropy.backward(dlogits: a[plan.logits], targets: targetOutput, rows: rows, vocabulary: V, scale: scale,
                              labelSmoothing: lastSmoothing)
        var d = ResidualGradient(current: a[t.gradient], spare: a[t.spare])   // (B,T,C) then (B,S,C)
        let blocksOutput = UnsafePointer(plan.decoder[D - 1].output(a))
        // Tied head: dx = dlogits · embedding ; dembedding += dlogitsᵀ · x
        TiedProjection.backward(dx: plan.decoderNorm == nil ? d.current : a[t.dln], dembedding: g[plan.embedding],
                                dlogits: a[plan.logits], x: plan.decoderNorm.map { UnsafePointer(a[$0.output]) } ?? blocksOutput,
                                embedding: s.p[plan.embedding], rows: rows, width: C, vocabulary: V, bf16: bf16)
        if let norm = plan.decoderNorm {
            VectorOps.zero(d.current, count: rows * C)
            norm.backward(dinp: d.current, dout: a[t.dln], x: blocksOutput, s)
        }
        VectorOps.zero(a[t.dmemory], count: lastBatch * lastSource * C)
        let memory = UnsafePointer(encoded)
        for l in stride(from: D - 1, through: 0, by: -1) {
            plan.decoder[l].backward(&d, x: input(plan.decoder, l, embedded: plan.targetEmbedded), memory: memory, s)
            onGroupReady?(1 + E + l)
        }
        // Decoder input embedding (its group is reported after the encoder's).
        SinusoidalEmbedding.backward(dtable: g[plan.embedding], dout: s.masked(d.current, site: Self.site(.targetEmbedding)),
                                     tokens: targetInput, scale: embeddingScale, rows: rows, channels: C)
        onBackwardProgress?()
        encoderBackward(&d)
    }

    /// The encoder's backward: its output's gradient is Σ over decoder layers of the K/V
    /// projections' input gradients (the scratch `dmemory`).
    private func encoderBackward(_ d: inout ResidualGradient) {
        let s = pass(length: lastSource), t = plan.scratch, C = config.width, E = config.encoderLayers
        let blocksOutput = UnsafePointer(plan.encoder[E - 1].output(a))
        if let norm = plan.encoderNorm {
            VectorOps.zero(d.current, count: s.rows * C)
            norm.backward(dinp: d.current, dout: a[t.dmemory], x: blocksOutput, s)
        } else {
            d.current.update(from: a[t.dmemory], count: s.rows * C)
        }
        for l in stride(from: E - 1, through: 0, by: -1) {
            plan.encoder[l].backward(&d, x: input(plan.encoder, l, embedded: plan.sourceEmbedded), s)
            onGroupReady?(1 + l)
        }
        SinusoidalEmbedding.backward(dtable: s.g[plan.embedding], dout: s.masked(d.current, site: Self.site(.sourceEmbedding)),
                                     tokens: sourceTokens, scale: embeddingScale, rows: s.rows, channels: C)
        onGroupReady?(0)
    }
}
