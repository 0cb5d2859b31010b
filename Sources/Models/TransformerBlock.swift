// TransformerBlock: one block of sublayers — self-attention, optionally cross-attention to an
// encoder output, and a feed-forward layer, each inside its residual wrapper — and the LayerNorm
// that ends a pre-LN stack. GPT's blocks, the encoder's and the decoder's are all this type.
import Kernels

/// A function inside its residual wrapper.
struct Sublayer<Function> {
    let residual: ResidualSublayer
    let function: Function
}

struct TransformerBlock {
    let selfAttention: Sublayer<AttentionSublayer>
    let crossAttention: Sublayer<AttentionSublayer>?
    let feedForward: Sublayer<FeedForwardSublayer>

    /// The block's output (B,T,C) after a forward.
    func output(_ a: Buffers) -> UnsafeMutablePointer<Float> { feedForward.residual.output(a) }

    /// The block's output (B,T,C) for input x (B,T,C); cross-attention reads `memory` (B,S,C).
    func forward(_ x: UnsafePointer<Float>, memory: UnsafePointer<Float>? = nil, _ s: Pass) -> UnsafePointer<Float> {
        var x = selfAttention.residual.forward(x, s) { selfAttention.function.forward($0, memory: nil, s) }
        if let cross = crossAttention {
            x = cross.residual.forward(x, s) { cross.function.forward($0, memory: memory, s) }
        }
        return feedForward.residual.forward(x, s) { feedForward.function.forward($0, s) }
    }

    /// `forward` read in reverse: from d = ∂L/∂output to d = ∂L/∂x, x the block's input.
    func backward(_ d: inout ResidualGradient, x: UnsafePointer<Float>, memory: UnsafePointer<Float>? = nil, _ s: Pass) {
        let x1 = UnsafePointer(selfAttention.residual.output(s.a))
        let x2 = crossAttention.map { UnsafePointer($0.residual.output(s.a)) } ?? x1
        let ffn = feedForward
        ffn.residual.backward(&d, x: x2, s) {
            ffn.function.backward(branch: $0, dinput: $1, accumulate: $2, inp: ffn.residual.input(x2, s.a), s)
        }
        if let cross = crossAttention {
            s.progress?()
            cross.residual.backward(&d, x: x1, s) {
                cross.function.backward(branch: $0, dinput: $1, accumulate: $2, inp: cross.residual.input(x1, s.a),
                                        memory: memory, s)
            }
        }
        s.progress?()
        let attention = selfAttention
        attention.residual.backward(&d, x: x, s) {
            attention.function.backward(branch: $0, dinput: $1, accumulate: $2, inp: attention.residual.input(x, s.a),
                                        memory: nil, s)
        }
    }

    /// One cached decoding step of the row vectors in the step's x (N,C), updated in place.
    /// `cache` (N,P,2C) holds the self-attention keys/values; `cross` the encoder output's.
    func step(cache: UnsafeMutablePointer<Float>, cross: CrossStep? = nil, _ s: DecodeStep) {
        selfAttention.function.step(selfAttention.residual.enter(s), cache: cache, s)
        selfAttention.residual.leave(s)
        if let attention = crossAttention, let c = cross {
            attention.function.step(attention.residual.enter(s), cache: c.keyValues, sentences: c.sentences,
                                    rowsPerSentence: c.rowsPerSentence, memoryLength: c.memoryLength, lengths: c.lengths, s)
            attention.residual.leave(s)
        }
        feedForward.function.step(feedForward.residual.enter(s), s)
        feedForward.residual.leave(s)
    }
}

/// The encoder output a cached decoding step attends to: `keyValues` (sentences, S, 2C), rows
/// n·k ..< (n+1)·k belonging to sentence n with `lengths` (N) valid positions.
struct CrossStep {
    let keyValues: UnsafePointer<Float>
    let sentences, rowsPerSentence, memoryLength: Int
    let lengths: UnsafePointer<Int32>
}

/// A LayerNorm on its own: the one that ends a pre-LN stack (GPT's ln_f, each pre-LN stack's).
struct NormSublayer {
    let norm: Affine                 // (C), (C)
    let output: Slot                 // (N,C)
    let mean, rstd: Slot             // (N) each
    let epsilon: Float

    init(_ b: inout ModelBuilder, norm: Affine, rows N: Int, width C: Int, epsilon: Float) {
        self.norm = norm; self.epsilon = epsilon
        output = b.buffer(N * C); mean = b.buffer(N); rstd = b.buffer(N)
    }

    func forward(_ x: UnsafePointer<Float>, _ s: Pass) -> UnsafePointer<Float> {
        LayerNorm.forward(out: s.a[output], mean: s.a[mean], rstd: s.a[rstd], inp: x, weight: s.p[norm.weight],
                          bias: s.p[norm.bias], rows: s.rows, channels: s.width, epsilon: epsilon)
        return UnsafePointer(s.a[output])
    }

    /// dinp += LN backward of dout; the norm's parameter gradients are added into s.g.
    func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>, _ s: Pass) {
        LayerNorm.backward(dinp: dinp, dweight: s.g[norm.weight], dbias: s.g[norm.bias], dout: dout, inp: x,
                           weight: s.p[norm.weight], mean: s.a[mean], rstd: s.a[rstd], rows: s.rows, channels: s.width)
    }

    /// Cached decoding: LN of the step's x (N,C) into its `ln`.
    func step(_ s: DecodeStep) -> UnsafePointer<Float> {
        let a = s.a, x = s.scratch
        LayerNorm.forward(out: a[x.ln], mean: a[x.mean], rstd: a[x.rstd], inp: a[x.x], weight: s.p[norm.weight],
                          bias: s.p[norm.bias], rows: s.rows, channels: s.width, epsilon: epsilon)
        return UnsafePointer(a[x.ln])
    }
}
