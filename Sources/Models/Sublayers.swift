// Sublayers: the pieces a Transformer block is made of — a residual wrapper with its LayerNorm
// before or after (NormPlacement), multi-head attention (self or cross; causal or padded), and a
// feed-forward layer (GELU, tanh or erf form, or ReLU) — each with forward, backward (adds into parameter gradients)
// and a cached decoding step. Each declares its tensors and activations once, through
// ModelBuilder, and keeps the handles; GPT and EncoderDecoder compose them (TransformerBlock).
//
// Shape legend: B batch, T positions (queries), S positions of the memory (cross-attention keys),
// C width, H heads, F feed-forward width, N = B·T rows; P cached positions per row when decoding.
import Kernels

/// x → x + drop(f(LN(x))) (pre) or LN(x + drop(f(x))) (post), around a function f (attention or
/// feed-forward) given as a closure.
struct ResidualSublayer {
    let placement: NormPlacement
    let norm: Affine                 // (C), (C)
    let normed: Slot                 // (N,C) LN(x) (pre: f's input) or LN(sum) (post: the output)
    let sum: Slot                    // (N,C) x + drop(f(·)) (pre: the output)
    let mean, rstd: Slot             // (N) each
    let site: MaskSite               // the mask on f's output
    let epsilon: Float

    init(_ b: inout ModelBuilder, norm: Affine, placement: NormPlacement, site: MaskSite, rows N: Int, width C: Int,
         epsilon: Float) {
        self.norm = norm; self.placement = placement; self.site = site; self.epsilon = epsilon
        normed = b.buffer(N * C); sum = b.buffer(N * C); mean = b.buffer(N); rstd = b.buffer(N)
    }

    /// The sublayer's output (B,T,C).
    func output(_ a: Buffers) -> UnsafeMutablePointer<Float> { placement == .pre ? a[sum] : a[normed] }
    /// What f reads, given the sublayer's input x.
    func input(_ x: UnsafePointer<Float>, _ a: Buffers) -> UnsafePointer<Float> {
        placement == .pre ? UnsafePointer(a[normed]) : x
    }

    private func layerNorm(_ out: Slot, _ inp: UnsafePointer<Float>, _ s: Pass) {
        LayerNorm.forward(out: s.a[out], mean: s.a[mean], rstd: s.a[rstd], inp: inp, weight: s.p[norm.weight],
                          bias: s.p[norm.bias], rows: s.rows, channels: s.width, epsilon: epsilon)
    }

    /// Runs f (which returns its output, masked here in place) and returns the sublayer's output.
    func forward(_ x: UnsafePointer<Float>, _ s: Pass,
                 _ f: (UnsafePointer<Float>) -> UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        if placement == .pre { layerNorm(normed, x, s) }
        let branch = f(input(x, s.a))
        s.mask(branch, branch, site: site)
        Residual.forward(out: s.a[sum], a: x, b: branch, count: s.rows * s.width)
        if placement == .post { layerNorm(normed, s.a[sum], s) }
        return UnsafePointer(output(s.a))
    }

    /// From d.current = ∂L/∂output to d.current = ∂L/∂x. f's backward gets the gradient of its
    /// output (masked) and where its input's gradient goes: pre-LN writes it to `dln` (then added
    /// through the LayerNorm into d), post-LN adds it into the gradient of the sum (the skip path).
    func backward(_ d: inout ResidualGradient, x: UnsafePointer<Float>, _ s: Pass,
                  _ f: (_ branch: UnsafePointer<Float>, _ dinput: UnsafeMutablePointer<Float>, _ accumulate: Bool) -> Void) {
        let a = s.a, dw = s.g[norm.weight], db = s.g[norm.bias]
        if placement == .pre {
            let dln = a[s.scratch.dln]
            f(s.masked(d.current, site: site), dln, false)
            LayerNorm.backward(dinp: d.current, dweight: dw, dbias: db, dout: dln, inp: x, weight: s.p[norm.weight],
                               mean: a[mean], rstd: a[rstd], rows: s.rows, channels: s.width)
        } else {
            let t = d.spare
            VectorOps.zero(t, count: s.rows * s.width)
            LayerNorm.backward(dinp: t, dweight: dw, dbias: db, dout: d.current, inp: a[sum], weight: s.p[norm.weight],
                               mean: a[mean], rstd: a[rstd], rows: s.rows, channels: s.width)
            f(s.masked(t, site: site), t, true)
            swap(&d.current, &d.spare)
        }
    }

