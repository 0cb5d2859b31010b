// WordPiece: BERT's tokenizer exactly as Hugging Face `tokenizers` runs it — special tokens matched
// in the raw text, BertNormalizer, BertPreTokenizer, greedy longest-match-first WordPiece with "##"
// continuations, the WordPiece decoder — and its files: tokenizer.json (read/write) and vocab.txt.
// Tokens are compared as UTF-8 bytes throughout (Swift's String equality is canonical equivalence,
// which would merge tokens that `tokenizers` keeps apart).
import Foundation

/// BERT's text pipeline before the vocabulary: BertNormalizer and BertPreTokenizer of `tokenizers`.
struct BertPipeline {
    var cleanText = true
    var handleChineseChars = true
    var stripAccents = true
    var lowercase = true

    // ASCII classes: bit 0 control (dropped by clean_text), bit 1 whitespace, bit 2 punctuation.
    static let asciiClass: [UInt8] = (0..<128).map { v -> UInt8 in
        var c: UInt8 = 0
        if (v < 0x20 || v == 0x7F) && v != 0x09 && v != 0x0A && v != 0x0D { c |= 1 }
        if v == 0x20 || (0x09...0x0D).contains(v) { c |= 2 }
        if (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v) { c |= 4 }
        return c
    }

    /// clean_text's control characters: categories Cc, Cf and Co, but not "\t", "\n", "\r".
    @inline(__always) static func isControl(_ v: UInt32) -> Bool {
        if v < 0x80 { return asciiClass[Int(v)] & 1 != 0 }
        guard let s = Unicode.Scalar(v) else { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    /// Rust's `char::is_whitespace`: the Unicode White_Space property ("\t", "\n", "\r" included).
    @inline(__always) static func isWhitespace(_ v: UInt32) -> Bool {
        if v < 0x80 { return asciiClass[Int(v)] & 2 != 0 }
        return Unicode.Scalar(v)?.properties.isWhitespace ?? false
    }

    /// BertPreTokenizer's punctuation: ASCII 33–47, 58–64, 91–96, 123–126, and Unicode P*.
    @inline(__always) static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 0x80 { return asciiClass[Int(v)] & 4 != 0 }
        guard let s = Unicode.Scalar(v) else { return false }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK ideograph blocks `tokenizers` surrounds with spaces (its ranges, as written there).
    @inline(__always) static func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// BertNormalizer over valid UTF-8: clean_text (drop U+0000, U+FFFD and controls; whitespace →
    /// " "), spaces around CJK ideographs, strip accents (NFD, then drop nonspacing marks), lowercase,
    /// in that order. Appends the scalar values to `out`.
    func normalize(_ text: UnsafeBufferPointer<UInt8>, into out: inout [UInt32]) {
        let start = out.count
        var nonASCII = false
        var i = 0
        let n = text.count
        while i < n {
            var v = UInt32(text[i])
            if v < 0x80 { i += 1 } else {
                nonASCII = true
                let length = v >= 0xF0 ? 4 : v >= 0xE0 ? 3 : 2
                v &= length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07
                for k in 1..<length { v = v << 6 | UInt32(text[i + k] & 0x3F) }
                i += length
            }
            if cleanText {
                if v == 0 || v == 0xFFFD || BertPipeline.isControl(v) { continue }
                if BertPipeline.isWhitespace(v) { v = 0x20 }
            }
            if handleChineseChars && v >= 0x3400 && BertPipeline.isChinese(v) {
                out.append(0x20); out.append(v); out.append(0x20)
            } else {
                out.append(v)
            }
        }
        guard nonASCII else {
            if lowercase {
                for k in start..<out.count where (0x41...0x5A).contains(out[k]) { out[k] |= 0x20 }
            }
            return
        }
        if stripAccents { BertPipeline.stripAccents(&out, from: start) }
        if lowercase {
            var k = start
            while k < out.count {
                let v = out[k]
                if v < 0x80 {
                    if (0x41...0x5A).contains(v) { out[k] = v | 0x20 }
                    k += 1; continue
                }
                let mapped = Unicode.Scalar(v)!.properties.lowercaseMapping.unicodeScalars.map(\.value)
                if mapped.count == 1 { out[k] = mapped[0]; k += 1 } else {
                    out.replaceSubrange(k ..< k + 1, with: mapped); k += mapped.count
                }
            }
        }
    }

    /// NFD, then drops the nonspacing marks (Mn), over `scalars[from...]`. Canonical decomposition
    /// and reordering never cross an ASCII character, so only the non-ASCII runs are decomposed.
    static func stripAccents(_ scalars: inout [UInt32], from: Int) {
        var result: [UInt32] = []
        result.reserveCapacity(scalars.count - from)
        var k = from
        while k < scalars.count {
            if scalars[k] < 0x80 { result.append(scalars[k]); k += 1; continue }
            var run = String.UnicodeScalarView()
            while k < scalars.count && scalars[k] >= 0x80 { run.append(Unicode.Scalar(scalars[k])!); k += 1 }
            for s in String(run).decomposedStringWithCanonicalMapping.unicodeScalars
            where s.properties.generalCategory != .nonspacingMark {
                result.append(s.value)
            }
        }
        scalars.replaceSubrange(from..., with: result)
    }

    /// BertPreTokenizer over normalized scalars: splits on whitespace (removed) and makes every
    /// punctuation character its own word. Calls `body` with each word's scalars.
    func words(_ scalars: ArraySlice<UInt32>, _ body: (ArraySlice<UInt32>) -> Void) {
        var wordStart = scalars.startIndex
        for k in scalars.indices {
            let v = scalars[k]
            if BertPipeline.isWhitespace(v) {
                if wordStart < k { body(scalars[wordStart ..< k]) }
                wordStart = k + 1
            } else if BertPipeline.isPunctuation(v) {
                if wordStart < k { body(scalars[wordStart ..< k]) }
                body(scalars[k ... k])
                wordStart = k + 1
            }
        }
        if wordStart < scalars.endIndex { body(scalars[wordStart...]) }
    }

    /// Appends the UTF-8 bytes of `scalars` to `out`.
    @inline(__always) static func appendUTF8(_ scalars: ArraySlice<UInt32>, to out: inout [UInt8]) {
        for v in scalars {
            if v < 0x80 { out.append(UInt8(v)) }
            else if v < 0x800 { out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F)) }
            else if v < 0x10000 {
                out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
            } else {
                out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
                out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
            }
        }
    }
}

