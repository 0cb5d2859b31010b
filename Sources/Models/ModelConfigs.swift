// ModelConfigs: the shapes of Loom's model families (GPT, the encoder-decoder and BERT) and the
// closed sets they are built from, as plain data. Training reads and writes them (YAML and JSON).
import Kernels

/// Where a residual sub-layer's LayerNorm sits: `post` is the original Transformer's LN(x + f(x));
/// `pre` is x + f(LN(x)), with a final LayerNorm after the stack (GPT-2, most modern models).
public enum NormPlacement: String, Codable, CaseIterable, Sendable {
    case post, pre
}

/// The model's shape. Plain data; Training reads and writes it (ModelSection.swift).
public struct GPTConfig: Equatable, Sendable {
    public var vocabularySize: Int
    public var contextLength: Int
    public var layers: Int
    public var heads: Int
    public var width: Int
    /// Probability for embedding, attention and residual dropout (GPT-2's three sites).
    public var dropout: Float
    public var layerNormEpsilon: Float = 1e-5
    /// The Hugging Face GPT-2 directory whose weights the model starts from instead of a random
    /// initialisation (a run config's `model.init_from`; Training reads it), or nil.
    public var initFrom: String?

    public init(vocabularySize: Int, contextLength: Int, layers: Int, heads: Int, width: Int, dropout: Float = 0) {
        self.vocabularySize = vocabularySize; self.contextLength = contextLength
        self.layers = layers; self.heads = heads; self.width = width; self.dropout = dropout
    }

    /// Parameters without the position table (the N of the FLOP formula 6·N + 12·L·T·C).
    public var nonEmbeddingPositionParameters: Int {
        GPT.layout(self).count - contextLength * width
    }
    /// Training FLOPs per token: 6·N + 12·L·T·C (forward + backward, attention included).
    public var flopsPerToken: Double {
        6 * Double(nonEmbeddingPositionParameters) + 12 * Double(layers * contextLength * width)
    }
}

/// The model's shape. Plain data; Training reads and writes it, in a run config and in
/// model-config.json (ModelSection.swift).
public struct EncoderDecoderConfig: Equatable, Sendable {
    public var vocabularySize: Int
    /// Longest source or target sequence (rows of the sinusoidal table, activation sizes).
    public var maxLength: Int
    public var encoderLayers: Int
    public var decoderLayers: Int
    public var width: Int
    public var heads: Int
    public var ffnWidth: Int
    /// Residual dropout: on embeddings + positions and on every sub-layer's output before the add.
    public var dropout: Float
    /// Dropout on attention probabilities (0 in the paper's base model).
    public var attentionDropout: Float
    /// Where each sub-layer's LayerNorm sits: the paper's post-LN or pre-LN.
    public var normPlacement: NormPlacement
    public var layerNormEpsilon: Float

    public init(vocabularySize: Int, maxLength: Int, encoderLayers: Int, decoderLayers: Int, width: Int, heads: Int,
                ffnWidth: Int, dropout: Float = 0, attentionDropout: Float = 0, normPlacement: NormPlacement = .post,
                layerNormEpsilon: Float = 1e-5) {
        self.vocabularySize = vocabularySize; self.maxLength = maxLength
        self.encoderLayers = encoderLayers; self.decoderLayers = decoderLayers
        self.width = width; self.heads = heads; self.ffnWidth = ffnWidth
        self.dropout = dropout; self.attentionDropout = attentionDropout; self.normPlacement = normPlacement
        self.layerNormEpsilon = layerNormEpsilon
    }

    /// The paper's base model (Table 3): 6+6 layers, d_model 512, 8 heads, d_ff 2048, dropout 0.1.
    public static func base(vocabularySize: Int, maxLength: Int = 256) -> EncoderDecoderConfig {
        EncoderDecoderConfig(vocabularySize: vocabularySize, maxLength: maxLength, encoderLayers: 6, decoderLayers: 6,
                             width: 512, heads: 8, ffnWidth: 2048, dropout: 0.1)
    }

    /// Why the shape is impossible, or nil.
    public var problem: String? {
        if vocabularySize < 1 { return "vocabulary_size must be ≥ 1" }
        if maxLength < 1 { return "context_length must be ≥ 1" }
        if encoderLayers < 1 || decoderLayers < 1 { return "encoder_layers and layers must be ≥ 1" }
        if heads < 1 || width % heads != 0 { return "width \(width) must be divisible by heads \(heads)" }
        if width % 2 != 0 { return "width \(width) must be even (sin and cos halves of the position signal)" }
        if ffnWidth < 1 { return "ffn_width must be ≥ 1" }
        if !(0..<1).contains(dropout) || !(0..<1).contains(attentionDropout) { return "dropout must be in [0, 1)" }
        return nil
    }
}

/// BERT's shape (Hugging Face `BertConfig` names in the comments). Plain data; Training reads and
/// writes it.
public struct BERTConfig: Equatable, Sendable {
    public var vocabularySize: Int
    /// Rows of the position table (`max_position_embeddings`): the longest sequence.
    public var contextLength: Int
    public var layers: Int
    public var heads: Int
    public var width: Int
    /// The feed-forward width (`intermediate_size`).
    public var ffnWidth: Int
    /// Rows of the segment (token type) table (`type_vocab_size`).
    public var typeVocabularySize: Int
    /// Hidden dropout (`hidden_dropout_prob`): on the embeddings and every sub-layer's output.
    public var dropout: Float
    /// Dropout on the attention probabilities (`attention_probs_dropout_prob`).
    public var attentionDropout: Float
    /// BERT's post-LN, or pre-LN with a final LayerNorm after the stack. The embeddings have their
    /// LayerNorm in both.
    public var normPlacement: NormPlacement
    /// Every LayerNorm's ε (`layer_norm_eps`).
    public var layerNormEpsilon: Float

    /// `ffnWidth` nil is 4·width.
    public init(vocabularySize: Int, contextLength: Int, layers: Int, heads: Int, width: Int, ffnWidth: Int? = nil,
                typeVocabularySize: Int = 2, dropout: Float = 0, attentionDropout: Float = 0,
                normPlacement: NormPlacement = .post, layerNormEpsilon: Float = 1e-12) {
        self.vocabularySize = vocabularySize; self.contextLength = contextLength; self.layers = layers
        self.heads = heads; self.width = width; self.ffnWidth = ffnWidth ?? 4 * width
        self.typeVocabularySize = typeVocabularySize; self.dropout = dropout; self.attentionDropout = attentionDropout
        self.normPlacement = normPlacement; self.layerNormEpsilon = layerNormEpsilon
    }

    /// Why the shape is impossible, or nil.
    public var problem: String? {
        if vocabularySize < 1 { return "vocabulary_size must be ≥ 1" }
        if contextLength < 1 { return "context_length must be ≥ 1" }
        if layers < 1 { return "layers must be ≥ 1" }
        if heads < 1 || width % heads != 0 { return "width \(width) must be divisible by heads \(heads)" }
        if ffnWidth < 1 { return "ffn_width must be ≥ 1" }
        if typeVocabularySize < 1 { return "type_vocabulary_size must be ≥ 1" }
        if !(0..<1).contains(dropout) || !(0..<1).contains(attentionDropout) { return "dropout must be in [0, 1)" }
        if !(layerNormEpsilon > 0) { return "layer_norm_epsilon must be > 0" }
        return nil
    }
}
