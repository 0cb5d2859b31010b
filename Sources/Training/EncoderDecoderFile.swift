// EncoderDecoderFile: the small JSON file that describes an encoder-decoder model saved beside its
// model.safetensors — the shape, in the same keys as a run config's `model:` section
// (ModelSection.swift), and the special tokens — read and written with errors naming the file and
// key. It also reads the file in its earlier spelling.
import Foundation
import Data
import Models
import Support

/// `model-config.json`: the model's shape plus the tokens that begin and end a sentence.
public struct EncoderDecoderFile: Equatable, Codable {
    public static let fileName = "model-config.json"

    /// Where a model's files are: `model` is a model.safetensors file, a directory holding it, a
    /// run directory or RUN/checkpoints/step-N; its model-config.json and tokenizer.json are the
    /// ones beside the weights, else the run's two levels up; `config` and `tokenizer` override
    /// them. Nil when `model` does not exist.
    public static func locate(model: String, config: String?, tokenizer: String?) -> (weights: String, config: String, tokenizer: String)? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) else { return nil }
        let weights = isDirectory.boolValue ? model + "/model.safetensors" : model
        let here = PathName.absolute(isDirectory.boolValue ? model : PathName.directory(of: model))
        let run = PathName.directory(of: PathName.directory(of: here))
        func find(_ name: String) -> String {
            let candidates = [here + "/" + name, run + "/" + name]
            return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
        }
        return (weights, config ?? find(fileName), tokenizer ?? find("tokenizer.json"))
    }
    public var config: EncoderDecoderConfig
    /// Token texts (looked up in the tokenizer): the decoder's first input, and the end of a sentence
    /// (appended to every source, predicted last in every target). nil: `<s>`/`</s>` if the
    /// tokenizer has them, else `<|endoftext|>` for both.
    public var beginToken: String?, endToken: String?

    public init(config: EncoderDecoderConfig, beginToken: String? = nil, endToken: String? = nil) {
        self.config = config; self.beginToken = beginToken; self.endToken = endToken
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case beginToken = "begin_token", endToken = "end_token" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(config: try EncoderDecoderConfig(from: decoder),
                  beginToken: try c.decodeIfPresent(String.self, forKey: .beginToken),
                  endToken: try c.decodeIfPresent(String.self, forKey: .endToken))
    }

    public func encode(to encoder: Encoder) throws {
        try config.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(beginToken, forKey: .beginToken)
        try c.encodeIfPresent(endToken, forKey: .endToken)
    }

    static let keys = EncoderDecoderConfig.CodingKeys.allCases.map(\.rawValue) + CodingKeys.allCases.map(\.rawValue)

    /// The earlier spelling (`max_length`, `decoder_layers`, `pre_norm: true|false`), read as today's keys.
    enum Earlier {
        static let renamed = ["max_length": "context_length", "decoder_layers": "layers", "pre_norm": "norm_placement"]
        static let keys = EncoderDecoderFile.keys.map { today in renamed.first { $0.value == today }?.key ?? today }
        /// A file is in the earlier spelling when it uses one of its names, or none of today's own.
        static func spells(_ object: [String: Any]) -> Bool {
            object.keys.contains { renamed[$0] != nil } || !object.keys.contains { renamed.values.contains($0) }
        }
        struct Flags: Decodable { var pre_norm: Bool? }
    }

    public static func load(_ path: String) throws -> EncoderDecoderFile {
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(path: path, message: message) }
        guard var data = FileManager.default.contents(atPath: path) else { throw fail("cannot read the model config") }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        let earlier = Earlier.spells(object), known = earlier ? Earlier.keys : keys
        for key in object.keys.sorted() where !known.contains(key) {
            throw fail("unknown key '\(key)' (known: \(known.joined(separator: ", ")))")
        }
        /// A key as this file spells it.
        func named(_ key: String) -> String { earlier ? Earlier.renamed.first { $0.value == key }?.key ?? key : key }
        func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
            do { return try JSONDecoder().decode(type, from: data) } catch let error as DecodingError {
                let (key, message) = describe(error)
                guard let key else { throw fail(message) }
                if case .keyNotFound = error { throw fail("missing key '\(named(key))'") }
                throw fail("key '\(named(key))' \(message)")
            }
        }
        if earlier {
            // Bool-typed by Codable: on Linux, JSONSerialization's numbers also pass as Bool.
            let preNorm = try decode(Earlier.Flags.self, data).pre_norm ?? false
            object["pre_norm"] = nil
            object["norm_placement"] = (preNorm ? NormPlacement.pre : .post).rawValue
            for (old, today) in Earlier.renamed where object[old] != nil {
                object[today] = object.removeValue(forKey: old)
            }
            data = try JSONSerialization.data(withJSONObject: object)
        }
        let file = try decode(EncoderDecoderFile.self, data)
        if let problem = file.config.problem { throw fail(problem) }
        return file
    }

    public func write(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(path, data: try encoder.encode(self) + Data("\n".utf8))
    }
}