    /// Cached decoding: f's input for the row vectors in x (N,C).
    func enter(_ s: DecodeStep) -> UnsafePointer<Float> {
        let a = s.a, x = a[s.scratch.x]
        guard placement == .pre else { return UnsafePointer(x) }
        LayerNorm.forward(out: a[s.scratch.ln], mean: a[s.scratch.mean], rstd: a[s.scratch.rstd], inp: x,
                          weight: s.p[norm.weight], bias: s.p[norm.bias], rows: s.rows, channels: s.width, epsilon: epsilon)
        return UnsafePointer(a[s.scratch.ln])
    }

    /// Cached decoding: x ← x + f (pre) or LN(x + f) (post), f's output in `projected`.
    func leave(_ s: DecodeStep) {
        let a = s.a, x = a[s.scratch.x], n = s.rows * s.width, f = a[s.scratch.projected]
        if placement == .pre {
            Residual.forward(out: x, a: x, b: f, count: n)
        } else {
            let sum = a[s.scratch.residual]
            Residual.forward(out: sum, a: x, b: f, count: n)
            LayerNorm.forward(out: x, mean: a[s.scratch.mean], rstd: a[s.scratch.rstd], inp: sum, weight: s.p[norm.weight],
                              bias: s.p[norm.bias], rows: s.rows, channels: s.width, epsilon: epsilon)
        }
    }
}

/// The gradient of the residual stream and, for post-LN, the buffer the next one is built in.
struct ResidualGradient {
    var current, spare: UnsafeMutablePointer<Float>   // (N,C) each
}

/// Multi-head attention with its projections: self-attention (one fused Q/K/V projection (C,3C)
/// of x) or cross-attention (queries (C,C) from x, keys/values (C,2C) from the encoder output);
/// then the output projection (C,C).
struct AttentionSublayer {
    enum Kind {
        case selfAttention(qkv: Affine)
        case cross(q: Affine, kv: Affine)
    }
    /// Which keys a query sees: the ones before it (decoders), or the source's valid ones.
    enum Mask { case causal, padded }

    let kind: Kind
    let out: Affine
    let mask: Mask
    let site: MaskSite               // the mask on the attention probabilities
    let queries: Slot                // (N,3C) Q/K/V (self) or (N,C) Q (cross)
    let keyValues: Slot?             // (B,S,2C) cross-attention K/V of the memory
    let queriesBF16: Slot?           // (N,3C) or (N,C) bf16 of `queries`, in a bf16 model
    let keyValuesBF16: Slot?         // (B,S,2C) bf16 of `keyValues`, in a bf16 cross-attention
    let inputBF16, contextBF16: Slot? // (N,C) each: bf16 of the input and of `context`, in a bf16 model
    let probs: Slot                  // (B,H,T,T or S) softmax probabilities
    let probsDropped: Slot?          // (B,H,T,T or S) after dropout, when the model has attention dropout
    let context, projected: Slot     // (N,C) each: the heads' outputs, after the output projection

    /// Self-attention: declares `qkv` (C,3C) and `out` (C,C), in that order.
    init(_ b: inout ModelBuilder, qkv: String, out: String, mask: Mask, site: MaskSite, rows N: Int, width C: Int,
         probabilities: Int, dropout: Bool) {
        kind = .selfAttention(qkv: b.linear(qkv, inputs: C, outputs: 3 * C))
        self.out = b.linear(out, inputs: C, outputs: C)
        self.mask = mask; self.site = site
        queries = b.buffer(3 * N * C); keyValues = nil
        queriesBF16 = b.bf16Buffer(3 * N * C); keyValuesBF16 = nil
        inputBF16 = b.bf16Buffer(N * C); contextBF16 = b.bf16Buffer(N * C)
        probs = b.buffer(probabilities); probsDropped = dropout ? b.buffer(probabilities) : nil
        context = b.buffer(N * C); projected = b.buffer(N * C)
    }

