// BERT: the encoder-only Transformer of Devlin et al. with its masked-language-model head
// (Hugging Face `BertForMaskedLM`) — word + position + segment embeddings → LayerNorm → dropout,
// a stack of blocks with padded self-attention and an erf-GELU feed-forward (post-LN as BERT, or
// pre-LN with a final LayerNorm), and the head (dense → GELU → LayerNorm → decoder tied to the word
// embeddings + bias) run only on the predicted rows — as a forward/backward pair over one flat,
// layer-major parameter buffer, composed of the sublayers in Sublayers.swift (BERTPlan.swift
// declares them).
//
// Shape legend: B batch, T time (≤ context), C width, H heads, F feed-forward width, V vocabulary,
// L layers, M predicted rows. Linear weights are stored (in, out).
import Kernels
import Support

public final class BERT {
    /// The dropout sites within a layer's mask stream; the embeddings' stream is layer L's.
    enum DropoutSite: UInt64 {
        case embedding = 0, attentionProbabilities = 1, attentionOutput = 2, feedForwardOutput = 3
    }

    public let config: BERTConfig
    public let layout: ParameterLayout
    public let parameters: FlatBuffer   // (P) all weights, layer-major
    public let gradients: FlatBuffer    // (P) same layout; backward adds into it
    /// Largest batch the activation buffers hold.
    public let maxBatch: Int
    /// Most predicted rows (targets ≥ 0) one forward may have: the rows the MLM head holds.
    public let maxPredictions: Int
    let plan: BERTPlan
    private let activations: FlatBuffer  // every Slot of `plan`
    /// How the matrix products run; with bf16, the weights' bf16 copy and the conversion scratch.
    public let precision: Precision
    let bf16: BF16Operands?
    /// Called after backward has finished each layout group: the head (group L+1, with the final
    /// LayerNorm under pre-LN), then layers L−1 … 0 (groups L … 1), then the embeddings (0, last:
    /// the tied decoder adds into the word embeddings' gradient), so all-reduce can start early.
    public var onGroupReady: ((Int) -> Void)?
    /// Called between the sublayers of backward, so communication in flight can progress.
    public var onBackwardProgress: (() -> Void)?

    private var lastBatch = 0, lastTime = 0, lastCount = 0
    private var lastDropout: DropoutStream?

    /// The layout (see BERTPlan for the names and groups).
    public static func layout(_ c: BERTConfig) -> ParameterLayout { BERTPlan(c, batch: 0, predictions: 0).layout }

    /// `maxPredictions` nil is maxBatch · contextLength (every row may be predicted); the head's
    /// logits and probabilities take maxPredictions · V floats each.
    public init(config: BERTConfig, maxBatch: Int, maxPredictions: Int? = nil, precision: Precision = .fp32) {
        if let problem = config.problem { preconditionFailure("BERTConfig: \(problem)") }
        let N = maxBatch * config.contextLength, M = maxPredictions ?? N
        precondition(M >= 0 && M <= N, "BERT: maxPredictions \(M) is not in 0…\(N) (maxBatch × contextLength)")
        self.config = config
        self.maxBatch = maxBatch
        self.maxPredictions = M
        plan = BERTPlan(config, batch: maxBatch, predictions: M)
        layout = plan.layout
        parameters = FlatBuffer(count: layout.count)
        gradients = FlatBuffer(count: layout.count)
        activations = FlatBuffer(count: plan.activationCount)
        self.precision = precision
        // Scratch for the widest product input (C or F) and output gradient (3C, F, or the head's V).
        let C = config.width, F = config.ffnWidth
        bf16 = precision == .fp32 ? nil
            : BF16Operands(weights: BF16Weights(source: parameters.pointer, count: layout.count),
                           inputCapacity: N * max(C, F), gradientCapacity: max(N * max(3 * C, F), M * config.vocabularySize))
    }

    /// Refreshes the bf16 copy of the weights after the parameters changed (no-op in fp32).
    public func parametersDidChange() { bf16?.weights.refresh() }

