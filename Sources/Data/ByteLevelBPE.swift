// ByteLevelBPE: GPT-2's byte-level BPE tokenizer — pre-tokenise (ByteLevel.split), map bytes to
// base tokens, apply merges by rank — and its files: Hugging Face tokenizer.json (read/write) and
// GPT-2 vocab.json + merges.txt (read).
import Foundation

public struct ByteLevelBPE: Tokenizer {
    /// The bytes each token stands for (a special token: its UTF-8 text).
    public let tokenBytes: [[UInt8]]
    /// Merges in rank order: (left, right, merged) token ids.
    public let merges: [(left: Int32, right: Int32, merged: Int32)]
    /// Special tokens (never produced by merges; matched literally in the input).
    public let specials: [(text: String, id: Int32)]
    /// Token id of each byte.
    let byteIDs: [Int32]
    let pairs: PairTable

    /// A tokenizer from its pieces; throws when a byte has no token or a merge is inconsistent.
    public init(tokenBytes: [[UInt8]], merges: [(left: Int32, right: Int32, merged: Int32)],
                specials: [(text: String, id: Int32)], path: String = "(tokenizer)") throws {
        self.tokenBytes = tokenBytes
        self.merges = merges
        self.specials = specials
        let specialIDs = Set(specials.map(\.id))
        var byteIDs = [Int32](repeating: -1, count: 256)
        for (id, bytes) in tokenBytes.enumerated() where bytes.count == 1 && !specialIDs.contains(Int32(id)) {
            if byteIDs[Int(bytes[0])] < 0 { byteIDs[Int(bytes[0])] = Int32(id) }
        }
        if let missing = byteIDs.firstIndex(of: -1) {
            throw TokenizerError.unreadable(path: path, reason: "the vocabulary has no token for byte \(missing) (\(ByteLevel.printable([UInt8(missing)]))); a byte-level BPE needs all 256")
        }
        for (rank, m) in merges.enumerated() {
            let ok = [m.left, m.right, m.merged].allSatisfy { $0 >= 0 && Int($0) < tokenBytes.count }
            guard ok, tokenBytes[Int(m.left)] + tokenBytes[Int(m.right)] == tokenBytes[Int(m.merged)] else {
                throw TokenizerError.unreadable(path: path, reason: "merge \(rank) does not join two tokens into a third of the vocabulary")
            }
        }
        self.byteIDs = byteIDs
        pairs = PairTable(pairs: merges)
    }

    /// The layout BPETrainer produces: ids 0–255 are the bytes, then one token per merge, then
    /// the special tokens.
    public init(mergeBytes: [([UInt8], [UInt8])], specials: [String]) throws {
        var tokenBytes = (0..<256).map { [UInt8($0)] }
        var ids: [[UInt8]: Int32] = [:]
        for (i, b) in tokenBytes.enumerated() { ids[b] = Int32(i) }
        var merges: [(left: Int32, right: Int32, merged: Int32)] = []
        for (rank, (a, b)) in mergeBytes.enumerated() {
            guard let l = ids[a], let r = ids[b] else {
                throw TokenizerError.unreadable(path: "(merges)", reason: "merge \(rank) uses a token not made by an earlier merge")
            }
            let joined = a + b
            let m: Int32
            if let existing = ids[joined] { m = existing } else {
                m = Int32(tokenBytes.count); tokenBytes.append(joined); ids[joined] = m
            }
            merges.append((l, r, m))
        }
        var specialList: [(text: String, id: Int32)] = []
        for s in specials { specialList.append((s, Int32(tokenBytes.count))); tokenBytes.append(Array(s.utf8)) }
        try self.init(tokenBytes: tokenBytes, merges: merges, specials: specialList)
    }

    public var vocabularySize: Int { tokenBytes.count }

    public func specialTokenID(_ token: String) -> Int32? { specials.first { $0.text == token }?.id }

    public func encode(_ text: String) throws -> [Int32] {
        var text = text
        return text.withUTF8 { encode(bytes: UnsafeRawBufferPointer($0)) }
    }

