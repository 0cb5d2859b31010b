// CharacterTokenizer: nanoGPT's character-level tokenizer — the vocabulary is the sorted set of
// Unicode scalars of the corpus.
import Foundation

public struct CharacterTokenizer: Tokenizer {
    /// The vocabulary, sorted by code point; token id = index.
    public let characters: [Unicode.Scalar]
    private let ids: [Unicode.Scalar: Int32]

    public init(characters: [Unicode.Scalar]) {
        self.characters = characters
        var ids: [Unicode.Scalar: Int32] = [:]
        for (i, c) in characters.enumerated() { ids[c] = Int32(i) }
        self.ids = ids
    }

    /// The vocabulary of `corpus`.
    public init(corpus: String) {
        self.init(characters: Set(corpus.unicodeScalars).sorted { $0.value < $1.value })
    }

    init(json: [String: Any], path: String) throws {
        guard let list = json["characters"] as? [String] else {
            throw TokenizerError.unreadable(path: path, reason: "missing \"characters\" list")
        }
        var scalars: [Unicode.Scalar] = []
        for s in list {
            guard s.unicodeScalars.count == 1 else {
                throw TokenizerError.unreadable(path: path, reason: "entry \(String(reflecting: s)) is not one character")
            }
            scalars.append(s.unicodeScalars.first!)
        }
        self.init(characters: scalars)
    }

    /// The pattern of the `tokenizers` Split that makes every character its own piece: the
    /// character vocabulary's Hugging Face form (a WordLevel model; Training writes it).
    public static let huggingFaceSplitPattern = "[\\s\\S]"

    /// Reads that Hugging Face form back: a WordLevel model whose vocabulary is single characters
    /// with ids 0…n−1, after a per-character Split.
    init(huggingFace object: [String: Any], path: String) throws {
        func fail(_ reason: String) -> TokenizerError { .unreadable(path: path, reason: reason) }
        guard let pre = object["pre_tokenizer"] as? [String: Any], pre["type"] as? String == "Split",
              (pre["pattern"] as? [String: Any])?["Regex"] as? String == Self.huggingFaceSplitPattern else {
            throw fail("a WordLevel model is read as a character vocabulary only after a Split on every character (pattern Regex \(Self.huggingFaceSplitPattern))")
        }
        guard let vocab = (object["model"] as? [String: Any])?["vocab"] as? [String: Int] else { throw fail("key 'model.vocab': missing") }
        var scalars = [Unicode.Scalar?](repeating: nil, count: vocab.count)
        for (text, id) in vocab {
            guard text.unicodeScalars.count == 1, (0..<vocab.count).contains(id), scalars[id] == nil else {
                throw fail("key 'model.vocab': entry \(String(reflecting: text)) → \(id) is not one character with a unique id below \(vocab.count)")
            }
            scalars[id] = text.unicodeScalars.first!
        }
        self.init(characters: scalars.map { $0! })
    }

    public var vocabularySize: Int { characters.count }

    public func encode(_ text: String) throws -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for (offset, c) in text.unicodeScalars.enumerated() {
            guard let id = ids[c] else { throw TokenizerError.unknownCharacter(c, offset: offset) }
            out.append(id)
        }
        return out
    }

    public func decode(_ tokens: [Int32]) -> String {
        var s = String.UnicodeScalarView()
        for t in tokens where t >= 0 && Int(t) < characters.count { s.append(characters[Int(t)]) }
        return String(s)
    }

    public func serialized() throws -> Data {
        let object: [String: Any] = ["loom_tokenizer": "character", "characters": characters.map { String($0) }]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
