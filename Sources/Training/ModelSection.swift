// ModelSection: the `model:` section of a run config — `kind` and then the shape of that kind, as
// the Models types themselves (GPTConfig, EncoderDecoderConfig). The encoder-decoder's shape has
// one schema, read and written here for both the YAML and model-config.json.
import Foundation
import Yams
import Data
import Models

/// Which model a run trains.
public enum ModelKind: String, Codable, CaseIterable, Sendable {
    /// GPT-2's decoder-only Transformer (`layers` blocks).
    case gpt
    /// The encoder-decoder of "Attention Is All You Need" (`encoder_layers` + `layers` decoder blocks).
    case transformer
    /// BERT's encoder-only Transformer, pre-trained by masked language modelling.
    case bert
}

/// What a run reads of either model's shape.
public protocol ModelShape {
    /// The GPT's blocks, or the encoder-decoder's decoder blocks.
    var layers: Int { get }
    var heads: Int { get }
    var width: Int { get }
    /// Positions the model reads: the GPT's position table; the encoder-decoder's longest sequence.
    var contextLength: Int { get }
    var dropout: Float { get }
    var layerNormEpsilon: Float { get }
    /// The model's vocabulary rows; 0 in a run config = the tokenizer's.
    var vocabularySize: Int { get }
}

extension GPTConfig: ModelShape {}

extension EncoderDecoderConfig: ModelShape {
    public var layers: Int { decoderLayers }
    public var contextLength: Int { maxLength }
}

extension BERTConfig: ModelShape {}

/// The model: `kind: gpt` (default) or `kind: transformer`, with the keys of that kind's shape.
public enum ModelSection: Equatable {
    case gpt(GPTConfig)
    case transformer(EncoderDecoderConfig)
    /// BERT's shape and how its inputs are masked (`masking:` inside the model section).
    case bert(BERTConfig, MaskingPolicy)

    public var kind: ModelKind {
        switch self {
        case .gpt: return .gpt
        case .transformer: return .transformer
        case .bert: return .bert
        }
    }
    public var shape: any ModelShape {
        switch self {
        case let .gpt(shape): return shape
        case let .transformer(shape): return shape
        case let .bert(shape, _): return shape
        }
    }
    public var layers: Int { shape.layers }
    public var heads: Int { shape.heads }
    public var width: Int { shape.width }
    public var contextLength: Int { shape.contextLength }
    public var dropout: Float { shape.dropout }
    public var vocabularySize: Int { shape.vocabularySize }

    /// This model with `rows` vocabulary rows: what a run's resolved config records once the
    /// tokenizer has decided them.
    public func withVocabularySize(_ rows: Int) -> ModelSection {
        switch self {
        case var .gpt(shape): shape.vocabularySize = rows; return .gpt(shape)
        case var .transformer(shape): shape.vocabularySize = rows; return .transformer(shape)
        case .bert(var shape, let masking): shape.vocabularySize = rows; return .bert(shape, masking)
        }
    }
}

extension LoomConfig {
    /// `model.init_from: DIR`, resolved in the YAML before decoding: the shape keys the config
    /// leaves out are filled from DIR/config.json, those it states must agree with it (an error
    /// naming both otherwise), and an absent `data.tokenizer` becomes DIR's tokenizer file. A
    /// config that states the whole shape reads without DIR (a finished run's config.yaml).
    static func resolveInitialization(_ node: inout Node, file: String) throws {
        guard var root = node.mapping, var model = root["model"]?.mapping, let source = model["init_from"] else { return }
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message: message) }
        guard let directory = source.string, !directory.isEmpty else {
            throw fail("model.init_from", "must be the path of a Hugging Face GPT-2 directory")
        }
        if let kind = model["kind"]?.string, kind != ModelKind.gpt.rawValue {
            throw fail("model.init_from", "starts a GPT from a Hugging Face GPT-2 directory; model.kind is \(kind)")
        }
        let configPath = directory + "/config.json"
        guard FileManager.default.fileExists(atPath: configPath) else {
            if ["layers", "heads", "width", "context_length"].allSatisfy({ model[$0] != nil }) { return }
            throw HuggingFaceError(file: configPath, message: "cannot read (model.init_from names a Hugging Face GPT-2 directory: config.json, model.safetensors, and tokenizer.json or vocab.json + merges.txt)")
        }
        let hf = try HuggingFaceGPT2.readConfig(configPath).shape
        let integers: [(key: String, theirs: String, value: Int)] = [
            ("layers", "n_layer", hf.layers), ("heads", "n_head", hf.heads), ("width", "n_embd", hf.width),
            ("context_length", "n_positions", hf.contextLength), ("vocabulary_size", "vocab_size", hf.vocabularySize),
        ]
        for (key, theirs, value) in integers {
            guard let stated = model[key] else { model[key] = Node(String(value), Tag(.int)); continue }
            guard let n = stated.int else { continue }   // decoding names the type error
            let agrees = key == "context_length" ? n <= value : key == "vocabulary_size" ? (n == 0 || n == value) : n == value
            if key == "vocabulary_size", n == 0 { model[key] = Node(String(value), Tag(.int)) }
            if !agrees {
                throw fail("model.\(key)", "is \(n), but \(configPath) says \(theirs): \(value)"
                           + (key == "context_length" ? " (the context can be shorter, not longer)" : "")
                           + "; remove model.\(key) (model.init_from sets it) or make them agree")
            }
        }
        if let stated = model["layer_norm_epsilon"] {
            if let x = stated.float, Float(x) != hf.layerNormEpsilon {
                throw fail("model.layer_norm_epsilon", "is \(x), but \(configPath) says layer_norm_epsilon: \(hf.layerNormEpsilon); remove it or make them agree")
            }
        } else {
            model["layer_norm_epsilon"] = Node(hf.layerNormEpsilon.description, Tag(.float))
        }
        root["model"] = .mapping(model)
        var data = root["data"]?.mapping ?? Node.Mapping([])
        if data["tokenizer"] == nil || data["tokenizer"]?.string == TokenizerSetting.characterName {
            guard let tokenizer = TokenizerFile.inModelDirectory(directory) else {
                throw HuggingFaceError(file: directory, message: "has neither tokenizer.json nor vocab.json + merges.txt; model.init_from needs the model's tokenizer (or set data.tokenizer)")
            }
            data["tokenizer"] = Node(tokenizer)
            root["data"] = .mapping(data)
        }
        node = .mapping(root)
    }
}

