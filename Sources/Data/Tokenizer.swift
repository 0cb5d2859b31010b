// Tokenizer: the interface every tokenizer offers the trainer and the CLI, and how one is loaded
// back from a file (Loom's own JSON, Hugging Face tokenizer.json, GPT-2 vocab.json + merges.txt).
import Foundation
import Support

/// Maps text to token ids and back.
public protocol Tokenizer {
    var vocabularySize: Int { get }
    /// Token ids of `text`; throws when the text cannot be represented.
    func encode(_ text: String) throws -> [Int32]
    func decode(_ tokens: [Int32]) -> String
    /// Token ids of raw bytes (which need not be valid UTF-8 for byte-level tokenizers).
    func encode(bytes: UnsafeRawBufferPointer) throws -> [Int32]
    /// The bytes `tokens` stand for; `decodeBytes(encode(bytes: b)) == b` for a byte-level tokenizer.
    func decodeBytes(_ tokens: [Int32]) -> [UInt8]
    /// The id of a special token such as `<|endoftext|>`, if the vocabulary has it.
    func specialTokenID(_ token: String) -> Int32?
    /// The JSON file saved with a run (`tokenizer.json`).
    func serialized() throws -> Data
}

extension Tokenizer {
    /// Text tokenizers read bytes as UTF-8; invalid UTF-8 is an error naming the byte offset.
    public func encode(bytes: UnsafeRawBufferPointer) throws -> [Int32] {
        guard let text = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
            var offset = 0
            var it = bytes.makeIterator(), decoder = UTF8()
            loop: while true {
                switch decoder.decode(&it) {
                case let .scalarValue(s): offset += UTF8.width(s)
                case .emptyInput: break loop
                case .error: break loop
                }
            }
            throw TokenizerError.invalidUTF8(offset: offset)
        }
        return try encode(text)
    }
    public func encode(bytes: [UInt8]) throws -> [Int32] {
        try bytes.withUnsafeBytes { try encode(bytes: $0) }
    }
    public func decodeBytes(_ tokens: [Int32]) -> [UInt8] { Array(decode(tokens).utf8) }
    public func specialTokenID(_ token: String) -> Int32? { nil }
}

public enum TokenizerError: Error, CustomStringConvertible {
    case unknownCharacter(Unicode.Scalar, offset: Int)
    case invalidUTF8(offset: Int)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownCharacter(c, offset):
            return "character \(String(reflecting: String(c))) (U+\(String(c.value, radix: 16, uppercase: true))) at offset \(offset) is not in the tokenizer's vocabulary"
        case let .invalidUTF8(offset):
            return "invalid UTF-8 at byte offset \(offset); this tokenizer reads text only (use a byte-level BPE tokenizer for arbitrary bytes)"
        case let .unreadable(path, reason):
            return "\(path): not a tokenizer file Loom can read (\(reason))"
        }
    }
}

public enum TokenizerFile {
    /// Loads whichever tokenizer `path` holds: Loom's character tokenizer (or its Hugging Face
    /// WordLevel form), a Hugging Face `tokenizer.json` with a WordPiece (BERT) or byte-level BPE
    /// model, or GPT-2's `vocab.json` (with `merges.txt` beside it).
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
        if let model = object["model"] as? [String: Any], model["type"] as? String == "WordLevel" {
            return try CharacterTokenizer(huggingFace: object, path: path)
        }
        if let model = object["model"] as? [String: Any], model["type"] as? String == "WordPiece" {
            return try WordPiece(huggingFace: object, path: path, json: data)
        }
        if object["model"] is [String: Any] {
            return try ByteLevelBPE(huggingFace: object, path: path)
        }
        if object["Ġ"] != nil || object["!"] != nil {
            // GPT-2's vocab.json: a flat token → id map; the merges are in merges.txt beside it.
            return try ByteLevelBPE(gpt2VocabPath: path, mergesPath: PathName.beside(path, named: "merges.txt"))
        }
        throw TokenizerError.unreadable(path: path, reason: "unknown kind: expected \"loom_tokenizer\", a Hugging Face \"model\" or a GPT-2 vocab.json")
    }
}
