// GPT: the GPT-2 architecture — token + position embedding, pre-LN blocks x + attn(ln₁(x)),
// x + mlp(ln₂(x)) with a 4× GELU MLP, final LayerNorm, LM head tied to the token embedding — as a
// forward/backward pair over one flat, layer-major parameter buffer. It is not the training loop
// (Training) nor the sampler's cached decoding (GPTDecoder).
//
// Shape legend: B batch, T time (≤ context), C width, H heads, D = C/H head size, V vocabulary,
// L layers. Linear weights are stored (in, out), exactly as Hugging Face GPT-2's Conv1D.
import Kernels
import Support

/// Pointers to every tensor of one parameter-shaped buffer (parameters or gradients).
public struct GPTTensors {
    public struct Block {
        public let ln1Weight, ln1Bias: UnsafeMutablePointer<Float>            // (C), (C)
        public let qkvWeight, qkvBias: UnsafeMutablePointer<Float>            // (C, 3C), (3C)
        public let attnProjWeight, attnProjBias: UnsafeMutablePointer<Float>  // (C, C), (C)
        public let ln2Weight, ln2Bias: UnsafeMutablePointer<Float>            // (C), (C)
        public let fcWeight, fcBias: UnsafeMutablePointer<Float>              // (C, 4C), (4C)
        public let fcProjWeight, fcProjBias: UnsafeMutablePointer<Float>      // (4C, C), (C)
    }
    public let wte: UnsafeMutablePointer<Float>                               // (V, C)
    public let wpe: UnsafeMutablePointer<Float>                               // (maxT, C)
    public let blocks: [Block]
    public let lnfWeight, lnfBias: UnsafeMutablePointer<Float>                // (C), (C)

    public init(base: UnsafeMutablePointer<Float>, layout: ParameterLayout, layers: Int) {
        func at(_ name: String) -> UnsafeMutablePointer<Float> { base + layout.spec(name)!.offset }
        wte = at("wte.weight"); wpe = at("wpe.weight")
        blocks = (0..<layers).map { l in
            let h = "h.\(l)."
            return Block(ln1Weight: at(h + "ln_1.weight"), ln1Bias: at(h + "ln_1.bias"),
                         qkvWeight: at(h + "attn.c_attn.weight"), qkvBias: at(h + "attn.c_attn.bias"),
                         attnProjWeight: at(h + "attn.c_proj.weight"), attnProjBias: at(h + "attn.c_proj.bias"),
                         ln2Weight: at(h + "ln_2.weight"), ln2Bias: at(h + "ln_2.bias"),
                         fcWeight: at(h + "mlp.c_fc.weight"), fcBias: at(h + "mlp.c_fc.bias"),
                         fcProjWeight: at(h + "mlp.c_proj.weight"), fcProjBias: at(h + "mlp.c_proj.bias"))
        }
        lnfWeight = at("ln_f.weight"); lnfBias = at("ln_f.bias")
    }
}

/// Where dropout draws its masks: a key per optimizer step and the global index of the first
/// example of this micro-batch, so masks depend on the example, not on the rank computing it.
public struct DropoutStream {
    public var key: UInt64
    public var firstExample: Int
    public init(key: UInt64, firstExample: Int) { self.key = key; self.firstExample = firstExample }
    @inline(__always) func key(layer: Int, site: UInt64) -> UInt64 {
        CounterRandom.key(key, UInt64(layer), site)
    }
}

public final class GPT {
    public let config: GPTConfig
    public let layout: ParameterLayout
    public let parameters: FlatBuffer   // (P) all weights, layer-major
    public let gradients: FlatBuffer    // (P) same layout; backward adds into it
    public let params: GPTTensors
    public let grads: GPTTensors
    /// Largest batch the activation buffers hold.
    public let maxBatch: Int
    let acts: GPTActivations
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
    public static func layout(_ c: GPTConfig) -> ParameterLayout {
        let C = c.width, V = c.vocabularySize
        var layout = ParameterLayout()
        layout.add("wte.weight", [V, C], decay: true)
        layout.add("wpe.weight", [c.contextLength, C])
        layout.endGroup("embeddings")
        for l in 0..<c.layers {
            let h = "h.\(l)."
            layout.add(h + "ln_1.weight", [C]); layout.add(h + "ln_1.bias", [C])
            layout.add(h + "attn.c_attn.weight", [C, 3 * C], decay: true); layout.add(h + "attn.c_attn.bias", [3 * C])
            layout.add(h + "attn.c_proj.weight", [C, C], decay: true); layout.add(h + "attn.c_proj.bias", [C])
            layout.add(h + "ln_2.weight", [C]); layout.add(h + "ln_2.bias", [C])
            layout.add(h + "mlp.c_fc.weight", [C, 4 * C], decay: true); layout.add(h + "mlp.c_fc.bias", [4 * C])
            layout.add(h + "mlp.c_proj.weight", [4 * C, C], decay: true); layout.add(h + "mlp.c_proj.bias", [C])
            if l < c.layers - 1 { layout.endGroup("h.\(l)") }
        }
        layout.add("ln_f.weight", [C]); layout.add("ln_f.bias", [C])
        layout.endGroup(c.layers > 0 ? "h.\(c.layers - 1)+ln_f" : "ln_f")
        return layout
    }