    /// Cross-attention: declares `q` (C,C), `kv` (C,2C) and `out` (C,C), in that order.
    init(_ b: inout ModelBuilder, q: String, kv: String, out: String, site: MaskSite, rows N: Int, width C: Int,
         probabilities: Int, dropout: Bool) {
        kind = .cross(q: b.linear(q, inputs: C, outputs: C), kv: b.linear(kv, inputs: C, outputs: 2 * C))
        self.out = b.linear(out, inputs: C, outputs: C)
        mask = .padded; self.site = site
        queries = b.buffer(N * C); keyValues = b.buffer(2 * N * C)
        queriesBF16 = b.bf16Buffer(N * C); keyValuesBF16 = b.bf16Buffer(2 * N * C)
        inputBF16 = b.bf16Buffer(N * C); contextBF16 = b.bf16Buffer(N * C)
        probs = b.buffer(probabilities); probsDropped = dropout ? b.buffer(probabilities) : nil
        context = b.buffer(N * C); projected = b.buffer(N * C)
    }

    /// Where Q, K and V sit and their row strides.
    private func operands(_ a: Buffers, C: Int) -> (q: UnsafeMutablePointer<Float>, qStride: Int,
                                                    kv: UnsafeMutablePointer<Float>, kvStride: Int) {
        if keyValues == nil { return (a[queries], 3 * C, a[queries] + C, 3 * C) }
        return (a[queries], C, a[optional: keyValues]!, 2 * C)
    }

    /// The bf16 copies of Q, K and V at the fp32 ones' offsets (in a bf16 model), and the scratch
    /// backward rounds the context's gradient into.
    private func lowOperands(_ s: Pass, C: Int) -> AttentionBF16? {
        guard let scratch = s.bf16, let q = s.low(queriesBF16) else { return nil }
        let kv = s.low(keyValuesBF16) ?? q + C
        return AttentionBF16(q: q, k: kv, v: kv + C, doutScratch: scratch.gradient)
    }

    private func shape(_ s: Pass) -> AttentionShape {
        if case .cross = kind { return s.attentionShape(keys: s.memoryLength, causal: false) }
        return s.attentionShape(keys: s.length, causal: mask == .causal)
    }

    /// The projected attention output (B,T,C) of `inp` (B,T,C), attending to `memory` (B,S,C) for
    /// cross-attention.
    func forward(_ inp: UnsafePointer<Float>, memory: UnsafePointer<Float>?, _ s: Pass) -> UnsafeMutablePointer<Float> {
        let a = s.a, p = s.p, C = s.width, rows = s.rows, shape = shape(s)
        switch kind {
        case .selfAttention(let qkv):
            Linear.forward(out: a[queries], inp: inp, weight: p[qkv.weight], bias: p[qkv.bias], rows: rows, inputs: C,
                           outputs: 3 * C, bf16: s.bf16, input16: s.kept(inputBF16),
                           roundedOutput: s.low(queriesBF16))
        case .cross(let q, let kv):
            Linear.forward(out: a[queries], inp: inp, weight: p[q.weight], bias: p[q.bias], rows: rows, inputs: C,
                           outputs: C, bf16: s.bf16, input16: s.kept(inputBF16),
                           roundedOutput: s.low(queriesBF16))
            Linear.forward(out: a[optional: keyValues]!, inp: memory!, weight: p[kv.weight], bias: p[kv.bias],
                           rows: s.batch * s.memoryLength, inputs: C, outputs: 2 * C, bf16: s.bf16,
                           roundedOutput: s.low(keyValuesBF16))
        }
        let o = operands(a, C: C)
        Attention.forward(out: a[context], outStride: C, probs: a[probs], q: o.q, qStride: o.qStride,
                          k: o.kv, kStride: o.kvStride, v: o.kv + C, vStride: o.kvStride, shape: shape,
                          keyLengths: mask == .padded ? s.keyLengths : nil, dropout: s.attentionDropout,
                          dropoutKey: s.key(site), dropoutCounter: s.firstExample * shape.probabilityCount / max(s.batch, 1),
                          probsDropped: a[optional: probsDropped], bf16: lowOperands(s, C: C))
        Linear.forward(out: a[projected], inp: a[context], weight: p[out.weight], bias: p[out.bias], rows: rows,
                       inputs: C, outputs: C, bf16: s.bf16, input16: s.kept(contextBF16))
        return a[projected]
    }