    public func encode(bytes: UnsafeRawBufferPointer) -> [Int32] {
        let encoder = Encoder(self)
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3)
        encoder.encode(bytes, into: &out)
        return out
    }

    public func decodeBytes(_ tokens: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        for t in tokens where t >= 0 && Int(t) < tokenBytes.count { out += tokenBytes[Int(t)] }
        return out
    }

    public func decode(_ tokens: [Int32]) -> String { String(decoding: decodeBytes(tokens), as: UTF8.self) }

    /// Encodes with a cache of word → ids; one per thread (not thread-safe).
    public final class Encoder {
        let bpe: ByteLevelBPE
        private var words = ByteKeyTable(capacity: 1 << 16)
        private var wordStart: [Int] = [], wordCount: [Int32] = []
        private var cachedIDs: [Int32] = []
        private var symbols: [Int32] = []
        private let specialBytes: [[UInt8]]
        /// Words longer than this are merged without being cached.
        private let longestCached = 64
        /// The cache starts afresh after this many distinct words (bounds its memory).
        private let cacheLimit: Int

        public init(_ bpe: ByteLevelBPE, cacheLimit: Int = 1 << 20) {
            self.bpe = bpe
            self.cacheLimit = max(1, cacheLimit)
            specialBytes = bpe.specials.map { Array($0.text.utf8) }
        }

        /// Appends the ids of `bytes` to `out`: special tokens matched literally, the rest
        /// pre-tokenised and merged.
        public func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [Int32]) {
            guard !specialBytes.isEmpty, bytes.count > 0 else { return encodeOrdinary(bytes, into: &out) }
            let p = bytes.baseAddress!
            var position = 0
            while position < bytes.count {
                // The earliest special occurrence (the longest on a tie).
                var best = bytes.count, bestIndex = -1
                for (k, s) in specialBytes.enumerated() where !s.isEmpty {
                    let found = s.withUnsafeBytes { sp -> Int in
                        findBytes(p, from: position, to: bytes.count, sp.baseAddress!, sp.count)
                    }
                    if found >= 0 && (found < best || (found == best && s.count > specialBytes[bestIndex].count)) {
                        best = found; bestIndex = k
                    }
                }
                encodeOrdinary(UnsafeRawBufferPointer(rebasing: bytes[position ..< best]), into: &out)
                if bestIndex < 0 { break }
                out.append(bpe.specials[bestIndex].id)
                position = best + specialBytes[bestIndex].count
            }
        }

        func encodeOrdinary(_ bytes: UnsafeRawBufferPointer, into out: inout [Int32]) {
            guard bytes.count > 0 else { return }
            let p = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            ByteLevel.split(bytes) { start, end in
                let n = end - start
                if n == 1 { out.append(bpe.byteIDs[Int(p[start])]); return }
                if n <= longestCached {
                    let hit = words.find(p + start, n)
                    if hit >= 0 {
                        let s = wordStart[hit], c = Int(wordCount[hit])
                        cachedIDs.withUnsafeBufferPointer { out.append(contentsOf: $0[s ..< s + c]) }
                        return
                    }
                }
                merge(p + start, n)
                if n <= longestCached {
                    if words.count >= cacheLimit {
                        words = ByteKeyTable(capacity: 1 << 16)
                        wordStart.removeAll(keepingCapacity: true); wordCount.removeAll(keepingCapacity: true)
                        cachedIDs.removeAll(keepingCapacity: true)
                    }
                    _ = words.findOrInsert(p + start, n)
                    wordStart.append(cachedIDs.count); wordCount.append(Int32(symbols.count))
                    cachedIDs.append(contentsOf: symbols)
                }
                out.append(contentsOf: symbols)
            }
        }

        /// Leaves the ids of one pre-tokenised word in `symbols`: repeatedly merges every
        /// occurrence (left to right) of the adjacent pair with the lowest rank.
        func merge(_ p: UnsafePointer<UInt8>, _ n: Int) {
            symbols.removeAll(keepingCapacity: true)
            for i in 0..<n { symbols.append(bpe.byteIDs[Int(p[i])]) }
            let pairs = bpe.pairs
            // The merges shrink the word in place; the array is cut to size after the buffer access
            // (changing its length inside withUnsafeMutableBufferPointer is an exclusivity violation).
            let count = symbols.withUnsafeMutableBufferPointer { s -> Int in
                var count = n
                while count > 1 {
                    var bestRank = Int32.max, bestLeft: Int32 = 0, bestRight: Int32 = 0, merged: Int32 = 0
                    for i in 0 ..< count - 1 {
                        if let r = pairs.lookup(s[i], s[i + 1]), r.rank < bestRank {
                            bestRank = r.rank; bestLeft = s[i]; bestRight = s[i + 1]; merged = r.merged
                        }
                    }
                    if bestRank == Int32.max { break }
                    var w = 0, i = 0
                    while i < count {
                        if i + 1 < count && s[i] == bestLeft && s[i + 1] == bestRight {
                            s[w] = merged; i += 2
                        } else {
                            s[w] = s[i]; i += 1
                        }
                        w += 1
                    }
                    count = w
                }
                return count
            }
            symbols.removeLast(n - count)
        }
    }
}

