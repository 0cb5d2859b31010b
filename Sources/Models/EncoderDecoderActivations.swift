// EncoderDecoderActivations: every activation the encoder-decoder's forward keeps for backward,
// plus the gradient scratch backward reuses, carved from one allocation. It is not model state.
import Kernels

/// Buffers for up to `batch` pairs of at most `maxLength` source and target positions. S = source
/// length, T = target length (both ≤ maxLength), F = feed-forward width.
final class EncoderDecoderActivations {
    /// One residual sub-layer: post-LN keeps residual = x + drop(f(x)) and ln = LN(residual) (the
    /// output); pre-LN keeps ln = LN(x) (f's input) and residual = x + drop(f(ln)) (the output).
    struct Sublayer {
        let ln, residual: UnsafeMutablePointer<Float>           // (B,·,C) each
        let mean, rstd: UnsafeMutablePointer<Float>             // (B,·)
    }
    /// Self-attention: fused projections, probabilities, context and output projection.
    struct SelfAttention {
        let qkv: UnsafeMutablePointer<Float>                    // (B,·,3C)
        let probs: UnsafeMutablePointer<Float>                  // (B,H,·,·)
        let probsDropped: UnsafeMutablePointer<Float>?          // (B,H,·,·) only with attention dropout
        let context, projected: UnsafeMutablePointer<Float>     // (B,·,C) each
    }
    struct CrossAttention {
        let q: UnsafeMutablePointer<Float>                      // (B,T,C)
        let kv: UnsafeMutablePointer<Float>                     // (B,S,2C) from the encoder output
        let probs: UnsafeMutablePointer<Float>                  // (B,H,T,S)
        let probsDropped: UnsafeMutablePointer<Float>?
        let context, projected: UnsafeMutablePointer<Float>     // (B,T,C) each
    }
    struct FeedForward {
        let hidden: UnsafeMutablePointer<Float>                 // (B,·,F) after ReLU (in place)
        let out: UnsafeMutablePointer<Float>                    // (B,·,C)
    }
    struct EncoderBlock { let attnNorm: Sublayer; let attn: SelfAttention; let ffnNorm: Sublayer; let ffn: FeedForward }
    struct DecoderBlock {
        let attnNorm: Sublayer; let attn: SelfAttention
        let crossNorm: Sublayer; let cross: CrossAttention
        let ffnNorm: Sublayer; let ffn: FeedForward
    }
    /// Gradient scratch shared by all layers (backward runs one sub-layer at a time).
    struct Scratch {
        let dA, dB, dln, dbranch, dcontext, dq: UnsafeMutablePointer<Float>   // (B,max,C) each
        let dqkv: UnsafeMutablePointer<Float>                                 // (B,max,3C); dkv uses (B,S,2C)
        let dprobs: UnsafeMutablePointer<Float>                               // (B,H,max,max)
        let dhidden, dpre: UnsafeMutablePointer<Float>                        // (B,max,F) each
        let dencoded: UnsafeMutablePointer<Float>                             // (B,S,C) Σ over decoder layers
    }

    let sourceEmbedded, targetEmbedded: UnsafeMutablePointer<Float>     // (B,S,C), (B,T,C)
    let encoder: [EncoderBlock]
    let decoder: [DecoderBlock]
    let encoderNorm, decoderNorm: Sublayer                              // pre-LN final norms (ln, mean, rstd used)
    let logits: UnsafeMutablePointer<Float>                             // (B,T,V) logits → probs → dlogits
    let losses: UnsafeMutablePointer<Float>                             // (B,T)
    let scratch: Scratch
    /// The last batch's tokens and lengths, kept for backward (and for the padding mask).
    let sourceTokens, targetInput, targetOutput, sourceLengths: UnsafeMutablePointer<Int32>
    private let storage: FlatBuffer

    var bytes: Int { storage.bytes }

    init(config c: EncoderDecoderConfig, batch B: Int) {
        let N = B * c.maxLength, C = c.width, F = c.ffnWidth, H = c.heads
        let att = B * H * c.maxLength * c.maxLength
        let dropProbs = c.attentionDropout > 0
        func carve(_ a: inout Arena) -> (EncoderDecoderActivations.Parts) {
            func sub() -> Sublayer { Sublayer(ln: a.take(N * C), residual: a.take(N * C), mean: a.take(N), rstd: a.take(N)) }
            func selfAttention() -> SelfAttention {
                SelfAttention(qkv: a.take(3 * N * C), probs: a.take(att), probsDropped: dropProbs ? a.take(att) : nil,
                              context: a.take(N * C), projected: a.take(N * C))
            }
            func ffn() -> FeedForward { FeedForward(hidden: a.take(N * F), out: a.take(N * C)) }
            let embedded = (a.take(N * C), a.take(N * C))
            let encoder = (0..<c.encoderLayers).map { _ in
                EncoderBlock(attnNorm: sub(), attn: selfAttention(), ffnNorm: sub(), ffn: ffn())
            }
            let decoder = (0..<c.decoderLayers).map { _ in
                DecoderBlock(attnNorm: sub(), attn: selfAttention(), crossNorm: sub(),
                             cross: CrossAttention(q: a.take(N * C), kv: a.take(2 * N * C), probs: a.take(att),
                                                   probsDropped: dropProbs ? a.take(att) : nil,
                                                   context: a.take(N * C), projected: a.take(N * C)),
                             ffnNorm: sub(), ffn: ffn())
            }
            let norms = (sub(), sub())
            let logits = a.take(N * c.vocabularySize), losses = a.take(N)
            let scratch = Scratch(dA: a.take(N * C), dB: a.take(N * C), dln: a.take(N * C), dbranch: a.take(N * C),
                                  dcontext: a.take(N * C), dq: a.take(N * C), dqkv: a.take(3 * N * C), dprobs: a.take(att),
                                  dhidden: a.take(N * F), dpre: a.take(N * F), dencoded: a.take(N * C))
            // Token ids live in the same allocation (Int32 and Float have the same size).
            let ints = (0..<4).map { i in
                UnsafeMutableRawPointer(a.take(i == 3 ? B : N)).bindMemory(to: Int32.self, capacity: i == 3 ? B : N)
            }
            return Parts(embedded: embedded, encoder: encoder, decoder: decoder, norms: norms, logits: logits,
                         losses: losses, scratch: scratch, ints: ints)
        }
        var counting = Arena()
        _ = carve(&counting)
        storage = FlatBuffer(count: counting.used)
        var arena = Arena(buffer: storage)
        let p = carve(&arena)
        (sourceEmbedded, targetEmbedded) = p.embedded
        encoder = p.encoder; decoder = p.decoder
        (encoderNorm, decoderNorm) = p.norms
        logits = p.logits; losses = p.losses; scratch = p.scratch
        sourceTokens = p.ints[0]; targetInput = p.ints[1]; targetOutput = p.ints[2]; sourceLengths = p.ints[3]
    }

    struct Parts {
        let embedded: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>)
        let encoder: [EncoderBlock]
        let decoder: [DecoderBlock]
        let norms: (Sublayer, Sublayer)
        let logits, losses: UnsafeMutablePointer<Float>
        let scratch: Scratch
        let ints: [UnsafeMutablePointer<Int32>]
    }
}