/// Calls `ordinary(range)` for each stretch of `text` between special tokens and `special(index)`
/// for each token of `specials` found, leftmost first and the longest at one position (as
/// `tokenizers` matches its added tokens).
func splitSpecials(_ text: UnsafeBufferPointer<UInt8>, _ specials: [[UInt8]],
                   ordinary: (Range<Int>) -> Void, special: (Int) -> Void) {
    guard !specials.isEmpty, let base = text.baseAddress, text.count > 0 else {
        if text.count > 0 { ordinary(0 ..< text.count) }
        return
    }
    var position = 0
    while position < text.count {
        var best = text.count, bestIndex = -1
        for (k, s) in specials.enumerated() where !s.isEmpty {
            let found = s.withUnsafeBytes { findBytes(base, from: position, to: text.count, $0.baseAddress!, $0.count) }
            if found >= 0 && (found < best || (found == best && s.count > specials[bestIndex].count)) { best = found; bestIndex = k }
        }
        if best > position { ordinary(position ..< best) }
        if bestIndex < 0 { break }
        special(bestIndex)
        position = best + specials[bestIndex].count
    }
}

/// BERT's WordPiece tokenizer (Hugging Face `tokenizers`' WordPiece model with BertNormalizer,
/// BertPreTokenizer and the WordPiece decoder); `encode` gives the ids without [CLS]/[SEP], as
/// `encode(text, add_special_tokens=False)` does.
public final class WordPiece: Tokenizer {
    /// The special tokens a Loom WordPiece vocabulary starts with, ids 0–4.
    public static let defaultSpecials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    /// A token matched as a whole in the text (`tokenizers`' added_tokens).
    public struct AddedToken {
        public var content: String
        public var id: Int32
        /// false: matched in the raw text before normalisation; true: in the normalized text.
        public var normalized: Bool
        public var special: Bool
        public init(content: String, id: Int32, normalized: Bool = false, special: Bool = true) {
            self.content = content; self.id = id; self.normalized = normalized; self.special = special
        }
    }