/// The first offset ≥ `from` where `needle` occurs in `haystack[..<to]`, or −1.
func findBytes(_ haystack: UnsafeRawPointer, from: Int, to: Int, _ needle: UnsafeRawPointer, _ n: Int) -> Int {
    let h = haystack.assumingMemoryBound(to: UInt8.self), first = needle.load(as: UInt8.self)
    var i = from
    while i + n <= to {
        guard let hit = memchr(h + i, Int32(first), to - n + 1 - i) else { return -1 }
        i = UnsafeRawPointer(hit) - haystack
        if memcmp(h + i, needle, n) == 0 { return i }
        i += 1
    }
    return -1
}

// MARK: - Files

extension ByteLevelBPE {
    /// Hugging Face `tokenizer.json`: model BPE (vocab, merges as pairs), ByteLevel pre-tokenizer
    /// (add_prefix_space false, use_regex true) and decoder, special tokens as added_tokens.
    public func serialized() throws -> Data {
        var vocab: [String: Int] = [:]
        let specialIDs = Set(specials.map(\.id))
        for (id, bytes) in tokenBytes.enumerated() where !specialIDs.contains(Int32(id)) {
            vocab[ByteLevel.printable(bytes)] = id
        }
        for s in specials { vocab[s.text] = Int(s.id) }
        let mergeList = merges.map { [ByteLevel.printable(tokenBytes[Int($0.left)]), ByteLevel.printable(tokenBytes[Int($0.right)])] }
        let added: [[String: Any]] = specials.map {
            ["id": Int($0.id), "content": $0.text, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        let object: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": NSNull(), "pre_tokenizer": byteLevel, "post_processor": NSNull(), "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": mergeList] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// Reads a Hugging Face `tokenizer.json` holding a byte-level BPE. Merges may be "a b" strings
    /// (tokenizers < 0.20) or ["a", "b"] pairs (newer).
    public init(huggingFace object: [String: Any], path: String) throws {
        func fail(_ key: String, _ reason: String) -> TokenizerError {
            .unreadable(path: path, reason: "key '\(key)': \(reason)")
        }
        guard let model = object["model"] as? [String: Any] else { throw fail("model", "missing") }
        if let type = model["type"] as? String, type != "BPE" {
            throw fail("model.type", "is \(type); Loom reads BPE models only")
        }
        if let pre = object["pre_tokenizer"] as? [String: Any], pre["type"] as? String != "ByteLevel" {
            throw fail("pre_tokenizer.type", "is \(pre["type"] ?? "?"); Loom implements the ByteLevel pre-tokenizer only")
        }
        if let pre = object["pre_tokenizer"] as? [String: Any], pre["add_prefix_space"] as? Bool == true {
            throw fail("pre_tokenizer.add_prefix_space", "true is not supported; set it to false")
        }
        guard let vocab = model["vocab"] as? [String: Int] else { throw fail("model.vocab", "missing or not a map of token → id") }
        guard let rawMerges = model["merges"] as? [Any] else { throw fail("model.merges", "missing or not a list") }
        var merges: [(String, String)] = []
        for (i, m) in rawMerges.enumerated() {
            if let pair = m as? [String], pair.count == 2 { merges.append((pair[0], pair[1])); continue }
            if let line = m as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                if parts.count == 2 { merges.append((String(parts[0]), String(parts[1]))); continue }
            }
            throw fail("model.merges[\(i)]", "expected \"a b\" or [\"a\", \"b\"]")
        }
        var specials: [(String, Int32)] = []
        for (i, t) in ((object["added_tokens"] as? [[String: Any]]) ?? []).enumerated() {
            guard let id = t["id"] as? Int, let content = t["content"] as? String else {
                throw fail("added_tokens[\(i)]", "needs \"id\" and \"content\"")
            }
            specials.append((content, Int32(id)))
        }
        try self.init(vocab: vocab, merges: merges, specials: specials, path: path)
    }

    /// Reads GPT-2's `vocab.json` and `merges.txt` (first line `#version: …`, then "a b" lines).
    public init(gpt2VocabPath: String, mergesPath: String) throws {
        guard let data = FileManager.default.contents(atPath: gpt2VocabPath),
              let vocab = (try? JSONSerialization.jsonObject(with: data)) as? [String: Int] else {
            throw TokenizerError.unreadable(path: gpt2VocabPath, reason: "not a JSON map of token → id")
        }
        guard let text = try? String(contentsOfFile: mergesPath, encoding: .utf8) else {
            throw TokenizerError.unreadable(path: mergesPath, reason: "cannot read merges.txt (GPT-2's vocab.json needs it beside it)")
        }
        var merges: [(String, String)] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("#version") || line.isEmpty { continue }
            let parts = line.split(separator: " ")
            guard parts.count == 2 else {
                throw TokenizerError.unreadable(path: mergesPath, reason: "line \(n + 1): expected two tokens separated by one space")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        let specials = vocab["<|endoftext|>"].map { [("<|endoftext|>", Int32($0))] } ?? []
        try self.init(vocab: vocab, merges: merges, specials: specials, path: gpt2VocabPath)
    }

    init(vocab: [String: Int], merges: [(String, String)], specials: [(String, Int32)], path: String) throws {
        let size = (vocab.values.max() ?? -1) + 1
        let specialByText = Dictionary(specials.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        let size2 = max(size, Int(specials.map(\.1).max() ?? -1) + 1)
        var tokenBytes = [[UInt8]](repeating: [], count: size2)
        for (token, id) in vocab {
            guard id >= 0 else { throw TokenizerError.unreadable(path: path, reason: "token \(String(reflecting: token)) has negative id \(id)") }
            if specialByText[token] != nil { tokenBytes[id] = Array(token.utf8); continue }
            guard let bytes = ByteLevel.bytes(ofPrintable: token) else {
                throw TokenizerError.unreadable(path: path, reason: "token \(String(reflecting: token)) (id \(id)) is not in GPT-2's byte-to-character alphabet")
            }
            tokenBytes[id] = bytes
        }
        for (text, id) in specials { tokenBytes[Int(id)] = Array(text.utf8) }
        var triples: [(left: Int32, right: Int32, merged: Int32)] = []
        for (rank, (a, b)) in merges.enumerated() {
            guard let l = vocab[a], let r = vocab[b], let m = vocab[a + b] else {
                throw TokenizerError.unreadable(path: path, reason: "merge \(rank) (\(a) \(b)): a side or the joined token is not in the vocabulary")
            }
            triples.append((Int32(l), Int32(r), Int32(m)))
        }
        try self.init(tokenBytes: tokenBytes, merges: triples, specials: specials.map { (text: $0.0, id: $0.1) }, path: path)
    }
}

extension TokenizerFile {
    /// The tokenizer file of a Hugging Face model directory: `tokenizer.json`, else GPT-2's
    /// `vocab.json` when `merges.txt` is beside it; nil when it has neither.
    public static func inModelDirectory(_ directory: String) -> String? {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory + "/tokenizer.json") { return directory + "/tokenizer.json" }
        if fm.fileExists(atPath: directory + "/vocab.json"), fm.fileExists(atPath: directory + "/merges.txt") {
            return directory + "/vocab.json"
        }
        return nil
    }
}
