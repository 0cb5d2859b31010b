// BERTPlan: every tensor (Hugging Face `BertForMaskedLM`'s names, in buffer order) and every
// activation of BERT, declared once through ModelBuilder, and the masked-language-model head, for
// BERT to run.
//
// Shape legend: B batch, T time (≤ context), C width, F feed-forward width, V vocabulary, N = B·T
// rows at the largest batch, M predicted rows (≤ maxPredictions).
import Kernels

/// Every tensor and activation of a BERT at `batch` sequences, declared once, in buffer order.
/// Linear weights are stored (in, out); each self-attention's Q/K/V are fused into one `qkv`
/// (C, 3C) whose column blocks are Q, K, V.
struct BERTPlan {
    let layout: ParameterLayout
    let activationCount: Int
    let wordEmbeddings: Tensor                // (V, C), tied to the head's decoder
    let positionEmbeddings: Tensor            // (maxT, C)
    let tokenTypeEmbeddings: Tensor           // (typeV, C)
    let embeddingNorm: NormSublayer           // output (N,C): the first block's input (after dropout, in place)
    let embedded: Slot                        // (N,C) word + position + token type: the norm's input
    let blocks: [TransformerBlock]
    let finalNorm: NormSublayer?              // pre-LN only
    let head: MLMHead
    let scratch: BackwardScratch
    let tokens, segments: Slot                // (N) Int32 each
    let lengths: Slot                         // (B) Int32

    /// Groups: the embeddings (0), each layer (1…L), then the head (L+1; under pre-LN with the
    /// final LayerNorm before it).
    init(_ c: BERTConfig, batch B: Int, predictions M: Int) {
        let T = c.contextLength, C = c.width, N = B * T, e = c.layerNormEpsilon
        var b = ModelBuilder()
        wordEmbeddings = b.tensor("bert.embeddings.word_embeddings.weight", [c.vocabularySize, C], decay: true)
        positionEmbeddings = b.tensor("bert.embeddings.position_embeddings.weight", [T, C])
        tokenTypeEmbeddings = b.tensor("bert.embeddings.token_type_embeddings.weight", [c.typeVocabularySize, C])
        embeddingNorm = NormSublayer(&b, norm: b.norm("bert.embeddings.LayerNorm", width: C), rows: N, width: C, epsilon: e)
        b.endGroup("bert.embeddings")
        embedded = b.buffer(N * C)
        var blocks: [TransformerBlock] = []
        for l in 0..<c.layers {
            blocks.append(Self.block(&b, layer: l, c, rows: N, batch: B))
            b.endGroup("bert.encoder.layer.\(l)")
        }
        self.blocks = blocks
        finalNorm = c.normPlacement == .pre
            ? NormSublayer(&b, norm: b.norm("bert.encoder.final_layer_norm", width: C), rows: N, width: C, epsilon: e) : nil
        head = MLMHead(&b, c, predictions: M)
        b.endGroup(finalNorm == nil ? "cls.predictions" : "bert.encoder.final_layer_norm+cls.predictions")
        scratch = BackwardScratch(&b, rows: N, width: C, hidden: c.ffnWidth, probabilities: B * c.heads * T * T,
                                  cross: false, postNorm: c.normPlacement == .post, relu: false)
        tokens = b.buffer(N); segments = b.buffer(N); lengths = b.buffer(B)
        layout = b.layout; activationCount = b.activationCount
    }

    /// Layer l: attention.self.qkv, attention.output.dense, attention.output.LayerNorm,
    /// intermediate.dense, output.dense, output.LayerNorm; padded self-attention, erf GELU.
    static func block(_ b: inout ModelBuilder, layer l: Int, _ c: BERTConfig, rows N: Int, batch B: Int) -> TransformerBlock {
        let h = "bert.encoder.layer.\(l).", C = c.width, T = c.contextLength
        func residual(_ norm: Affine, _ site: BERT.DropoutSite) -> ResidualSublayer {
            ResidualSublayer(&b, norm: norm, placement: c.normPlacement, site: MaskSite(layer: l, site), rows: N, width: C,
                             epsilon: c.layerNormEpsilon)
        }
        let attention = AttentionSublayer(&b, qkv: h + "attention.self.qkv", out: h + "attention.output.dense", mask: .padded,
                                          site: MaskSite(layer: l, BERT.DropoutSite.attentionProbabilities), rows: N,
                                          width: C, probabilities: B * c.heads * T * T, dropout: c.attentionDropout > 0)
        let attentionResidual = residual(b.norm(h + "attention.output.LayerNorm", width: C), .attentionOutput)
        let ffn = FeedForwardSublayer(&b, fc1: h + "intermediate.dense", fc2: h + "output.dense", activation: .geluExact,
                                      rows: N, width: C, hidden: c.ffnWidth)
        let ffnResidual = residual(b.norm(h + "output.LayerNorm", width: C), .feedForwardOutput)
        return TransformerBlock(selfAttention: Sublayer(residual: attentionResidual, function: attention),
                                crossAttention: nil, feedForward: Sublayer(residual: ffnResidual, function: ffn))
    }
}

