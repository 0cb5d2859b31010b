// GPT: the GPT-2 architecture — token + position embedding, pre-LN blocks x + attn(ln₁(x)),
// x + mlp(ln₂(x)) with a 4× GELU MLP, final LayerNorm, LM head tied to the token embedding — as a
// forward/backward pair over one flat, layer-major parameter buffer, composed of the sublayers in
// Sublayers.swift.
//
// Shape legend: B batch, T time (≤ context), C width, H heads, V vocabulary, L layers. Linear
// weights are stored (in, out), exactly as Hugging Face GPT-2's Conv1D.
import Kernels
import Support

/// Every tensor and activation of a GPT at `batch` sequences, declared once, in buffer order.
struct GPTPlan {
    let layout: ParameterLayout
    let activationCount: Int
    let wte: Tensor                  // (V, C)
    let wpe: Tensor                  // (maxT, C)
    let blocks: [TransformerBlock]
    let finalNorm: NormSublayer      // ln_f
    let encoded: Slot                // (B,T,C) token + position embedding
    let logits: Slot                 // (B,T,V) logits → probs → dlogits
    let losses: Slot                 // (B,T)
    let scratch: BackwardScratch

    init(_ c: GPTConfig, batch B: Int, precision: Precision = .fp32) {
        let T = c.contextLength, C = c.width, N = B * T, probabilities = B * c.heads * T * T
        var b = ModelBuilder(precision: precision)
        wte = b.tensor("wte.weight", [c.vocabularySize, C], decay: true)
        wpe = b.tensor("wpe.weight", [T, C])
        b.endGroup("embeddings")
        encoded = b.buffer(N * C)
        var blocks: [TransformerBlock] = []
        for l in 0..<c.layers {
            blocks.append(GPTPlan.block(&b, layer: l, c, rows: N, probabilities: probabilities))
            if l < c.layers - 1 { b.endGroup("h.\(l)") }
        }
        self.blocks = blocks
        finalNorm = NormSublayer(&b, norm: b.norm("ln_f", width: C), rows: N, width: C, epsilon: c.layerNormEpsilon)
        b.endGroup(c.layers > 0 ? "h.\(c.layers - 1)+ln_f" : "ln_f")
        logits = b.buffer(N * c.vocabularySize); losses = b.buffer(N)
        scratch = BackwardScratch(&b, rows: N, width: C, hidden: 4 * C, probabilities: probabilities, cross: false,
                                  postNorm: false, relu: false)
        layout = b.layout; activationCount = b.activationCount
    }

    /// Block l: ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj (Hugging Face names).
    static func block(_ b: inout ModelBuilder, layer l: Int, _ c: GPTConfig, rows N: Int,
                      probabilities: Int) -> TransformerBlock {
        let h = "h.\(l).", C = c.width, e = c.layerNormEpsilon
        let ln1 = b.norm(h + "ln_1", width: C)
        let attention = AttentionSublayer(&b, qkv: h + "attn.c_attn", out: h + "attn.c_proj", mask: .causal,
                                          site: MaskSite(layer: l, GPT.DropoutSite.attentionProbabilities), rows: N,
                                          width: C, probabilities: probabilities, dropout: c.dropout > 0)
        let ln2 = b.norm(h + "ln_2", width: C)
        let mlp = FeedForwardSublayer(&b, fc1: h + "mlp.c_fc", fc2: h + "mlp.c_proj", activation: .gelu, rows: N,
                                      width: C, hidden: 4 * C)
        let attentionSite = MaskSite(layer: l, GPT.DropoutSite.attentionOutput)
        let mlpSite = MaskSite(layer: l, GPT.DropoutSite.feedForwardOutput)
        return TransformerBlock(
            selfAttention: Sublayer(residual: ResidualSublayer(&b, norm: ln1, placement: .pre, site: attentionSite,
                                                               rows: N, width: C, epsilon: e), function: attention),
            crossAttention: nil,
            feedForward: Sublayer(residual: ResidualSublayer(&b, norm: ln2, placement: .pre, site: mlpSite,
                                                             rows: N, width: C, epsilon: e), function: mlp))
    }
}

public final class GPT {
    /// GPT-2's dropout sites within a layer's mask stream; the embedding's stream is layer L's.
    enum DropoutSite: UInt64 {
        case embedding = 0, attentionProbabilities = 1, attentionOutput = 2, feedForwardOutput = 3
    }

