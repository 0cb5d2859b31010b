// EncoderDecoderFile: the small JSON file that describes an encoder-decoder model saved beside its
// model.safetensors (shape and special tokens), read and written with errors naming the file and
// key. It is not the training config (Config.swift) nor a checkpoint.
import Foundation
import Data
import Models
import Support

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
        for key in integerKeys {
            if let n = object[key] as? Double, n != n.rounded() { throw fail("key '\(key)' must be an integer, got \(n)") }
        }
        // Types are checked by Codable (on Linux, JSONSerialization's numbers also pass as Bool).
        struct Raw: Decodable {
            var vocabulary_size, max_length, encoder_layers, decoder_layers, width, heads, ffn_width: Int?
            var dropout, attention_dropout, layer_norm_epsilon: Float?
            var pre_norm: Bool?
            var begin_token, end_token: String?
        }
        let raw: Raw
        do { raw = try JSONDecoder().decode(Raw.self, from: data) } catch let DecodingError.typeMismatch(type, context) {
            throw fail("key '\(context.codingPath.map(\.stringValue).joined(separator: "."))' must be \(type == Bool.self ? "true or false" : type == String.self ? "a string" : type == Int.self ? "an integer" : "a number")")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw fail("key '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)")
        } catch {
            throw fail("\(error)")
        }
        func required(_ value: Int?, _ key: String) throws -> Int {
            guard let value else { throw fail("missing key '\(key)'") }
            return value
        }
        let config = EncoderDecoderConfig(
            vocabularySize: try required(raw.vocabulary_size, "vocabulary_size"), maxLength: try required(raw.max_length, "max_length"),
            encoderLayers: try required(raw.encoder_layers, "encoder_layers"), decoderLayers: try required(raw.decoder_layers, "decoder_layers"),
            width: try required(raw.width, "width"), heads: try required(raw.heads, "heads"), ffnWidth: try required(raw.ffn_width, "ffn_width"),
            dropout: raw.dropout ?? 0, attentionDropout: raw.attention_dropout ?? 0, normPlacement: (raw.pre_norm ?? false) ? .pre : .post,
            layerNormEpsilon: raw.layer_norm_epsilon ?? 1e-5)
        if let problem = config.problem { throw fail(problem) }
        return EncoderDecoderFile(config: config, beginToken: raw.begin_token, endToken: raw.end_token)
    }

    public func write(_ path: String) throws {
        let c = config
        var object: [String: Any] = [
            "vocabulary_size": c.vocabularySize, "max_length": c.maxLength, "encoder_layers": c.encoderLayers,
            "decoder_layers": c.decoderLayers, "width": c.width, "heads": c.heads, "ffn_width": c.ffnWidth,
            "dropout": Double(c.dropout), "attention_dropout": Double(c.attentionDropout), "pre_norm": c.normPlacement == .pre,
            "layer_norm_epsilon": Double(c.layerNormEpsilon),
        ]
        if let beginToken { object["begin_token"] = beginToken }
        if let endToken { object["end_token"] = endToken }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(path, data: data + Data("\n".utf8))
    }
}
