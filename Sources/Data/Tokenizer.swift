// Tokenizer: the interface every tokenizer offers the trainer and the CLI, and how one is loaded
// back from a run directory. It is not an implementation (see CharacterTokenizer).
import Foundation

/// Maps text to token ids and back.
public protocol Tokenizer {
    var vocabularySize: Int { get }
    /// Token ids of `text`; throws when the text cannot be represented.
    func encode(_ text: String) throws -> [Int32]
    func decode(_ tokens: [Int32]) -> String
    /// The JSON file saved with a run (`tokenizer.json`).
    func serialized() throws -> Data
}

public enum TokenizerError: Error, CustomStringConvertible {
    case unknownCharacter(Unicode.Scalar, offset: Int)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownCharacter(c, offset):
            return "character \(String(reflecting: String(c))) (U+\(String(c.value, radix: 16, uppercase: true))) at offset \(offset) is not in the tokenizer's vocabulary"
        case let .unreadable(path, reason):
            return "\(path): not a Loom tokenizer file (\(reason))"
        }
    }
}

public enum TokenizerFile {
    /// Loads whichever tokenizer `path` holds.
    public static func load(_ path: String) throws -> Tokenizer {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TokenizerError.unreadable(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TokenizerError.unreadable(path: path, reason: "not a JSON object")
        }
        if object["loom_tokenizer"] as? String == "character" {
            return try CharacterTokenizer(json: object, path: path)
        }
        throw TokenizerError.unreadable(path: path, reason: "unknown kind")
    }
}
