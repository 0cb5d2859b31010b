// WordPieceTrainer: learns a WordPiece vocabulary from text — counts BERT-pre-tokenised words once,
// then repeatedly merges the most frequent adjacent pair (as `tokenizers`' WordPieceTrainer) or,
// optionally, the pair with the highest likelihood score count(ab) / (count(a)·count(b)), updating counts only in
// the words that hold the pair and re-scoring only the pairs whose counts changed.
import Foundation

public struct WordPieceTrainingError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public struct WordPieceTrainer {
    /// What training made: the tokenizer, and how its vocabulary came about.
    public struct Trained {
        public let tokenizer: WordPiece
        /// Characters (word-initial and "##" forms) after the special tokens.
        public let alphabetSize: Int
        /// Merges that added a token.
        public let merges: Int
    }

    /// How a pair is chosen for merging.
    public enum Score: String, CaseIterable, Sendable {
        /// WordPiece's likelihood score count(ab) / (count(a)·count(b)) (as the Hugging Face course
        /// describes it): favours pairs whose parts are rare on their own, so rare whole words
        /// become tokens before frequent ones.
        case likelihood
        /// count(ab), as BPE and `tokenizers`' WordPieceTrainer merge: frequent words first,
        /// fewer tokens per text (the default: 4.2 bytes a token on the English corpora, against
        /// 2.0 with the likelihood score).
        case frequency
    }

    public let lowercase: Bool
    public let stripAccents: Bool
    public let score: Score
    /// Longer words are not learnt from: the tokenizer encodes them as [UNK] whatever the vocabulary.
    public let maxInputCharsPerWord = 100
    let pipeline: BertPipeline
    /// Unique pre-tokenised words (UTF-8) and their counts.
    private let table = ByteKeyTable(capacity: 1 << 16)
    private var counts: [Int] = []
    public private(set) var bytesRead = 0
    private let specials = WordPiece.defaultSpecials.map { Array($0.utf8) }

    /// `stripAccents` follows `lowercase` when nil (BERT's uncased and cased settings).
    public init(lowercase: Bool = true, stripAccents: Bool? = nil, score: Score = .frequency) {
        self.lowercase = lowercase
        self.score = score
        self.stripAccents = stripAccents ?? lowercase
        pipeline = BertPipeline(cleanText: true, handleChineseChars: true, stripAccents: self.stripAccents, lowercase: lowercase)
    }

    public var uniqueWords: Int { counts.count }