    public let config: GPTConfig
    public let layout: ParameterLayout
    public let parameters: FlatBuffer   // (P) all weights, layer-major
    public let gradients: FlatBuffer    // (P) same layout; backward adds into it
    /// Largest batch the activation buffers hold.
    public let maxBatch: Int
    let plan: GPTPlan
    private let activations: FlatBuffer // every Slot of `plan`
    /// How the matrix products run; with bf16, the weights' bf16 copy (shared with replicas) and
    /// this model's conversion scratch.
    public let precision: Precision
    let bf16: BF16Operands?
    private let ownsBF16Weights: Bool
    /// Called after backward has finished each layout group (in reverse order: ln_f is part of the
    /// last group, then blocks L−1…0, then the embeddings), so all-reduce can start early.
    public var onGroupReady: ((Int) -> Void)?
    /// Called between the layers of backward, so communication in flight can progress.
    public var onBackwardProgress: (() -> Void)?

    private var lastBatch = 0, lastTime = 0
    private var lastDropout: DropoutStream?

    /// The layout: embeddings, then each block (one group each), then the final LayerNorm.
    public static func layout(_ c: GPTConfig) -> ParameterLayout { GPTPlan(c, batch: 0).layout }

    public convenience init(config: GPTConfig, maxBatch: Int, precision: Precision = .fp32) {
        precondition(config.width % config.heads == 0, "width must be divisible by heads")
        let layout = GPT.layout(config)
        let parameters = FlatBuffer(count: layout.count)
        self.init(config: config, maxBatch: maxBatch, parameters: parameters,
                  bf16Weights: precision == .bf16 ? BF16Weights(source: parameters.pointer, count: layout.count) : nil,
                  ownsBF16Weights: true)
    }

    /// A replica for data parallelism across threads (`GPTReplicas`): it reads `primary`'s
    /// parameters (the same buffer, not a copy) and owns its gradients and activations.
    public convenience init(replicaOf primary: GPT, maxBatch: Int) {
        self.init(config: primary.config, maxBatch: maxBatch, parameters: primary.parameters,
                  bf16Weights: primary.bf16?.weights, ownsBF16Weights: false)
    }

    /// The model over `parameters` with its own gradients and activations.
    private init(config: GPTConfig, maxBatch: Int, parameters: FlatBuffer, bf16Weights: BF16Weights?,
                 ownsBF16Weights: Bool) {
        self.config = config
        self.maxBatch = maxBatch
        plan = GPTPlan(config, batch: maxBatch, precision: bf16Weights == nil ? .fp32 : .bf16)
        layout = plan.layout
        self.parameters = parameters
        gradients = FlatBuffer(count: layout.count)
        activations = FlatBuffer(count: plan.activationCount)
        precision = bf16Weights == nil ? .fp32 : .bf16
        self.ownsBF16Weights = ownsBF16Weights
        // Scratch for the widest product input (the MLP's 4C) and output gradient (4C or V).
        let rows = maxBatch * config.contextLength, C = config.width
        bf16 = bf16Weights.map {
            BF16Operands(weights: $0, inputCapacity: rows * 4 * C,
                         gradientCapacity: rows * max(4 * C, config.vocabularySize))
        }
    }

    /// Refreshes the bf16 copy of the weights after the parameters changed (no-op in fp32).
    public func parametersDidChange() { bf16?.weights.refresh() }

    /// GPT-2 initialisation: weights ~ N(0, 0.02), residual projections ~ N(0, 0.02/√(2L)),
    /// biases 0, LayerNorm scale 1. Counter-based, so it depends on the seed alone.
    public func initialize(seed: UInt64) {
        let residualStd = 0.02 / Float(2 * config.layers).squareRoot()
        for (index, t) in layout.tensors.enumerated() {
            let p = parameters.pointer + t.offset
            if t.name.hasSuffix("ln_1.weight") || t.name.hasSuffix("ln_2.weight") || t.name == "ln_f.weight" {
                p.update(repeating: 1, count: t.count)
            } else if t.name.hasSuffix(".bias") {
                p.update(repeating: 0, count: t.count)
            } else {
                let std: Float = t.name.hasSuffix("c_proj.weight") ? residualStd : 0.02
                let key = CounterRandom.key(seed, 0x1417, UInt64(index))
                for i in 0..<t.count { p[i] = std * CounterRandom.normal(key: key, counter: UInt64(i)) }
            }
        }
        parametersDidChange()
    }

    /// Activations and backward scratch; with bf16 also the conversion scratch and, in the model
    /// that made it (not a replica), the weights' bf16 copy.
    public var activationBytes: Int {
        activations.bytes + (bf16.map { $0.scratchBytes + (ownsBF16Weights ? $0.weights.bytes : 0) } ?? 0)
    }

