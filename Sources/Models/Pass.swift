// Pass: what the sublayers' forward and backward run with (the views, the sizes, dropout,
// precision, the progress hook), the backward scratch they share, where dropout masks are drawn,
// and the same for a cached decoding step.
import Kernels
import Support

/// Where one dropout mask is drawn: the layer's stream and the site's number inside it. Only the
/// models' site enums (`GPT.DropoutSite`, `EncoderDecoder.DropoutSite`) make one, so every number
/// that keys a mask is written in an enum.
struct MaskSite {
    let layer: Int
    let site: UInt64
    init<Site: RawRepresentable>(layer: Int, _ site: Site) where Site.RawValue == UInt64 {
        self.layer = layer; self.site = site.rawValue
    }
}

/// Gradient scratch shared by every layer: backward runs one sublayer at a time. Shapes at
/// N = B·T rows (T the longest sequence), F the feed-forward width.
struct BackwardScratch {
    let gradient, spare: Slot          // (N,C) ∂L/∂x of the residual stream; spare for post-LN
    let dln, dbranch, dcontext: Slot   // (N,C) each: a function's input, its output, attention's context
    let dq: Slot                       // (N,C) cross-attention queries
    let dqkv: Slot                     // (N,3C) self-attention Q/K/V; cross-attention K/V use (B,S,2C)
    let dprobs: Slot                   // (B,H,T,T) attention probabilities
    let dhidden, dpre: Slot            // (N,F) each: feed-forward hidden layer (after, before ReLU)
    let dmemory: Slot                  // (B,S,C) Σ over decoder layers of the encoder output's gradient

    /// `cross`: the model has encoder-decoder attention; `postNorm`: some residual is post-LN;
    /// `relu`: the feed-forward keeps its pre-activation gradient apart.
    init(_ b: inout ModelBuilder, rows N: Int, width C: Int, hidden F: Int, probabilities: Int,
         cross: Bool, postNorm: Bool, relu: Bool) {
        gradient = b.buffer(N * C); spare = b.buffer(postNorm ? N * C : 0)
        dln = b.buffer(N * C); dbranch = b.buffer(N * C); dcontext = b.buffer(N * C)
        dq = b.buffer(cross ? N * C : 0); dqkv = b.buffer(3 * N * C); dprobs = b.buffer(probabilities)
        dhidden = b.buffer(N * F); dpre = b.buffer(relu ? N * F : 0); dmemory = b.buffer(cross ? N * C : 0)
    }
}

/// What one forward of a stack of sublayers, and its backward, run with.
struct Pass {
    let p, g: Weights                     // parameters and gradients (same layout)
    let a: Buffers                        // activations and scratch
    let scratch: BackwardScratch
    let batch, length: Int                // B sequences of T positions
    let memoryLength: Int                 // S: positions of the encoder output cross-attention reads
    let width: Int                        // C
    let heads: Int                        // H
    /// Positions between two examples' residual-mask counters: T for GPT, maxLength for the
    /// encoder-decoder (so a sentence's masks do not depend on how far its batch was padded).
    let maskStride: Int
    let dropout: DropoutStream?
    let residualDropout, attentionDropout: Float   // 0 in evaluation
    let keyLengths: UnsafePointer<Int32>?          // (B) valid source positions, for padding masks
    let bf16: BF16Operands?
    let progress: (() -> Void)?

    var rows: Int { batch * length }
    var firstExample: Int { dropout?.firstExample ?? 0 }

    /// A bf16 model's buffer of bf16 activations (`ModelBuilder.bf16Buffer`) when this pass runs its
    /// products in bf16; nil in fp32 (or when the plan has no such buffer).
    func low(_ slot: Slot?) -> UnsafeMutablePointer<UInt16>? { bf16 == nil ? nil : a.bf16(slot) }
    /// Such a buffer as a layer's input: forward rounds into it, backward reads it back.
    func kept(_ slot: Slot?) -> BF16Input? { low(slot).map { .round(into: $0) } }
    /// The same buffer as backward reads it.
    func keptInput(_ slot: Slot?) -> UnsafePointer<UInt16>? { low(slot).map { UnsafePointer($0) } }

    /// The attention shape of T queries over `keys` positions.
    func attentionShape(keys: Int, causal: Bool) -> AttentionShape {
        AttentionShape(batch: batch, queryLength: length, keyLength: keys, heads: heads, headSize: width / heads,
                       causal: causal)
    }

    /// The counter-random key of a site's masks (0 in evaluation, where no mask is drawn).
    func key(_ site: MaskSite) -> UInt64 { dropout?.key(layer: site.layer, site: site.site) ?? 0 }

    /// out = inp through the residual mask of `site` ((B,T,C) values; out may be inp). Returns
    /// false, touching nothing, when no mask is drawn.
    @discardableResult
    func mask(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, site: MaskSite) -> Bool {
        guard let dropout, residualDropout > 0 else { return false }
        let key = dropout.key(layer: site.layer, site: site.site), C = width, first = dropout.firstExample
        if maskStride == length {
            Dropout.forward(out: out, inp: inp, count: rows * C, probability: residualDropout, key: key,
                            counter: first * length * C)
        } else {
            for b in 0..<batch {
                let offset = b * length * C
                Dropout.forward(out: out + offset, inp: inp + offset, count: length * C, probability: residualDropout,
                                key: key, counter: (first + b) * maskStride * C)
            }
        }
        return true
    }

    /// `v` through the residual mask of `site`, into the scratch `dbranch`; `v` itself without dropout.
    func masked(_ v: UnsafePointer<Float>, site: MaskSite) -> UnsafePointer<Float> {
        let out = a[scratch.dbranch]
        return mask(out, v, site: site) ? UnsafePointer(out) : v
    }
}

/// Buffers of one cached decoding step over N rows (one position each), shared by every layer.
struct StepScratch {
    let x, ln, residual, qkv, context, projected, q: Slot   // (N,C) each; qkv (N,3C)
    let hidden, activated: Slot                              // (N,F) each
    let probs: Slot                                          // (N,H,P) attention probabilities
    let mean, rstd: Slot                                     // (N)

    init(_ b: inout ModelBuilder, rows N: Int, width C: Int, hidden F: Int, heads H: Int, positions P: Int) {
        x = b.buffer(N * C); ln = b.buffer(N * C); residual = b.buffer(N * C); qkv = b.buffer(3 * N * C)
        context = b.buffer(N * C); projected = b.buffer(N * C); q = b.buffer(N * C)
        hidden = b.buffer(N * F); activated = b.buffer(N * F); probs = b.buffer(N * H * P)
        mean = b.buffer(N); rstd = b.buffer(N)
    }
}

/// What one cached decoding step runs with: N rows at position t, `positions` cached per row.
struct DecodeStep {
    let p: Weights
    let a: Buffers
    let scratch: StepScratch
    let rows: Int              // N
    let position: Int          // t, the position being fed
    let positions: Int         // P, cache rows per row of the batch
    let width, heads: Int      // C, H
    let epsilon: Float
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