    /// Counts the words of UTF-8 text; the special tokens written in it are cut out first, as the
    /// tokenizer matches them before normalising.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) throws {
        guard let text = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
            var offset = 0
            var it = bytes.makeIterator(), decoder = UTF8()
            loop: while true {
                switch decoder.decode(&it) {
                case let .scalarValue(s): offset += UTF8.width(s)
                case .emptyInput, .error: break loop
                }
            }
            throw TokenizerError.invalidUTF8(offset: offset)
        }
        bytesRead += bytes.count
        var copy = text
        copy.withUTF8 { utf8 in
            var scalars: [UInt32] = [], word: [UInt8] = []
            let table = self.table, pipeline = self.pipeline
            splitSpecials(utf8, specials, ordinary: { range in
                scalars.removeAll(keepingCapacity: true)
                pipeline.normalize(UnsafeBufferPointer(rebasing: utf8[range]), into: &scalars)
                pipeline.words(scalars[...]) { w in
                    word.removeAll(keepingCapacity: true)
                    BertPipeline.appendUTF8(w, to: &word)
                    let (i, inserted) = word.withUnsafeBufferPointer { table.findOrInsert($0.baseAddress!, $0.count) }
                    if inserted { counts.append(1) } else { counts[i] += 1 }
                }
            }, special: { _ in })
        }
    }

    public mutating func add(_ text: String) throws {
        var text = text
        try text.withUTF8 { try add(UnsafeRawBufferPointer($0)) }
    }

    /// Learns a vocabulary of `vocabularySize` tokens: [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0–4),
    /// then the characters seen, sorted by code point (each word-initial, and as a "##"
    /// continuation unless the pre-tokenizer always isolates it: punctuation and CJK ideographs),
    /// then one token per merge, best `score` first. Equal scores go to the pair whose left token,
    /// then right token, comes first in byte order. Stops early when no pair is left.
    public func train(vocabularySize: Int) throws -> Trained {
        let prefix = Array("##".utf8)
        // The alphabet.
        var wordScalars: [[UInt32]] = []
        var wordCounts: [Int] = []
        var seen = Set<UInt32>()
        for i in 0..<counts.count {
            let scalars = Array(String(decoding: table.key(i), as: UTF8.self).unicodeScalars.map(\.value))
            guard scalars.count <= maxInputCharsPerWord else { continue }
            wordScalars.append(scalars); wordCounts.append(counts[i])
            seen.formUnion(scalars)
        }
        var alphabet: [[UInt8]] = []
        for v in seen.sorted() {
            var bytes: [UInt8] = []
            BertPipeline.appendUTF8([v][...], to: &bytes)
            alphabet.append(bytes)
            if !BertPipeline.isPunctuation(v) && !BertPipeline.isChinese(v) { alphabet.append(prefix + bytes) }
        }
        alphabet.sort { $0.lexicographicallyPrecedes($1) }
        guard vocabularySize >= specials.count + alphabet.count else {
            throw WordPieceTrainingError(message: "a vocabulary size of \(vocabularySize) is too small: the text needs \(specials.count) special tokens + \(alphabet.count) characters (word-initial and ## forms) = \(specials.count + alphabet.count) at least")
        }
        var tokenBytes = specials + alphabet
        let tokenTable = ByteKeyTable(capacity: max(16, vocabularySize))
        for t in tokenBytes { _ = t.withUnsafeBufferPointer { tokenTable.findOrInsert($0.baseAddress!, $0.count) } }
        func lookup(_ bytes: [UInt8]) -> Int32 {
            Int32(bytes.withUnsafeBufferPointer { tokenTable.find($0.baseAddress!, $0.count) })
        }
        var singleIDs: [UInt32: (initial: Int32, continuation: Int32)] = [:]
        for v in seen {
            var bytes: [UInt8] = []
            BertPipeline.appendUTF8([v][...], to: &bytes)
            singleIDs[v] = (lookup(bytes), lookup(prefix + bytes))
        }
        // Words as token ids, token and pair counts.
        var words: [[Int32]] = wordScalars.map { scalars in
            scalars.enumerated().map { k, v in k == 0 ? singleIDs[v]!.initial : singleIDs[v]!.continuation }
        }
        wordScalars = []
        var tokenCount = [Int](repeating: 0, count: tokenBytes.count)
        var pairCount: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        var pairsOf = [Set<UInt64>](repeating: [], count: tokenBytes.count)
        for (w, symbols) in words.enumerated() {
            let c = wordCounts[w]
            for s in symbols { tokenCount[Int(s)] += c }
            guard symbols.count > 1 else { continue }
            for j in 0 ..< symbols.count - 1 {
                let k = PairTable.key(symbols[j], symbols[j + 1])
                pairCount[k, default: 0] += c
                pairWords[k, default: []].append(Int32(w))
            }
        }
        for k in pairCount.keys { pairsOf[Int(left(k))].insert(k); pairsOf[Int(right(k))].insert(k) }

        let likelihood = self.score == .likelihood
        func score(_ k: UInt64, _ c: Int) -> Double {
            likelihood ? Double(c) / (Double(tokenCount[Int(left(k))]) * Double(tokenCount[Int(right(k))])) : Double(c)
        }
        var heap = ScoreHeap()
        heap.reserve(pairCount.count)
        for (k, c) in pairCount { heap.items.append(.init(score: score(k, c), pair: k)) }
        heap.heapify(tokenBytes)

        let alphabetSize = alphabet.count
        var stamp = [Int32](repeating: -1, count: words.count)
        var step: Int32 = 0
        var delta: [UInt64: Int] = [:]
        var rescore = Set<UInt64>()
        while tokenBytes.count < vocabularySize, let top = heap.pop(tokenBytes) {
            guard let c = pairCount[top.pair], score(top.pair, c) == top.score else { continue }
            let a = left(top.pair), b = right(top.pair)
            let joined = tokenBytes[Int(a)] + tokenBytes[Int(b)].dropFirst(prefix.count)
            let (entry, inserted) = joined.withUnsafeBufferPointer { tokenTable.findOrInsert($0.baseAddress!, $0.count) }
            let new = Int32(entry)
            if inserted { tokenBytes.append(joined); tokenCount.append(0); pairsOf.append([]) }
            step += 1
            delta.removeAll(keepingCapacity: true)
            for w32 in pairWords[top.pair] ?? [] {
                let w = Int(w32)
                if stamp[w] == step { continue }
                stamp[w] = step
                let old = words[w], wc = wordCounts[w]
                var merged: [Int32] = []
                merged.reserveCapacity(old.count)
                var i = 0, occurrences = 0
                while i < old.count {
                    if i + 1 < old.count && old[i] == a && old[i + 1] == b { merged.append(new); i += 2; occurrences += 1 }
                    else { merged.append(old[i]); i += 1 }
                }
                guard occurrences > 0 else { continue }
                for j in 0 ..< old.count - 1 { delta[PairTable.key(old[j], old[j + 1]), default: 0] -= wc }
                for j in 0 ..< max(0, merged.count - 1) {
                    let k = PairTable.key(merged[j], merged[j + 1])
                    delta[k, default: 0] += wc
                    if merged[j] == new || merged[j + 1] == new { pairWords[k, default: []].append(w32) }
                }
                tokenCount[Int(a)] -= occurrences * wc
                tokenCount[Int(b)] -= occurrences * wc
                tokenCount[Int(new)] += occurrences * wc
                words[w] = merged
            }
            rescore.removeAll(keepingCapacity: true)
            for (k, d) in delta where d != 0 {
                let before = pairCount[k] ?? 0, after = before + d
                if after == 0 {
                    pairCount[k] = nil; pairWords[k] = nil
                    pairsOf[Int(left(k))].remove(k); pairsOf[Int(right(k))].remove(k)
                } else {
                    if before == 0 { pairsOf[Int(left(k))].insert(k); pairsOf[Int(right(k))].insert(k) }
                    pairCount[k] = after
                    rescore.insert(k)
                }
            }
            // Every pair of a token whose count changed has a new score.
            if likelihood { for t in Set([a, b, new]) { rescore.formUnion(pairsOf[Int(t)]) } }
            for k in rescore { if let c = pairCount[k] { heap.push(.init(score: score(k, c), pair: k), tokenBytes) } }
            if heap.items.count > 4 * pairCount.count + (1 << 16) {
                heap.items.removeAll(keepingCapacity: true)
                for (k, c) in pairCount { heap.items.append(.init(score: score(k, c), pair: k)) }
                heap.heapify(tokenBytes)
            }
        }
        let tokens = tokenBytes.map { String(decoding: $0, as: UTF8.self) }
        let tokenizer = try WordPiece(tokens: tokens, lowercase: lowercase, stripAccents: stripAccents)
        return Trained(tokenizer: tokenizer, alphabetSize: alphabetSize, merges: tokens.count - specials.count - alphabetSize)
    }
}