    /// The views and settings of a forward (and its backward) on B sequences of T tokens.
    func pass(batch B: Int, time T: Int, dropout: DropoutStream?) -> Pass {
        let p = dropout == nil ? 0 : config.dropout
        return Pass(p: Weights(base: parameters.pointer), g: Weights(base: gradients.pointer),
                    a: Buffers(base: activations.pointer), scratch: plan.scratch, batch: B, length: T, memoryLength: T,
                    width: config.width, heads: config.heads, maskStride: T, dropout: dropout, residualDropout: p,
                    attentionDropout: p, keyLengths: nil, bf16: bf16, progress: onBackwardProgress)
    }

    /// Input of block l (B,T,C); block L's is the final LayerNorm's.
    private func blockInput(_ l: Int, _ a: Buffers) -> UnsafePointer<Float> {
        UnsafePointer(l == 0 ? a[plan.encoded] : plan.blocks[l - 1].output(a))
    }
    private var embeddingSite: MaskSite { MaskSite(layer: config.layers, DropoutSite.embedding) }

    /// Logits (B, T, V) of the last forward without targets.
    public var logits: UnsafePointer<Float> { UnsafePointer(activations.pointer + plan.logits.offset) }

    /// Runs the model on tokens (B, T); with targets, returns (Σ loss, counted tokens) and keeps
    /// the probabilities for `backward`. `dropout` nil means evaluation (no dropout).
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>?,
                        batch B: Int, time T: Int, dropout: DropoutStream? = nil) -> (sum: Double, count: Int) {
        precondition(B <= maxBatch && T <= config.contextLength, "GPT.forward: batch or time too large")
        lastBatch = B; lastTime = T; lastDropout = dropout
        let s = pass(batch: B, time: T, dropout: dropout), a = s.a, p = s.p
        let C = config.width, V = config.vocabularySize
        let embedded = a[plan.encoded]                                       // (B,T,C)
        Encoder.forward(out: embedded, tokens: tokens, wte: p[plan.wte], wpe: p[plan.wpe], batch: B, time: T, channels: C)
        s.mask(embedded, embedded, site: embeddingSite)
        var x = UnsafePointer(embedded)
        for block in plan.blocks { x = block.forward(x, s) }                // (B,T,C) each
        let y = plan.finalNorm.forward(x, s)                                 // (B,T,C)
        // Tied LM head: logits(BT, V) = y(BT, C) · wteᵀ
        TiedProjection.forward(logits: a[plan.logits], x: y, embedding: p[plan.wte], rows: B * T, width: C,
                               vocabulary: V, bf16: bf16)
        guard let targets else { return (0, 0) }
        return CrossEntropy.forward(losses: a[plan.losses], logits: a[plan.logits], targets: targets, rows: B * T,
                                    vocabulary: V)
    }

    /// Adds the gradient of (Σ loss · scale) of the last forward into `gradients`: `forward` read
    /// in reverse. `scale` is 1 / tokens in the whole optimizer step, so micro-batches accumulate.
    public func backward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, scale: Float) {
        let B = lastBatch, T = lastTime, L = config.layers
        let s = pass(batch: B, time: T, dropout: lastDropout), a = s.a, p = s.p, g = s.g
        let C = config.width, V = config.vocabularySize
        let dy = a[plan.scratch.dln]                                         // (B,T,C) ∂L/∂ln_f's output
        CrossEntropy.backward(dlogits: a[plan.logits], targets: targets, rows: B * T, vocabulary: V, scale: scale)
        // Tied head: dy = dlogits · wte ; dwte += dlogitsᵀ · y
        TiedProjection.backward(dx: dy, dembedding: g[plan.wte], dlogits: a[plan.logits], x: a[plan.finalNorm.output],
                                embedding: p[plan.wte], rows: B * T, width: C, vocabulary: V, bf16: bf16)
        var d = ResidualGradient(current: a[plan.scratch.gradient], spare: a[plan.scratch.spare])   // (B,T,C)
        VectorOps.zero(d.current, count: B * T * C)
        plan.finalNorm.backward(dinp: d.current, dout: dy, x: blockInput(L, a), s)
        for l in stride(from: L - 1, through: 0, by: -1) {
            plan.blocks[l].backward(&d, x: blockInput(l, a), s)
            onGroupReady?(l + 1)
        }
        s.mask(d.current, d.current, site: embeddingSite)
        Encoder.backward(dwte: g[plan.wte], dwpe: g[plan.wpe], dout: d.current, tokens: tokens, batch: B, time: T,
                         channels: C)
        onGroupReady?(0)
    }
}