    /// BERT's initialisation: every matrix and embedding ~ N(0, 0.02), biases 0, LayerNorm scale 1.
    /// Counter-based, so it depends on the seed alone.
    public func initialize(seed: UInt64) {
        for (index, t) in layout.tensors.enumerated() {
            let p = parameters.pointer + t.offset
            if t.shape.count == 1 {
                let isNormScale = t.name.hasSuffix("LayerNorm.weight") || t.name.hasSuffix("layer_norm.weight")
                p.update(repeating: isNormScale ? 1 : 0, count: t.count)
                continue
            }
            let key = CounterRandom.key(seed, 0xBE27, UInt64(index))
            for i in 0..<t.count { p[i] = 0.02 * CounterRandom.normal(key: key, counter: UInt64(i)) }
        }
        parametersDidChange()
    }

    /// Activations and backward scratch; with bf16 also the conversion scratch and the weights'
    /// bf16 copy.
    public var activationBytes: Int { activations.bytes + (bf16.map { $0.scratchBytes + $0.weights.bytes } ?? 0) }
    private var a: Buffers { Buffers(base: activations.pointer) }
    private var tokens: UnsafeMutablePointer<Int32> { a.ints(plan.tokens, count: maxBatch * config.contextLength) }
    private var segments: UnsafeMutablePointer<Int32> { a.ints(plan.segments, count: maxBatch * config.contextLength) }
    private var lengths: UnsafeMutablePointer<Int32> { a.ints(plan.lengths, count: maxBatch) }

    /// The views and settings of a forward (and its backward) on the last batch. Residual masks
    /// are a context apart per example, so a sequence's masks do not depend on its batch's padding.
    private func pass() -> Pass {
        let training = lastDropout != nil
        return Pass(p: Weights(base: parameters.pointer), g: Weights(base: gradients.pointer), a: a, scratch: plan.scratch,
                    batch: lastBatch, length: lastTime, memoryLength: lastTime, width: config.width, heads: config.heads,
                    maskStride: config.contextLength, dropout: lastDropout, residualDropout: training ? config.dropout : 0,
                    attentionDropout: training ? config.attentionDropout : 0, keyLengths: UnsafePointer(lengths),
                    bf16: bf16, progress: onBackwardProgress)
    }
    private var embeddingSite: MaskSite { MaskSite(layer: config.layers, DropoutSite.embedding) }

    /// Input of block l (B,T,C): the embeddings' LayerNorm output (after dropout) or the previous block's output.
    private func blockInput(_ l: Int) -> UnsafePointer<Float> {
        UnsafePointer(l == 0 ? a[plan.embeddingNorm.output] : plan.blocks[l - 1].output(a))
    }
    /// The encoder's output (B,T,C): the last block's (post-LN) or the final LayerNorm's (pre-LN).
    private var encoded: UnsafePointer<Float> {
        UnsafePointer(plan.finalNorm.map { a[$0.output] } ?? plan.blocks[config.layers - 1].output(a))
    }

    /// Logits (predictedCount, V) of the predicted rows of the last forward, in their gathered
    /// (row-major b, t) order: for fill-mask and accuracy.
    public var predictedLogits: UnsafePointer<Float> { UnsafePointer(a[plan.head.logits]) }
    /// Rows of `predictedLogits`: the targets ≥ 0 of the last forward.
    public var predictedCount: Int { lastCount }

    // MARK: Forward

