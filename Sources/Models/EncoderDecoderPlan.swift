// EncoderDecoderPlan: every tensor (fairseq's names, in buffer order) and every activation of the
// encoder-decoder, declared once through ModelBuilder as sublayers, for EncoderDecoder to run.
import Kernels

/// Every tensor and activation of an encoder-decoder at `batch` pairs, declared once, in buffer
/// order. Names follow fairseq's Transformer, with the self-attention Q/K/V fused into `qkv_proj`
/// (C, 3C) and the encoder-attention K/V into `kv_proj` (C, 2C).
struct EncoderDecoderPlan {
    let layout: ParameterLayout
    let activationCount: Int
    let embedding: Tensor                               // (V, C)
    let encoder, decoder: [TransformerBlock]
    let encoderNorm, decoderNorm: NormSublayer?          // pre-LN only
    let sourceEmbedded, targetEmbedded: Slot            // (B,S,C), (B,T,C)
    let logits, losses: Slot                            // (B,T,V) logits → probs → dlogits; (B,T)
    let scratch: BackwardScratch
    let sourceTokens, targetInput, targetOutput: Slot   // (B,S), (B,T), (B,T) Int32
    let sourceLengths: Slot                             // (B) Int32

    /// Groups: the embedding (0), each encoder block (1…E; the last also holds `encoder.layer_norm`
    /// under pre-LN), each decoder block (E+1…E+D; likewise `decoder.layer_norm`).
    init(_ c: EncoderDecoderConfig, batch B: Int) {
        let N = B * c.maxLength, C = c.width, pre = c.normPlacement == .pre
        var b = ModelBuilder()
        embedding = b.tensor("embedding.weight", [c.vocabularySize, C], decay: true)
        b.endGroup("embedding")
        sourceEmbedded = b.buffer(N * C); targetEmbedded = b.buffer(N * C)
        func stack(_ name: String, _ layers: Int, cross: Bool) -> ([TransformerBlock], NormSublayer?) {
            var blocks: [TransformerBlock] = [], norm: NormSublayer?
            for l in 0..<layers {
                blocks.append(Self.block(&b, "\(name).layers.\(l).", cross ? .decoder(l) : .encoder(l), c, batch: B))
                if l == layers - 1 && pre {
                    norm = NormSublayer(&b, norm: b.norm(name + ".layer_norm", width: C), rows: N, width: C,
                                        epsilon: c.layerNormEpsilon)
                }
                b.endGroup("\(name).layers.\(l)")
            }
            return (blocks, norm)
        }
        (encoder, encoderNorm) = stack("encoder", c.encoderLayers, cross: false)
        (decoder, decoderNorm) = stack("decoder", c.decoderLayers, cross: true)
        logits = b.buffer(N * c.vocabularySize); losses = b.buffer(N)
        scratch = BackwardScratch(&b, rows: N, width: C, hidden: c.ffnWidth, probabilities: B * c.heads * c.maxLength * c.maxLength,
                                  cross: true, postNorm: !pre, relu: true)
        sourceTokens = b.buffer(N); targetInput = b.buffer(N); targetOutput = b.buffer(N); sourceLengths = b.buffer(B)
        layout = b.layout; activationCount = b.activationCount
    }

    /// One block: self_attn.{qkv_proj, out_proj}, self_attn_layer_norm, then for the decoder
    /// encoder_attn.{q_proj, kv_proj, out_proj}, encoder_attn_layer_norm, then fc1, fc2, ffn_layer_norm.
    static func block(_ b: inout ModelBuilder, _ h: String, _ stream: EncoderDecoder.Stream, _ c: EncoderDecoderConfig,
                      batch B: Int) -> TransformerBlock {
        let N = B * c.maxLength, C = c.width, probabilities = B * c.heads * c.maxLength * c.maxLength
        let dropout = c.attentionDropout > 0, isDecoder = stream.isDecoder
        func residual(_ norm: Affine, _ site: EncoderDecoder.DropoutSite) -> ResidualSublayer {
            ResidualSublayer(&b, norm: norm, placement: c.normPlacement, site: MaskSite(layer: stream.layer, site), rows: N,
                             width: C, epsilon: c.layerNormEpsilon)
        }
        let attention = AttentionSublayer(&b, qkv: h + "self_attn.qkv_proj", out: h + "self_attn.out_proj",
                                          mask: isDecoder ? .causal : .padded,
                                          site: MaskSite(layer: stream.layer, EncoderDecoder.DropoutSite.selfAttentionProbabilities),
                                          rows: N, width: C, probabilities: probabilities, dropout: dropout)
        let selfAttention = Sublayer(residual: residual(b.norm(h + "self_attn_layer_norm", width: C), .selfAttentionOutput),
                                     function: attention)
        var crossAttention: Sublayer<AttentionSublayer>?
        if isDecoder {
            let cross = AttentionSublayer(&b, q: h + "encoder_attn.q_proj", kv: h + "encoder_attn.kv_proj",
                                          out: h + "encoder_attn.out_proj",
                                          site: MaskSite(layer: stream.layer, EncoderDecoder.DropoutSite.crossAttentionProbabilities),
                                          rows: N, width: C, probabilities: probabilities, dropout: dropout)
            crossAttention = Sublayer(residual: residual(b.norm(h + "encoder_attn_layer_norm", width: C), .crossAttentionOutput),
                                      function: cross)
        }
        let ffn = FeedForwardSublayer(&b, fc1: h + "fc1", fc2: h + "fc2", activation: .relu, rows: N, width: C, hidden: c.ffnWidth)
        let feedForward = Sublayer(residual: residual(b.norm(h + "ffn_layer_norm", width: C), .feedForwardOutput), function: ffn)
        return TransformerBlock(selfAttention: selfAttention, crossAttention: crossAttention, feedForward: feedForward)
    }
}