    /// Gradients of `forward`: parameter gradients added into s.g; the input's gradient written
    /// into (or, with `accumulate`, added to) `dinput`; cross-attention adds the memory's gradient
    /// into the scratch `dmemory`.
    func backward(branch: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, accumulate: Bool,
                  inp: UnsafePointer<Float>, memory: UnsafePointer<Float>?, _ s: Pass) {
        let a = s.a, p = s.p, g = s.g, t = s.scratch, C = s.width, rows = s.rows, shape = shape(s)
        Linear.backward(dinp: a[t.dcontext], dweight: g[out.weight], dbias: g[out.bias], dout: branch, inp: a[context],
                        weight: p[out.weight], rows: rows, inputs: C, outputs: C, bf16: s.bf16, input16: s.keptInput(contextBF16))
        s.progress?()
        let o = operands(a, C: C)
        let dq = keyValues == nil ? a[t.dqkv] : a[t.dq], dkv = keyValues == nil ? a[t.dqkv] + C : a[t.dqkv]
        Attention.backward(dq: dq, dqStride: o.qStride, dk: dkv, dkStride: o.kvStride, dv: dkv + C, dvStride: o.kvStride,
                           dprobs: a[t.dprobs], dout: a[t.dcontext], doutStride: C, probs: a[probs],
                           q: o.q, qStride: o.qStride, k: o.kv, kStride: o.kvStride, v: o.kv + C, vStride: o.kvStride,
                           shape: shape, keyLengths: mask == .padded ? s.keyLengths : nil, dropout: s.attentionDropout,
                           dropoutKey: s.key(site), dropoutCounter: s.firstExample * shape.probabilityCount / max(s.batch, 1),
                           probsDropped: a[optional: probsDropped].map { UnsafePointer($0) }, bf16: lowOperands(s, C: C))
        s.progress?()
        switch kind {
        case .selfAttention(let qkv):
            Linear.backward(dinp: dinput, dweight: g[qkv.weight], dbias: g[qkv.bias], dout: a[t.dqkv], inp: inp,
                            weight: p[qkv.weight], rows: rows, inputs: C, outputs: 3 * C, accumulateInput: accumulate,
                            bf16: s.bf16, input16: s.keptInput(inputBF16))
        case .cross(let q, let kv):
            Linear.backward(dinp: a[t.dmemory], dweight: g[kv.weight], dbias: g[kv.bias], dout: a[t.dqkv], inp: memory!,
                            weight: p[kv.weight], rows: s.batch * s.memoryLength, inputs: C, outputs: 2 * C,
                            accumulateInput: true, bf16: s.bf16)
            Linear.backward(dinp: dinput, dweight: g[q.weight], dbias: g[q.bias], dout: a[t.dq], inp: inp,
                            weight: p[q.weight], rows: rows, inputs: C, outputs: C, accumulateInput: accumulate,
                            bf16: s.bf16, input16: s.keptInput(inputBF16))
        }
    }

    /// Cross-attention's keys/values of the memory (B,S,C) into `cache` (B,S,2C), once per sentence.
    func project(memory: UnsafePointer<Float>, rows: Int, into cache: UnsafeMutablePointer<Float>, _ p: Weights, width C: Int) {
        guard case .cross(_, let kv) = kind else { preconditionFailure("AttentionSublayer.project: not cross-attention") }
        Linear.forward(out: cache, inp: memory, weight: p[kv.weight], bias: p[kv.bias], rows: rows, inputs: C, outputs: 2 * C)
    }