    public convenience init(config: GPTConfig, maxBatch: Int, precision: Precision = .fp32) {
        precondition(config.width % config.heads == 0, "width must be divisible by heads")
        let layout = GPT.layout(config)
        let parameters = FlatBuffer(count: layout.count)
        self.init(config: config, maxBatch: maxBatch, layout: layout, parameters: parameters,
                  bf16Weights: precision == .bf16 ? BF16Weights(source: parameters.pointer, count: layout.count) : nil,
                  ownsBF16Weights: true)
    }

    /// A replica for data parallelism across threads (`GPTReplicas`): it reads `primary`'s
    /// parameters (the same buffer, not a copy) and owns its gradients and activations.
    public convenience init(replicaOf primary: GPT, maxBatch: Int) {
        self.init(config: primary.config, maxBatch: maxBatch, layout: primary.layout, parameters: primary.parameters,
                  bf16Weights: primary.bf16?.weights, ownsBF16Weights: false)
    }

    /// The model over `parameters` (laid out as `layout`) with its own gradients and activations.
    private init(config: GPTConfig, maxBatch: Int, layout: ParameterLayout, parameters: FlatBuffer,
                 bf16Weights: BF16Weights?, ownsBF16Weights: Bool) {
        self.config = config
        self.maxBatch = maxBatch
        self.layout = layout
        self.parameters = parameters
        gradients = FlatBuffer(count: layout.count)
        params = GPTTensors(base: parameters.pointer, layout: layout, layers: config.layers)
        grads = GPTTensors(base: gradients.pointer, layout: layout, layers: config.layers)
        acts = GPTActivations(config: config, batch: maxBatch)
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
        acts.bytes + (bf16.map { $0.scratchBytes + (ownsBF16Weights ? $0.weights.bytes : 0) } ?? 0)
    }