@inline(__always) private func left(_ k: UInt64) -> Int32 { Int32(truncatingIfNeeded: k >> 32) }
@inline(__always) private func right(_ k: UInt64) -> Int32 { Int32(truncatingIfNeeded: k) }

/// Max-heap of (score, pair); equal scores pop the pair whose left, then right, token text comes
/// first in byte order.
struct ScoreHeap {
    struct Entry { var score: Double; var pair: UInt64 }
    var items: [Entry] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    @inline(__always) static func above(_ x: Entry, _ y: Entry, _ text: [[UInt8]]) -> Bool {
        if x.score != y.score { return x.score > y.score }
        let xa = left(x.pair), ya = left(y.pair)
        if xa != ya { return text[Int(xa)].lexicographicallyPrecedes(text[Int(ya)]) }
        let xb = right(x.pair), yb = right(y.pair)
        return xb != yb && text[Int(xb)].lexicographicallyPrecedes(text[Int(yb)])
    }

    mutating func heapify(_ text: [[UInt8]]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count / 2 - 1, through: 0, by: -1) { siftDown(i, text) }
    }

    mutating func push(_ e: Entry, _ text: [[UInt8]]) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard ScoreHeap.above(items[i], items[parent], text) else { break }
            items.swapAt(i, parent); i = parent
        }
    }

    private mutating func siftDown(_ start: Int, _ text: [[UInt8]]) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < items.count && ScoreHeap.above(items[l], items[best], text) { best = l }
            if r < items.count && ScoreHeap.above(items[r], items[best], text) { best = r }
            if best == i { return }
            items.swapAt(i, best); i = best
        }
    }

    mutating func pop(_ text: [[UInt8]]) -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty { items[0] = last; siftDown(0, text) }
        return top
    }
}