    /// Cached self-attention: appends the rows' keys/values at position t to `cache` (N,P,2C) and
    /// writes the projected output of `inp` (N,C) to `projected`.
    func step(_ inp: UnsafePointer<Float>, cache: UnsafeMutablePointer<Float>, _ s: DecodeStep) {
        guard case .selfAttention(let qkv) = kind else { preconditionFailure("AttentionSublayer.step: not self-attention") }
        let a = s.a, x = s.scratch, C = s.width, N = s.rows, P = s.positions, t = s.position
        Linear.forward(out: a[x.qkv], inp: inp, weight: s.p[qkv.weight], bias: s.p[qkv.bias], rows: N, inputs: C, outputs: 3 * C)
        for n in 0..<N { (cache + (n * P + t) * 2 * C).update(from: a[x.qkv] + n * 3 * C + C, count: 2 * C) }
        let shape = AttentionShape(batch: N, queryLength: 1, keyLength: t + 1, heads: s.heads, headSize: C / s.heads,
                                   causal: false)
        Attention.forward(out: a[x.context], outStride: C, probs: a[x.probs], q: a[x.qkv], qStride: 3 * C, k: cache,
                          kStride: 2 * C, v: cache + C, vStride: 2 * C, shape: shape, keyBatchStride: P * 2 * C)
        project(s)
    }

    /// Cached cross-attention: rows n·k ..< (n+1)·k belong to sentence n, whose keys/values are
    /// `cache + n·S·2C` (S positions, `lengths` valid per row).
    func step(_ inp: UnsafePointer<Float>, cache: UnsafePointer<Float>, sentences: Int, rowsPerSentence k: Int,
              memoryLength S: Int, lengths: UnsafePointer<Int32>, _ s: DecodeStep) {
        guard case .cross(let q, _) = kind else { preconditionFailure("AttentionSublayer.step: not cross-attention") }
        let a = s.a, x = s.scratch, C = s.width
        Linear.forward(out: a[x.q], inp: inp, weight: s.p[q.weight], bias: s.p[q.bias], rows: s.rows, inputs: C, outputs: C)
        let shape = AttentionShape(batch: k, queryLength: 1, keyLength: S, heads: s.heads, headSize: C / s.heads, causal: false)
        for n in 0..<sentences {
            let kv = cache + n * S * 2 * C
            Attention.forward(out: a[x.context] + n * k * C, outStride: C, probs: a[x.probs], q: a[x.q] + n * k * C,
                              qStride: C, k: kv, kStride: 2 * C, v: kv + C, vStride: 2 * C, shape: shape,
                              keyBatchStride: 0, keyLengths: lengths + n * k)
        }
        project(s)
    }

    private func project(_ s: DecodeStep) {
        let a = s.a, x = s.scratch, C = s.width
        Linear.forward(out: a[x.projected], inp: a[x.context], weight: s.p[out.weight], bias: s.p[out.bias], rows: s.rows,
                       inputs: C, outputs: C)
    }
}

/// Two Linear layers with an activation between: (C,F), GELU or ReLU, (F,C).
struct FeedForwardSublayer {
    /// `gelu`: GPT-2's tanh form; `geluExact`: the erf form (BERT's); `relu`.
    enum Activation {
        case gelu, geluExact, relu
        /// The GELU form, or nil for ReLU.
        var geluForm: GELU.Form? {
            switch self {
            case .gelu: .tanh
            case .geluExact: .erf
            case .relu: nil
            }
        }
    }

    let activation: Activation
    let fc1, fc2: Affine             // (C,F), (F); (F,C), (C)
    let hidden: Slot                 // (N,F) fc1's output (GELU's input; after ReLU, in place)
    let activated: Slot?             // (N,F) GELU(hidden); nil for ReLU
    let output: Slot                 // (N,C)
    let inputBF16: Slot?             // (N,C) bf16 of the input, in a bf16 model
    let activatedBF16: Slot?         // (N,F) bf16 of fc2's input, in a bf16 model
    let width, hiddenWidth: Int      // C, F

    /// Declares `fc1` (C,F) and `fc2` (F,C), in that order.
    init(_ b: inout ModelBuilder, fc1: String, fc2: String, activation: Activation, rows N: Int, width C: Int, hidden F: Int) {
        self.activation = activation; width = C; hiddenWidth = F
        self.fc1 = b.linear(fc1, inputs: C, outputs: F); self.fc2 = b.linear(fc2, inputs: F, outputs: C)
        hidden = b.buffer(N * F); activated = activation == .relu ? nil : b.buffer(N * F); output = b.buffer(N * C)
        inputBF16 = b.bf16Buffer(N * C); activatedBF16 = b.bf16Buffer(N * F)
    }