extension ModelSection: Codable {
    enum CodingKeys: String, CodingKey { case kind }

    public init(from decoder: Decoder) throws {
        var kind = ModelKind.gpt
        try decoder.container(keyedBy: CodingKeys.self).read(&kind, .kind)
        switch kind {
        case .gpt: self = .gpt(try GPTConfig(from: decoder))
        case .transformer: self = .transformer(try EncoderDecoderConfig(from: decoder))
        case .bert:
            let c = try decoder.container(keyedBy: BERTConfig.CodingKeys.self)
            var masking = MaskingPolicy()
            try c.read(&masking, .masking)
            self = .bert(try BERTConfig(from: decoder), masking)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        switch self {
        case let .gpt(shape): try shape.encode(to: encoder)
        case let .transformer(shape): try shape.encode(to: encoder)
        case let .bert(shape, masking):
            try shape.encode(to: encoder)
            var b = encoder.container(keyedBy: BERTConfig.CodingKeys.self)
            try b.encode(masking, forKey: .masking)
        }
    }
}

/// The GPT's keys: `layers`, `heads`, `width`, `context_length` (required); `dropout` (embedding,
/// attention and residual; 0), `vocabulary_size` (0 = the tokenizer's; `loom bench` without a
/// corpus needs it), `layer_norm_epsilon` (1e-5), `init_from` (none).
///
/// `init_from: DIR` starts the GPT from a Hugging Face GPT-2 directory (config.json,
/// model.safetensors, and tokenizer.json or vocab.json + merges.txt) instead of random weights:
/// the shape keys it leaves out come from config.json (`n_layer`, `n_head`, `n_embd`,
/// `n_positions`, `vocab_size`, `layer_norm_epsilon`; a `context_length` below `n_positions`
/// keeps the first rows of the position table), one that disagrees is an error naming both, and
/// the directory's tokenizer encodes the data (`data.tokenizer` may name another file of the same
/// vocabulary; `character` means the directory's). `dropout` stays the
/// config's (default 0). A resumed run continues from its checkpoint, not from `init_from`.
extension GPTConfig: Codable {
    enum CodingKeys: String, CodingKey {
        case layers, heads, width, dropout
        case contextLength = "context_length", vocabularySize = "vocabulary_size", layerNormEpsilon = "layer_norm_epsilon"
        case initFrom = "init_from"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let layers = try c.integer(.layers), heads = try c.integer(.heads), width = try c.integer(.width)
        self.init(vocabularySize: 0, contextLength: try c.integer(.contextLength), layers: layers, heads: heads, width: width)
        try c.read(&vocabularySize, .vocabularySize)
        try c.read(&dropout, .dropout)
        try c.read(&layerNormEpsilon, .layerNormEpsilon)
        initFrom = try c.decodeIfPresent(String.self, forKey: .initFrom)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if encoder.lists(initFrom != nil) { try c.encode(initFrom ?? "", forKey: .initFrom) }
        try c.encode(layers, forKey: .layers)
        try c.encode(heads, forKey: .heads)
        try c.encode(width, forKey: .width)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(decimal: dropout, forKey: .dropout)
        if encoder.lists(vocabularySize != 0) { try c.encode(vocabularySize, forKey: .vocabularySize) }
        try c.encode(decimal: layerNormEpsilon, forKey: .layerNormEpsilon)
    }
}

/// The encoder-decoder's keys, the same in a run config and in model-config.json: `layers`
/// (decoder blocks), `heads`, `width`, `context_length` (the longest source or target) are
/// required; `encoder_layers` (default: `layers`), `ffn_width` (4 × width), `dropout` (residual,
/// on embeddings and every sub-layer's output; 0), `attention_dropout` (on attention
/// probabilities; 0), `norm_placement` (`post`, the paper's, or `pre`), `layer_norm_epsilon`
/// (1e-5), `vocabulary_size` (0 = the tokenizer's; model-config.json always states it).
extension EncoderDecoderConfig: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case layers, heads, width, dropout
        case contextLength = "context_length", encoderLayers = "encoder_layers", ffnWidth = "ffn_width"
        case attentionDropout = "attention_dropout", normPlacement = "norm_placement"
        case layerNormEpsilon = "layer_norm_epsilon", vocabularySize = "vocabulary_size"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let maxLength = try c.integer(.contextLength), layers = try c.integer(.layers)
        let heads = try c.integer(.heads), width = try c.integer(.width)
        self.init(vocabularySize: 0, maxLength: maxLength, encoderLayers: layers, decoderLayers: layers, width: width,
                  heads: heads, ffnWidth: 4 * width)
        try c.read(&vocabularySize, .vocabularySize)
        try c.read(&encoderLayers, .encoderLayers)
        try c.read(&ffnWidth, .ffnWidth)
        try c.read(&dropout, .dropout)
        try c.read(&attentionDropout, .attentionDropout)
        try c.read(&normPlacement, .normPlacement)
        try c.read(&layerNormEpsilon, .layerNormEpsilon)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if encoder.lists(vocabularySize != 0) { try c.encode(vocabularySize, forKey: .vocabularySize) }
        try c.encode(encoderLayers, forKey: .encoderLayers)
        try c.encode(decoderLayers, forKey: .layers)
        try c.encode(heads, forKey: .heads)
        try c.encode(width, forKey: .width)
        try c.encode(ffnWidth, forKey: .ffnWidth)
        try c.encode(maxLength, forKey: .contextLength)
        try c.encode(decimal: dropout, forKey: .dropout)
        try c.encode(decimal: attentionDropout, forKey: .attentionDropout)
        try c.encode(normPlacement, forKey: .normPlacement)
        try c.encode(decimal: layerNormEpsilon, forKey: .layerNormEpsilon)
    }
}