/// The masked-language-model head (`cls.predictions`) on the M predicted rows only: gathered
/// rows → transform.dense → GELU (erf) → transform.LayerNorm → the tied decoder (· word
/// embeddingsᵀ) + bias → cross-entropy.
struct MLMHead {
    let dense: Affine                // (C,C), (C) cls.predictions.transform.dense
    let norm: Affine                 // (C), (C) cls.predictions.transform.LayerNorm
    let bias: Tensor                 // (V) cls.predictions.bias
    let epsilon: Float
    let rows: Slot                   // (M) Int32: the predicted rows' indices b·T + t, row-major
    let targets: Slot                // (M) Int32: their target ids
    let gathered: Slot               // (M,C) the encoder output at those rows
    let hidden, activated: Slot      // (M,C) dense's output (GELU's input), GELU of it
    let normed: Slot                 // (M,C) the LayerNorm's output, the decoder's input
    let mean, rstd: Slot             // (M) each
    let logits: Slot                 // (M,V) kept after the forward (predictedLogits)
    let probabilities: Slot          // (M,V) softmax → dlogits
    let losses: Slot                 // (M)
    let dnormed, dactivated: Slot    // (M,C) backward scratch: dnormed is reused for the gathered rows' gradient

    init(_ b: inout ModelBuilder, _ c: BERTConfig, predictions M: Int) {
        let C = c.width, V = c.vocabularySize
        dense = b.linear("cls.predictions.transform.dense", inputs: C, outputs: C)
        norm = b.norm("cls.predictions.transform.LayerNorm", width: C)
        bias = b.tensor("cls.predictions.bias", [V])
        epsilon = c.layerNormEpsilon
        rows = b.buffer(M); targets = b.buffer(M)
        gathered = b.buffer(M * C); hidden = b.buffer(M * C); activated = b.buffer(M * C); normed = b.buffer(M * C)
        mean = b.buffer(M); rstd = b.buffer(M)
        logits = b.buffer(M * V); probabilities = b.buffer(M * V); losses = b.buffer(M)
        dnormed = b.buffer(M * C); dactivated = b.buffer(M * C)
    }

    /// Σ cross-entropy of the M rows of `x` (N,C) listed in `rows`, against `targets`.
    func forward(_ x: UnsafePointer<Float>, count M: Int, embedding: Tensor, vocabulary V: Int, _ s: Pass) -> Double {
        let a = s.a, p = s.p, C = s.width
        let rows = a.ints(self.rows, count: M), targets = a.ints(self.targets, count: M)
        Rows.gather(out: a[gathered], table: x, indices: rows, rows: M, width: C)
        Linear.forward(out: a[hidden], gelu: a[activated], geluForm: .erf, inp: a[gathered], weight: p[dense.weight],
                       bias: p[dense.bias], rows: M, inputs: C, outputs: C, bf16: s.bf16)
        LayerNorm.forward(out: a[normed], mean: a[mean], rstd: a[rstd], inp: a[activated], weight: p[norm.weight],
                          bias: p[norm.bias], rows: M, channels: C, epsilon: epsilon)
        // Tied decoder: logits(M, V) = normed(M, C) · word_embeddingsᵀ + bias
        TiedProjection.forward(logits: a[logits], x: a[normed], embedding: p[embedding], rows: M, width: C, vocabulary: V,
                               bf16: s.bf16)
        Rows.addRow(a[logits], row: p[bias], rows: M, width: V)
        a[probabilities].update(from: a[logits], count: M * V)
        return CrossEntropy.forward(losses: a[losses], logits: a[probabilities], targets: targets, rows: M, vocabulary: V).sum
    }

    /// `forward` read in reverse: parameter gradients added into s.g (the decoder's into the word
    /// embeddings'), and the gradient of the gathered rows added into `dx` (N,C) at their rows.
    func backward(dx: UnsafeMutablePointer<Float>, count M: Int, embedding: Tensor,
                  vocabulary V: Int, scale: Float, _ s: Pass) {
        let a = s.a, p = s.p, g = s.g, C = s.width
        let rows = a.ints(self.rows, count: M), targets = a.ints(self.targets, count: M)
        CrossEntropy.backward(dlogits: a[probabilities], targets: targets, rows: M, vocabulary: V, scale: scale)
        Rows.addColumnSums(into: g[bias], from: a[probabilities], rows: M, width: V)
        // dnormed = dlogits · word_embeddings ; dword_embeddings += dlogitsᵀ · normed
        TiedProjection.backward(dx: a[dnormed], dembedding: g[embedding], dlogits: a[probabilities], x: a[normed],
                                embedding: p[embedding], rows: M, width: C, vocabulary: V, bf16: s.bf16)
        VectorOps.zero(a[dactivated], count: M * C)
        LayerNorm.backward(dinp: a[dactivated], dweight: g[norm.weight], dbias: g[norm.bias], dout: a[dnormed],
                           inp: a[activated], weight: p[norm.weight], mean: a[mean], rstd: a[rstd], rows: M, channels: C)
        GELU.backward(dinp: a[dactivated], inp: a[hidden], dout: a[dactivated], count: M * C, form: .erf)
        Linear.backward(dinp: a[dnormed], dweight: g[dense.weight], dbias: g[dense.bias], dout: a[dactivated],
                        inp: a[gathered], weight: p[dense.weight], rows: M, inputs: C, outputs: C, bf16: s.bf16)
        Rows.scatterAdd(table: dx, inp: a[dnormed], indices: rows, rows: M, width: C)
    }
}
