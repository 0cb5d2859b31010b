// EncoderDecoderFile: the small JSON file that describes an encoder-decoder model saved beside its
// model.safetensors (shape and special tokens), read and written with errors naming the file and
// key. It is not the training config (Config.swift) nor a checkpoint.
import Foundation
import Models

/// `model-config.json`: the model's shape plus the tokens that begin and end a sentence.
public struct EncoderDecoderFile: Equatable {
    public static let fileName = "model-config.json"
    public var config: EncoderDecoderConfig
    /// Token texts (looked up in the tokenizer): the decoder's first input, and the end of a sentence
    /// (appended to every source, predicted last in every target). nil: `<s>`/`</s>` if the
    /// tokenizer has them, else `<|endoftext|>` for both.
    public var beginToken: String?, endToken: String?

    public init(config: EncoderDecoderConfig, beginToken: String? = nil, endToken: String? = nil) {
        self.config = config; self.beginToken = beginToken; self.endToken = endToken
    }

    static let integerKeys = ["vocabulary_size", "max_length", "encoder_layers", "decoder_layers", "width", "heads", "ffn_width"]
    static let optionalKeys = ["dropout", "attention_dropout", "pre_norm", "layer_norm_epsilon", "begin_token", "end_token"]

    public static func load(_ path: String) throws -> EncoderDecoderFile {
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(path: path, message: message) }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read the model config") }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        for key in object.keys where !integerKeys.contains(key) && !optionalKeys.contains(key) {
            throw fail("unknown key '\(key)' (known: \((integerKeys + optionalKeys).joined(separator: ", ")))")
        }
        func integer(_ key: String) throws -> Int {
            guard let value = object[key] else { throw fail("missing key '\(key)'") }
            guard let n = value as? Int, !(value is Bool) else { throw fail("key '\(key)' must be an integer, got \(value)") }
            return n
        }
        func float(_ key: String, _ fallback: Float) throws -> Float {
            guard let value = object[key] else { return fallback }
            guard let n = value as? Double, !(value is Bool) else { throw fail("key '\(key)' must be a number, got \(value)") }
            return Float(n)
        }
        func string(_ key: String) throws -> String? {
            guard let value = object[key] else { return nil }
            guard let s = value as? String else { throw fail("key '\(key)' must be a string, got \(value)") }
            return s
        }
        var preNorm = false
        if let value = object["pre_norm"] {
            guard let b = value as? Bool else { throw fail("key 'pre_norm' must be true or false, got \(value)") }
            preNorm = b
        }
        let config = EncoderDecoderConfig(
            vocabularySize: try integer("vocabulary_size"), maxLength: try integer("max_length"),
            encoderLayers: try integer("encoder_layers"), decoderLayers: try integer("decoder_layers"),
            width: try integer("width"), heads: try integer("heads"), ffnWidth: try integer("ffn_width"),
            dropout: try float("dropout", 0), attentionDropout: try float("attention_dropout", 0), preNorm: preNorm,
            layerNormEpsilon: try float("layer_norm_epsilon", 1e-5))
        if let problem = config.problem { throw fail(problem) }
        return EncoderDecoderFile(config: config, beginToken: try string("begin_token"), endToken: try string("end_token"))
    }

    public func write(_ path: String) throws {
        let c = config
        var object: [String: Any] = [
            "vocabulary_size": c.vocabularySize, "max_length": c.maxLength, "encoder_layers": c.encoderLayers,
            "decoder_layers": c.decoderLayers, "width": c.width, "heads": c.heads, "ffn_width": c.ffnWidth,
            "dropout": Double(c.dropout), "attention_dropout": Double(c.attentionDropout), "pre_norm": c.preNorm,
            "layer_norm_epsilon": Double(c.layerNormEpsilon),
        ]
        if let beginToken { object["begin_token"] = beginToken }
        if let endToken { object["end_token"] = endToken }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(path, data: data + Data("\n".utf8))
    }
}