/// BERT's keys: `layers`, `heads`, `width`, `context_length` (max_position_embeddings) are
/// required; `ffn_width` (intermediate_size, 4 × width), `type_vocabulary_size` (segment
/// embeddings, 2), `dropout` (hidden dropout, 0), `attention_dropout` (0), `norm_placement`
/// (`post`, BERT's, or `pre`), `layer_norm_epsilon` (1e-12, BERT's), `vocabulary_size` (0 = the
/// tokenizer's), and `masking` (see MaskingPolicy's keys).
extension BERTConfig: Codable {
    enum CodingKeys: String, CodingKey {
        case layers, heads, width, dropout, masking
        case contextLength = "context_length", ffnWidth = "ffn_width", typeVocabularySize = "type_vocabulary_size"
        case attentionDropout = "attention_dropout", normPlacement = "norm_placement"
        case layerNormEpsilon = "layer_norm_epsilon", vocabularySize = "vocabulary_size"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vocabularySize: 0, contextLength: try c.integer(.contextLength), layers: try c.integer(.layers),
                  heads: try c.integer(.heads), width: try c.integer(.width))
        try c.read(&vocabularySize, .vocabularySize)
        try c.read(&ffnWidth, .ffnWidth)
        try c.read(&typeVocabularySize, .typeVocabularySize)
        try c.read(&dropout, .dropout)
        try c.read(&attentionDropout, .attentionDropout)
        try c.read(&normPlacement, .normPlacement)
        try c.read(&layerNormEpsilon, .layerNormEpsilon)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if encoder.lists(vocabularySize != 0) { try c.encode(vocabularySize, forKey: .vocabularySize) }
        try c.encode(layers, forKey: .layers)
        try c.encode(heads, forKey: .heads)
        try c.encode(width, forKey: .width)
        try c.encode(ffnWidth, forKey: .ffnWidth)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(typeVocabularySize, forKey: .typeVocabularySize)
        try c.encode(decimal: dropout, forKey: .dropout)
        try c.encode(decimal: attentionDropout, forKey: .attentionDropout)
        try c.encode(normPlacement, forKey: .normPlacement)
        try c.encode(decimal: layerNormEpsilon, forKey: .layerNormEpsilon)
    }
}

/// `model.masking` (kind bert): `probability` of a non-special token being chosen (0.15),
/// `replace_with_mask` (0.8) and `replace_with_random` (0.1) shares of the chosen; the rest stay.
extension MaskingPolicy: Codable {
    enum CodingKeys: String, CodingKey {
        case probability, replaceWithMask = "replace_with_mask", replaceWithRandom = "replace_with_random"
    }

    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&probability, .probability)
        try c.read(&replaceWithMask, .replaceWithMask)
        try c.read(&replaceWithRandom, .replaceWithRandom)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(probability, forKey: .probability)
        try c.encode(replaceWithMask, forKey: .replaceWithMask)
        try c.encode(replaceWithRandom, forKey: .replaceWithRandom)
    }
}