    /// Token text by id ("##" continuations included).
    public let tokens: [String]
    public let addedTokens: [AddedToken]
    public let unknownToken: String
    public let continuingSubwordPrefix: String
    /// Longer words (in Unicode scalars) become the unknown token.
    public let maxInputCharsPerWord: Int
    /// BertNormalizer's lowercase.
    public var lowercase: Bool { pipeline.lowercase }
    public var stripAccents: Bool { pipeline.stripAccents }
    public var cleanText: Bool { pipeline.cleanText }
    public var handleChineseChars: Bool { pipeline.handleChineseChars }
    /// The file's normalizer was null (no normalisation at all).
    let normalizes: Bool
    /// The WordPiece decoder's cleanup (" ." → "." and the like); nil: no decoder (tokens joined by spaces).
    public let decoderCleanup: Bool?

    let pipeline: BertPipeline
    let unknownID: Int32
    /// Token bytes → entry; `ids[entry]` is its id.
    let table: ByteKeyTable
    let ids: [Int32]
    let prefixBytes: [UInt8]
    let rawSpecials: [[UInt8]], rawSpecialIDs: [Int32]
    let normalizedSpecials: [[UInt8]], normalizedSpecialIDs: [Int32]

    /// A tokenizer over `tokens` (id = index). `addedTokens` default to the tokens of
    /// `defaultSpecials` present in the vocabulary; the unknown token must be in it.
    public init(tokens: [String], lowercase: Bool = true, stripAccents: Bool? = nil, cleanText: Bool = true,
                handleChineseChars: Bool = true, normalizes: Bool = true, unknownToken: String = "[UNK]",
                continuingSubwordPrefix: String = "##", maxInputCharsPerWord: Int = 100,
                addedTokens: [AddedToken]? = nil, decoderCleanup: Bool? = true, path: String = "(tokenizer)") throws {
        self.tokens = tokens
        self.unknownToken = unknownToken
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.normalizes = normalizes
        self.decoderCleanup = decoderCleanup
        pipeline = normalizes
            ? BertPipeline(cleanText: cleanText, handleChineseChars: handleChineseChars,
                           stripAccents: stripAccents ?? lowercase, lowercase: lowercase)
            : BertPipeline(cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: false)
        let table = ByteKeyTable(capacity: max(16, tokens.count))
        var ids: [Int32] = []
        for (id, token) in tokens.enumerated() {
            var bytes = Array(token.utf8)
            let (entry, inserted) = bytes.withUnsafeMutableBufferPointer { table.findOrInsert($0.baseAddress!, $0.count) }
            guard inserted else {
                throw TokenizerError.unreadable(path: path, reason: "token \(String(reflecting: token)) appears twice in the vocabulary (ids \(ids[entry]) and \(id))")
            }
            ids.append(Int32(id))
        }
        self.table = table
        self.ids = ids
        prefixBytes = Array(continuingSubwordPrefix.utf8)
        func lookup(_ text: String) -> Int32? {
            var bytes = Array(text.utf8)
            guard !bytes.isEmpty else { return nil }
            let e = bytes.withUnsafeMutableBufferPointer { table.find($0.baseAddress!, $0.count) }
            return e >= 0 ? ids[e] : nil
        }
        guard let unk = lookup(unknownToken) else {
            throw TokenizerError.unreadable(path: path, reason: "key 'model.unk_token': \(String(reflecting: unknownToken)) is not in the vocabulary")
        }
        unknownID = unk
        let added = addedTokens ?? WordPiece.defaultSpecials.compactMap { s in lookup(s).map { AddedToken(content: s, id: $0) } }
        for t in added where !(0..<Int32(tokens.count)).contains(t.id) {
            throw TokenizerError.unreadable(path: path, reason: "added token \(String(reflecting: t.content)) has id \(t.id), outside the vocabulary's 0…\(tokens.count - 1)")
        }
        self.addedTokens = added
        let raw = added.filter { !$0.normalized && !$0.content.isEmpty }
        rawSpecials = raw.map { Array($0.content.utf8) }
        rawSpecialIDs = raw.map(\.id)
        // A normalized added token is matched in the normalized text as its own normalized form.
        let normalizedTokens = added.filter { $0.normalized && !$0.content.isEmpty }
        let pipeline = self.pipeline
        normalizedSpecials = normalizedTokens.map { t in
            var scalars: [UInt32] = [], bytes: [UInt8] = []
            var content = t.content
            content.withUTF8 { pipeline.normalize($0, into: &scalars) }
            BertPipeline.appendUTF8(scalars[...], to: &bytes)
            return bytes
        }
        normalizedSpecialIDs = normalizedTokens.map(\.id)
    }