    /// Runs the model on tokens (B, T); with targets, returns (Σ loss, counted tokens) and keeps
    /// the probabilities for `backward`. `dropout` nil means evaluation (no dropout).
    @discardableResult
    public func forward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>?,
                        batch B: Int, time T: Int, dropout: DropoutStream? = nil) -> (sum: Double, count: Int) {
        precondition(B <= maxBatch && T <= config.contextLength, "GPT.forward: batch or time too large")
        let C = config.width, V = config.vocabularySize, L = config.layers, BT = B * T
        let pDrop = dropout == nil ? 0 : config.dropout
        let shape = AttentionShape(batch: B, queryLength: T, keyLength: T, heads: config.heads,
                                   headSize: C / config.heads, causal: true)
        let first = dropout?.firstExample ?? 0
        lastBatch = B; lastTime = T; lastDropout = dropout
        let p = params, a = acts

        Encoder.forward(out: a.encoded, tokens: tokens, wte: p.wte, wpe: p.wpe, batch: B, time: T, channels: C)
        if let dropout, pDrop > 0 {
            Dropout.apply(a.encoded, count: BT * C, probability: pDrop, key: dropout.key(layer: L, site: 0),
                          counter: first * T * C)
        }
        for l in 0..<L {
            let w = p.blocks[l], x = a.blocks[l]
            let residual = l == 0 ? a.encoded : a.blocks[l - 1].residual3
            LayerNorm.forward(out: x.ln1, mean: x.ln1Mean, rstd: x.ln1Rstd, inp: residual,
                              weight: w.ln1Weight, bias: w.ln1Bias, rows: BT, channels: C, epsilon: config.layerNormEpsilon)
            Linear.forward(out: x.qkv, inp: x.ln1, weight: w.qkvWeight, bias: w.qkvBias,
                           rows: BT, inputs: C, outputs: 3 * C, bf16: bf16)
            Attention.forward(out: x.atty, outStride: C, probs: x.att,
                              q: x.qkv, qStride: 3 * C, k: x.qkv + C, kStride: 3 * C, v: x.qkv + 2 * C, vStride: 3 * C,
                              shape: shape, dropout: pDrop, dropoutKey: dropout?.key(layer: l, site: 1) ?? 0,
                              dropoutCounter: first * shape.probabilityCount / max(B, 1), probsDropped: x.attDropped)
            Linear.forward(out: x.attProj, inp: x.atty, weight: w.attnProjWeight, bias: w.attnProjBias,
                           rows: BT, inputs: C, outputs: C, bf16: bf16)
            if let dropout, pDrop > 0 {
                Dropout.apply(x.attProj, count: BT * C, probability: pDrop, key: dropout.key(layer: l, site: 2),
                              counter: first * T * C)
            }
            Residual.forward(out: x.residual2, a: residual, b: x.attProj, count: BT * C)
            LayerNorm.forward(out: x.ln2, mean: x.ln2Mean, rstd: x.ln2Rstd, inp: x.residual2,
                              weight: w.ln2Weight, bias: w.ln2Bias, rows: BT, channels: C, epsilon: config.layerNormEpsilon)
            Linear.forward(out: x.fch, gelu: x.fchGelu, inp: x.ln2, weight: w.fcWeight, bias: w.fcBias,
                           rows: BT, inputs: C, outputs: 4 * C, bf16: bf16)
            Linear.forward(out: x.fcProj, inp: x.fchGelu, weight: w.fcProjWeight, bias: w.fcProjBias,
                           rows: BT, inputs: 4 * C, outputs: C, bf16: bf16)
            if let dropout, pDrop > 0 {
                Dropout.apply(x.fcProj, count: BT * C, probability: pDrop, key: dropout.key(layer: l, site: 3),
                              counter: first * T * C)
            }
            Residual.forward(out: x.residual3, a: x.residual2, b: x.fcProj, count: BT * C)
        }
        let last = L > 0 ? a.blocks[L - 1].residual3 : a.encoded
        LayerNorm.forward(out: a.lnf, mean: a.lnfMean, rstd: a.lnfRstd, inp: last,
                          weight: p.lnfWeight, bias: p.lnfBias, rows: BT, channels: C, epsilon: config.layerNormEpsilon)
        // Tied LM head: logits(BT, V) = lnf(BT, C) · wteᵀ
        TiedProjection.forward(logits: a.logits, x: a.lnf, embedding: p.wte, rows: BT, width: C, vocabulary: V,
                               bf16: bf16)
        guard let targets else { return (0, 0) }
        return CrossEntropy.forward(losses: a.losses, logits: a.logits, targets: targets, rows: BT, vocabulary: V)
    }

    /// Logits (B, T, V) of the last forward without targets.
    public var logits: UnsafePointer<Float> { UnsafePointer(acts.logits) }

    /// Adds the gradient of (Σ loss · scale) of the last forward into `gradients`: `forward` read
    /// in reverse. `scale` is 1 / tokens in the whole optimizer step, so micro-batches accumulate.
    public func backward(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, scale: Float) {
        let B = lastBatch, T = lastTime
        let C = config.width, V = config.vocabularySize, L = config.layers, BT = B * T
        let dropout = lastDropout
        let pDrop = dropout == nil ? 0 : config.dropout
        let shape = AttentionShape(batch: B, queryLength: T, keyLength: T, heads: config.heads,
                                   headSize: C / config.heads, causal: true)
        let first = dropout?.firstExample ?? 0
        let p = params, g = grads, a = acts, s = acts.scratch
        /// The gradient a residual branch receives: dresidual, masked as its dropout was in forward.
        func branchGradient(layer l: Int, site: UInt64) -> UnsafePointer<Float> {
            guard let dropout, pDrop > 0 else { return UnsafePointer(s.dresidual) }
            Dropout.forward(out: s.dproj, inp: s.dresidual, count: BT * C, probability: pDrop,
                            key: dropout.key(layer: l, site: site), counter: first * T * C)
            return UnsafePointer(s.dproj)
        }

        CrossEntropy.backward(dlogits: a.logits, targets: targets, rows: BT, vocabulary: V, scale: scale)
        // Tied head: dlnf = dlogits · wte ; dwte += dlogitsᵀ · lnf
        TiedProjection.backward(dx: s.dln, dembedding: g.wte, dlogits: a.logits, x: a.lnf, embedding: p.wte,
                                rows: BT, width: C, vocabulary: V, bf16: bf16)
        let last = L > 0 ? a.blocks[L - 1].residual3 : a.encoded
        VectorOps.zero(s.dresidual, count: BT * C)
        LayerNorm.backward(dinp: s.dresidual, dweight: g.lnfWeight, dbias: g.lnfBias, dout: s.dln, inp: last,
                           weight: p.lnfWeight, mean: a.lnfMean, rstd: a.lnfRstd, rows: BT, channels: C)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = p.blocks[l], dw = g.blocks[l], x = a.blocks[l]
            let residual = l == 0 ? a.encoded : a.blocks[l - 1].residual3
            // residual3 = residual2 + dropout(fcProj): dresidual flows through; fcProj gets it masked.
            // fchGelu = GELU(fch): the gradient goes through the GELU straight into dfch.
            Linear.backward(dinp: s.dfch, dweight: dw.fcProjWeight, dbias: dw.fcProjBias,
                            dout: branchGradient(layer: l, site: 3),
                            inp: x.fchGelu, weight: w.fcProjWeight, geluInput: x.fch,
                            rows: BT, inputs: 4 * C, outputs: C, bf16: bf16)
            onBackwardProgress?()
            Linear.backward(dinp: s.dln, dweight: dw.fcWeight, dbias: dw.fcBias, dout: s.dfch,
                            inp: x.ln2, weight: w.fcWeight, rows: BT, inputs: C, outputs: 4 * C, bf16: bf16)
            onBackwardProgress?()
            LayerNorm.backward(dinp: s.dresidual, dweight: dw.ln2Weight, dbias: dw.ln2Bias, dout: s.dln,
                               inp: x.residual2, weight: w.ln2Weight, mean: x.ln2Mean, rstd: x.ln2Rstd,
                               rows: BT, channels: C)
            // residual2 = residual + dropout(attProj)
            Linear.backward(dinp: s.datty, dweight: dw.attnProjWeight, dbias: dw.attnProjBias,
                            dout: branchGradient(layer: l, site: 2),
                            inp: x.atty, weight: w.attnProjWeight, rows: BT, inputs: C, outputs: C, bf16: bf16)
            onBackwardProgress?()
            Attention.backward(dq: s.dqkv, dqStride: 3 * C, dk: s.dqkv + C, dkStride: 3 * C,
                               dv: s.dqkv + 2 * C, dvStride: 3 * C, dprobs: s.datt,
                               dout: s.datty, doutStride: C, probs: x.att,
                               q: x.qkv, qStride: 3 * C, k: x.qkv + C, kStride: 3 * C, v: x.qkv + 2 * C, vStride: 3 * C,
                               shape: shape, dropout: pDrop, dropoutKey: dropout?.key(layer: l, site: 1) ?? 0,
                               dropoutCounter: first * shape.probabilityCount / max(B, 1),
                               probsDropped: x.attDropped.map { UnsafePointer($0) })
            onBackwardProgress?()
            Linear.backward(dinp: s.dln, dweight: dw.qkvWeight, dbias: dw.qkvBias, dout: s.dqkv,
                            inp: x.ln1, weight: w.qkvWeight, rows: BT, inputs: C, outputs: 3 * C, bf16: bf16)
            LayerNorm.backward(dinp: s.dresidual, dweight: dw.ln1Weight, dbias: dw.ln1Bias, dout: s.dln,
                               inp: residual, weight: w.ln1Weight, mean: x.ln1Mean, rstd: x.ln1Rstd,
                               rows: BT, channels: C)
            onGroupReady?(l + 1)
        }
        if let dropout, pDrop > 0 {
            Dropout.apply(s.dresidual, count: BT * C, probability: pDrop, key: dropout.key(layer: L, site: 0),
                          counter: first * T * C)
        }
        Encoder.backward(dwte: g.wte, dwpe: g.wpe, dout: s.dresidual, tokens: tokens, batch: B, time: T, channels: C)
        onGroupReady?(0)
    }
}