    /// Runs the model on `tokens` (B, T) with `segments` (B, T) (nil: all 0) and `lengths` (B)
    /// valid positions per row (keys at ≥ length are masked out of every attention; token ids
    /// there must still be valid ids). `targets` (B, T) holds the original token id at predicted
    /// positions and −1 elsewhere: the MLM head runs only on the rows with target ≥ 0, gathered in
    /// row-major (b, t) order (at most maxPredictions). Returns (Σ cross-entropy over those rows,
    /// their count) and keeps what `backward` needs. `dropout` nil means evaluation.
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, segments: UnsafePointer<Int32>?, lengths: UnsafePointer<Int32>,
                        targets: UnsafePointer<Int32>, batch B: Int, time T: Int,
                        dropout: DropoutStream? = nil) -> (sum: Double, count: Int) {
        precondition(B <= maxBatch && T <= config.contextLength,
                     "BERT.forward: batch \(B) or time \(T) exceeds \(maxBatch) × \(config.contextLength)")
        let N = B * T, C = config.width, V = config.vocabularySize
        for b in 0..<B {
            precondition(lengths[b] >= 1 && Int(lengths[b]) <= T, "BERT: length \(lengths[b]) of row \(b) is not in 1…\(T)")
        }
        self.tokens.update(from: tokens, count: N)
        if let segments {
            for n in 0..<N {
                precondition(segments[n] >= 0 && Int(segments[n]) < config.typeVocabularySize,
                             "BERT: segment \(segments[n]) at \(n) is not in 0..<\(config.typeVocabularySize)")
            }
            self.segments.update(from: segments, count: N)
        } else {
            self.segments.update(repeating: 0, count: N)
        }
        self.lengths.update(from: lengths, count: B)
        // The predicted rows and their targets, row-major.
        let rows = a.ints(plan.head.rows, count: maxPredictions), wanted = a.ints(plan.head.targets, count: maxPredictions)
        var M = 0
        for n in 0..<N where targets[n] >= 0 {
            precondition(Int(targets[n]) < V, "BERT: target \(targets[n]) at \(n) is not below the vocabulary \(V)")
            precondition(M < maxPredictions, "BERT.forward: more than maxPredictions \(maxPredictions) targets ≥ 0")
            rows[M] = Int32(n); wanted[M] = targets[n]; M += 1
        }
        lastBatch = B; lastTime = T; lastCount = M; lastDropout = dropout
        let s = pass(), p = s.p, embedded = a[plan.embedded]                 // (B,T,C)
        Encoder.forward(out: embedded, tokens: self.tokens, wte: p[plan.wordEmbeddings], wpe: p[plan.positionEmbeddings],
                        batch: B, time: T, channels: C)
        Rows.gather(out: embedded, table: p[plan.tokenTypeEmbeddings], indices: self.segments, rows: N, width: C,
                    accumulate: true)
        let normed = a[plan.embeddingNorm.output]
        _ = plan.embeddingNorm.forward(embedded, s)
        s.mask(normed, normed, site: embeddingSite)
        var x = UnsafePointer(normed)
        for block in plan.blocks { x = block.forward(x, s) }                 // (B,T,C) each
        if let norm = plan.finalNorm { x = norm.forward(x, s) }
        guard M > 0 else { return (0, 0) }
        let sum = plan.head.forward(x, count: M, embedding: plan.wordEmbeddings, vocabulary: V, s)
        return (sum, M)
    }

    // MARK: Backward

    /// Adds ∂(Σ loss · scale)/∂θ of the last forward into `gradients`: `forward` read in reverse.
    /// `scale` is 1 / predicted rows in the whole optimizer step, so micro-batches accumulate.
    public func backward(scale: Float) {
        let s = pass(), t = plan.scratch, g = s.g, C = config.width, L = config.layers, N = s.rows
        var d = ResidualGradient(current: a[t.gradient], spare: a[t.spare])   // (B,T,C)
        // The head's gradient lands at the predicted rows of the encoder output; every other row's is 0.
        let dencoded = plan.finalNorm == nil ? d.current : a[t.dln]
        VectorOps.zero(dencoded, count: N * C)
        if lastCount > 0 {
            plan.head.backward(dx: dencoded, count: lastCount, embedding: plan.wordEmbeddings,
                               vocabulary: config.vocabularySize, scale: scale, s)
        }
        if let norm = plan.finalNorm {
            VectorOps.zero(d.current, count: N * C)
            norm.backward(dinp: d.current, dout: dencoded, x: UnsafePointer(plan.blocks[L - 1].output(a)), s)
        }
        onGroupReady?(L + 1)
        for l in stride(from: L - 1, through: 0, by: -1) {
            s.progress?()
            plan.blocks[l].backward(&d, x: blockInput(l), s)
            onGroupReady?(1 + l)
        }
        // Embeddings: through the dropout mask and the LayerNorm into dsum (B,T,C), then each table.
        let dnormed = s.masked(d.current, site: embeddingSite), dsum = a[t.dln]
        VectorOps.zero(dsum, count: N * C)
        plan.embeddingNorm.backward(dinp: dsum, dout: dnormed, x: a[plan.embedded], s)
        Encoder.backward(dwte: g[plan.wordEmbeddings], dwpe: g[plan.positionEmbeddings], dout: dsum, tokens: tokens,
                         batch: lastBatch, time: lastTime, channels: C)
        Rows.scatterAdd(table: g[plan.tokenTypeEmbeddings], inp: dsum, indices: segments, rows: N, width: C)
        onGroupReady?(0)
    }
}