    public var vocabularySize: Int { tokens.count }

    public func specialTokenID(_ token: String) -> Int32? {
        addedTokens.first { Array($0.content.utf8) == Array(token.utf8) }?.id
    }

    /// BERT's vocab.txt: one token per line, in id order.
    public var vocabularyText: String { tokens.map { $0 + "\n" }.joined() }

    /// The id of token bytes, or nil.
    @inline(__always) func id(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32? {
        let e = table.find(p, n)
        return e >= 0 ? ids[e] : nil
    }

    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { encode(utf8: $0) }
    }

    /// The ids of valid UTF-8 text.
    public func encode(utf8 text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 4)
        var scalars: [UInt32] = [], normalizedBytes: [UInt8] = [], word: [UInt8] = []
        splitSpecials(text, rawSpecials, ordinary: { range in
            scalars.removeAll(keepingCapacity: true)
            pipeline.normalize(UnsafeBufferPointer(rebasing: text[range]), into: &scalars)
            if normalizedSpecials.isEmpty {
                encodeWords(scalars[...], word: &word, into: &out)
                return
            }
            normalizedBytes.removeAll(keepingCapacity: true)
            BertPipeline.appendUTF8(scalars[...], to: &normalizedBytes)
            normalizedBytes.withUnsafeBufferPointer { nb in
                splitSpecials(nb, normalizedSpecials, ordinary: { r in
                    var piece: [UInt32] = []
                    for s in String(decoding: nb[r], as: UTF8.self).unicodeScalars { piece.append(s.value) }
                    encodeWords(piece[...], word: &word, into: &out)
                }, special: { out.append(normalizedSpecialIDs[$0]) })
            }
        }, special: { out.append(rawSpecialIDs[$0]) })
        return out
    }

    func encodeWords(_ scalars: ArraySlice<UInt32>, word: inout [UInt8], into out: inout [Int32]) {
        pipeline.words(scalars) { w in
            word.removeAll(keepingCapacity: true)
            BertPipeline.appendUTF8(w, to: &word)
            encodeWord(word, characters: w.count, into: &out)
        }
    }

    /// The WordPiece model on one pre-tokenised word (UTF-8 bytes): at each position the longest
    /// vocabulary token ("##"-prefixed after the first), else the whole word is the unknown token.
    func encodeWord(_ word: [UInt8], characters: Int, into out: inout [Int32]) {
        if characters > maxInputCharsPerWord { out.append(unknownID); return }
        let mark = out.count
        var key = prefixBytes
        let n = word.count
        var start = 0
        while start < n {
            var end = n, found: Int32? = nil
            while start < end {
                if start == 0 {
                    found = word.withUnsafeBufferPointer { id($0.baseAddress!, end) }
                } else {
                    key.removeSubrange(prefixBytes.count...)
                    key.append(contentsOf: word[start ..< end])
                    found = key.withUnsafeBufferPointer { id($0.baseAddress!, $0.count) }
                }
                if found != nil { break }
                end -= 1
                while end > start && word[end] & 0xC0 == 0x80 { end -= 1 }
            }
            guard let token = found else {
                out.removeSubrange(mark...)
                out.append(unknownID)
                return
            }
            out.append(token)
            start = end
        }
    }

    /// The WordPiece decoder: tokens after the first get a space before them unless they carry the
    /// "##" prefix (which is dropped), then each token is cleaned up (" ." → "." …) when the
    /// decoder's cleanup is on. Special tokens are kept as their text; ids outside the vocabulary
    /// are skipped.
    public func decode(_ ids: [Int32]) -> String {
        let pieces = ids.filter { $0 >= 0 && Int($0) < tokens.count }.map { Array(tokens[Int($0)].utf8) }
        guard let cleanup = decoderCleanup else {
            return pieces.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        }
        var out: [UInt8] = []
        for (i, piece) in pieces.enumerated() {
            var token = piece
            if i > 0 {
                if !prefixBytes.isEmpty, token.starts(with: prefixBytes) { token.removeFirst(prefixBytes.count) }
                else { token.insert(0x20, at: 0) }
            }
            if cleanup { token = WordPiece.cleanup(token) }
            out += token
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let cleanupRules: [([UInt8], [UInt8])] = [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
        (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ].map { (Array($0.0.utf8), Array($0.1.utf8)) }

    /// `tokenizers`' decoder cleanup: each replacement in turn, every non-overlapping occurrence
    /// left to right, on bytes.
    static func cleanup(_ text: [UInt8]) -> [UInt8] {
        var text = text
        for (pattern, replacement) in cleanupRules {
            guard text.count >= pattern.count else { continue }
            var out: [UInt8] = [], i = 0, changed = false
            while i < text.count {
                if text[i] == pattern[0], i + pattern.count <= text.count, text[i ..< i + pattern.count].elementsEqual(pattern) {
                    out += replacement; i += pattern.count; changed = true
                } else {
                    out.append(text[i]); i += 1
                }
            }
            if changed { text = out }
        }
        return text
    }
}

// MARK: - Files

extension WordPiece {
    /// A JSON string literal (quotes included) of `text`, byte-exact.
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for s in text.unicodeScalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if s.value < 0x20 { out += String(format: "\\u%04x", s.value) } else { out.unicodeScalars.append(s) }
            }
        }
        return out + "\""
    }

    /// Hugging Face `tokenizer.json`: added_tokens, BertNormalizer, BertPreTokenizer, TemplateProcessing
    /// ([CLS] $A [SEP] / [CLS] $A [SEP] $B:1 [SEP]:1, when both tokens exist), the WordPiece decoder
    /// and the WordPiece model with its vocabulary in id order. Written by hand: a Swift dictionary
    /// would merge canonically equivalent tokens.
    public func serialized() throws -> Data {
        let q = WordPiece.jsonString
        var parts: [String] = []
        parts.append("\"version\":\"1.0\",\"truncation\":null,\"padding\":null")
        let added = addedTokens.map {
            "{\"id\":\($0.id),\"content\":\(q($0.content)),\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":\($0.normalized),\"special\":\($0.special)}"
        }
        parts.append("\"added_tokens\":[" + added.joined(separator: ",") + "]")
        if normalizes {
            parts.append("\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":\(cleanText),\"handle_chinese_chars\":\(handleChineseChars),\"strip_accents\":\(stripAccents),\"lowercase\":\(lowercase)}")
        } else {
            parts.append("\"normalizer\":null")
        }
        parts.append("\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"}")
        if let cls = specialTokenID("[CLS]"), let sep = specialTokenID("[SEP]") {
            func special(_ t: String, _ type: Int) -> String { "{\"SpecialToken\":{\"id\":\(q(t)),\"type_id\":\(type)}}" }
            func sequence(_ s: String, _ type: Int) -> String { "{\"Sequence\":{\"id\":\"\(s)\",\"type_id\":\(type)}}" }
            let single = [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0)]
            let pair = single + [sequence("B", 1), special("[SEP]", 1)]
            let specials = "{\"[CLS]\":{\"id\":\"[CLS]\",\"ids\":[\(cls)],\"tokens\":[\"[CLS]\"]},\"[SEP]\":{\"id\":\"[SEP]\",\"ids\":[\(sep)],\"tokens\":[\"[SEP]\"]}}"
            parts.append("\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[" + single.joined(separator: ",")
                         + "],\"pair\":[" + pair.joined(separator: ",") + "],\"special_tokens\":" + specials + "}")
        } else {
            parts.append("\"post_processor\":null")
        }
        if let cleanup = decoderCleanup {
            parts.append("\"decoder\":{\"type\":\"WordPiece\",\"prefix\":\(q(continuingSubwordPrefix)),\"cleanup\":\(cleanup)}")
        } else {
            parts.append("\"decoder\":null")
        }
        let vocab = tokens.enumerated().map { "\(q($0.element)):\($0.offset)" }.joined(separator: ",")
        parts.append("\"model\":{\"type\":\"WordPiece\",\"unk_token\":\(q(unknownToken)),\"continuing_subword_prefix\":\(q(continuingSubwordPrefix)),\"max_input_chars_per_word\":\(maxInputCharsPerWord),\"vocab\":{" + vocab + "}}")
        return Data(("{" + parts.joined(separator: ",") + "}").utf8)
    }

    /// Reads a Hugging Face `tokenizer.json` with a WordPiece model: Loom's own, or one written by
    /// `tokenizers` / transformers' BertTokenizerFast (bert-base-uncased's layout). The normalizer
    /// must be BertNormalizer (or null), the pre-tokenizer BertPreTokenizer, the decoder WordPiece
    /// (or null); the post-processor is not applied (`encode` adds no [CLS]/[SEP]).
    /// `json`, the file's bytes, lets the vocabulary be read byte-exactly: a Swift dictionary (what
    /// JSONSerialization gives) keeps one of two canonically equivalent tokens, such as "é" and
    /// "e\u{301}", which `tokenizers` keeps apart.
    public convenience init(huggingFace object: [String: Any], path: String, json: Data? = nil) throws {
        func fail(_ key: String, _ reason: String) -> TokenizerError { .unreadable(path: path, reason: "key '\(key)': \(reason)") }
        guard let model = object["model"] as? [String: Any] else { throw fail("model", "missing") }
        guard model["type"] as? String == "WordPiece" else { throw fail("model.type", "is \(model["type"] ?? "missing"); expected WordPiece") }
        guard model["vocab"] is [String: Int] else { throw fail("model.vocab", "missing or not a map of token → id") }
        var vocab: [(String, Int)] = (model["vocab"] as! [String: Int]).map { ($0.key, $0.value) }
        if let json {
            guard let exact = ExactJSON.vocabulary(json) else { throw fail("model.vocab", "cannot be read as a map of token → id") }
            vocab = exact
        }
        var tokens = [String?](repeating: nil, count: vocab.count)
        for (token, id) in vocab {
            guard (0..<vocab.count).contains(id), tokens[id] == nil else {
                throw fail("model.vocab", "ids must be 0…\(vocab.count - 1), each once; \(String(reflecting: token)) has id \(id)")
            }
            tokens[id] = token
        }
        guard let unk = model["unk_token"] as? String else { throw fail("model.unk_token", "missing or not a string") }
        let prefix = model["continuing_subword_prefix"] as? String ?? "##"
        let maxChars = model["max_input_chars_per_word"] as? Int ?? 100

        var lowercase = true, strip: Bool? = nil, clean = true, chinese = true, normalizes = true
        switch object["normalizer"] {
        case nil, is NSNull: normalizes = false
        case let n as [String: Any]:
            guard n["type"] as? String == "BertNormalizer" else {
                throw fail("normalizer.type", "is \(n["type"] ?? "missing"); Loom's WordPiece implements BertNormalizer only")
            }
            lowercase = n["lowercase"] as? Bool ?? true
            strip = n["strip_accents"] as? Bool
            clean = n["clean_text"] as? Bool ?? true
            chinese = n["handle_chinese_chars"] as? Bool ?? true
        default: throw fail("normalizer", "expected an object or null")
        }
        guard let pre = object["pre_tokenizer"] as? [String: Any], pre["type"] as? String == "BertPreTokenizer" else {
            throw fail("pre_tokenizer.type", "is \((object["pre_tokenizer"] as? [String: Any])?["type"] ?? "missing"); Loom's WordPiece implements BertPreTokenizer only")
        }
        var cleanup: Bool? = true
        switch object["decoder"] {
        case nil, is NSNull: cleanup = nil
        case let d as [String: Any]:
            guard d["type"] as? String == "WordPiece" else {
                throw fail("decoder.type", "is \(d["type"] ?? "missing"); Loom's WordPiece implements the WordPiece decoder only")
            }
            if let p = d["prefix"] as? String, p != prefix {
                throw fail("decoder.prefix", "is \(String(reflecting: p)) but the model's continuing_subword_prefix is \(String(reflecting: prefix))")
            }
            cleanup = d["cleanup"] as? Bool ?? true
        default: throw fail("decoder", "expected an object or null")
        }
        var added: [AddedToken] = []
        for (i, t) in ((object["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let id = t["id"] as? Int, let content = t["content"] as? String else {
                throw fail("added_tokens[\(i)]", "needs \"id\" and \"content\"")
            }
            for flag in ["single_word", "lstrip", "rstrip"] where t[flag] as? Bool == true {
                throw fail("added_tokens[\(i)].\(flag)", "true is not supported; Loom matches added tokens exactly where they occur")
            }
            added.append(AddedToken(content: content, id: Int32(id), normalized: t["normalized"] as? Bool ?? false,
                                    special: t["special"] as? Bool ?? true))
        }
        try self.init(tokens: tokens.map { $0! }, lowercase: lowercase, stripAccents: strip, cleanText: clean,
                      handleChineseChars: chinese, normalizes: normalizes, unknownToken: unk,
                      continuingSubwordPrefix: prefix, maxInputCharsPerWord: maxChars, addedTokens: added,
                      decoderCleanup: cleanup, path: path)
    }
}