    /// fc2(act(fc1(inp))) (B,T,C); GELU is fused into fc1's product.
    func forward(_ inp: UnsafePointer<Float>, _ s: Pass) -> UnsafeMutablePointer<Float> {
        let a = s.a, p = s.p, C = width, F = hiddenWidth, rows = s.rows
        // With GELU, fc1 also rounds GELU's output for fc2 (ReLU runs after it: fc2 rounds its input).
        let fused = activation != .relu && s.low(activatedBF16) != nil
        Linear.forward(out: a[hidden], gelu: a[optional: activated], geluForm: activation.geluForm ?? .tanh, inp: inp,
                       weight: p[fc1.weight], bias: p[fc1.bias], rows: rows, inputs: C, outputs: F, bf16: s.bf16,
                       input16: s.kept(inputBF16), roundedOutput: fused ? s.low(activatedBF16) : nil)
        if activation == .relu { ReLU.forward(out: a[hidden], inp: a[hidden], count: rows * F) }
        Linear.forward(out: a[output], inp: a[optional: activated] ?? a[hidden], weight: p[fc2.weight], bias: p[fc2.bias],
                       rows: rows, inputs: F, outputs: C, bf16: s.bf16,
                       input16: fused ? s.keptInput(activatedBF16).map { .rounded($0) } : s.kept(activatedBF16))
        return a[output]
    }

    /// Gradients of `forward` (see AttentionSublayer.backward for `dinput` and `accumulate`).
    func backward(branch: UnsafePointer<Float>, dinput: UnsafeMutablePointer<Float>, accumulate: Bool,
                  inp: UnsafePointer<Float>, _ s: Pass) {
        let a = s.a, p = s.p, g = s.g, t = s.scratch, C = width, F = hiddenWidth, rows = s.rows
        // With GELU the gradient goes through GELU′ straight into dhidden, fused into the product.
        Linear.backward(dinp: a[t.dhidden], dweight: g[fc2.weight], dbias: g[fc2.bias], dout: branch,
                        inp: a[optional: activated] ?? a[hidden], weight: p[fc2.weight],
                        geluInput: activation == .relu ? nil : UnsafePointer(a[hidden]), geluForm: activation.geluForm ?? .tanh,
                        rows: rows, inputs: F, outputs: C, bf16: s.bf16, input16: s.keptInput(activatedBF16))
        s.progress?()
        var dhidden = UnsafePointer(a[t.dhidden])
        if activation == .relu {
            ReLU.backward(dinp: a[t.dpre], inp: a[hidden], dout: dhidden, count: rows * F)
            dhidden = UnsafePointer(a[t.dpre])
        }
        Linear.backward(dinp: dinput, dweight: g[fc1.weight], dbias: g[fc1.bias], dout: dhidden, inp: inp,
                        weight: p[fc1.weight], rows: rows, inputs: C, outputs: F, accumulateInput: accumulate, bf16: s.bf16,
                        input16: s.keptInput(inputBF16))
        s.progress?()
    }

    /// Cached decoding: fc2(act(fc1(inp))) of N rows into `projected` (GELU as its own pass).
    func step(_ inp: UnsafePointer<Float>, _ s: DecodeStep) {
        let a = s.a, x = s.scratch, p = s.p, C = width, F = hiddenWidth, N = s.rows
        Linear.forward(out: a[x.hidden], inp: inp, weight: p[fc1.weight], bias: p[fc1.bias], rows: N, inputs: C, outputs: F)
        if let form = activation.geluForm { GELU.forward(out: a[x.activated], inp: a[x.hidden], count: N * F, form: form) }
        else { ReLU.forward(out: a[x.activated], inp: a[x.hidden], count: N * F) }
        Linear.forward(out: a[x.projected], inp: a[x.activated], weight: p[fc2.weight], bias: p[fc2.bias], rows: N,
                       inputs: F, outputs: C)
    }
}