/// Just enough of a JSON reader to take `model.vocab` out of a tokenizer.json with its keys as
/// written (in file order, none merged): the rest of the file is read with JSONSerialization.
enum ExactJSON {
    indirect enum Value {
        case object([(String, Value)]), array([Value]), string(String), number(String), bool(Bool), null
    }

    /// The (token, id) pairs of `model.vocab`, or nil when the file has none or is not JSON.
    static func vocabulary(_ data: Data) -> [(String, Int)]? {
        let bytes = [UInt8](data)
        var reader = Reader(bytes: bytes)
        guard let root = reader.value(), case let .object(top) = root,
              case let .object(model)? = top.last(where: { $0.0 == "model" })?.1,
              case let .object(vocab)? = model.last(where: { $0.0 == "vocab" })?.1 else { return nil }
        var out: [(String, Int)] = []
        for (token, value) in vocab {
            guard case let .number(text) = value, let id = Int(text) else { return nil }
            out.append((token, id))
        }
        return out
    }

    struct Reader {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func literal(_ word: String, _ v: Value) -> Value? {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i ..< i + w.count]) == w else { return nil }
            i += w.count
            return v
        }

        mutating func value() -> Value? {
            skipSpace()
            guard i < bytes.count else { return nil }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(String, Value)] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                while true {
                    skipSpace()
                    guard let key = string() else { return nil }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    guard let v = value() else { return nil }
                    members.append((key, v))
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                    return nil
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [Value] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                while true {
                    guard let v = value() else { return nil }
                    items.append(v)
                    skipSpace()
                    guard i < bytes.count else { return nil }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                    return nil
                }
            case UInt8(ascii: "\""): return string().map(Value.string)
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default:
                let start = i
                while i < bytes.count, let c = Optional(bytes[i]),
                      (0x30...0x39).contains(c) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                        || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { i += 1 }
                return i > start ? .number(String(decoding: bytes[start ..< i], as: UTF8.self)) : nil
            }
        }

        /// A string literal at `i`, escapes resolved (\uXXXX surrogate pairs joined).
        mutating func string() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; return String(validating: out, as: UTF8.self) }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                guard i + 1 < bytes.count else { return nil }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard var v = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(v) {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        v = 0x10000 + (v - 0xD800) << 10 + (low - 0xDC00)
                    }
                    guard Unicode.Scalar(v) != nil else { return nil }
                    BertPipeline.appendUTF8([v][...], to: &out)
                default: out.append(e)   // \" \\ \/
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i ..< i + 4], as: UTF8.self), radix: 16) else { return nil }
            i += 4
            return v
        }
    }
}
