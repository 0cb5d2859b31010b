// ShardIndex: a tokenized corpus directory — index.json (shards, token counts, document boundaries,
// aligned pairs for parallel corpora), the tokenizer.json beside it, and the `loom tokenize`
// pipeline that writes them.
import Foundation
import Support

/// index.json of a shard directory.
public struct ShardIndex: Codable, Equatable {
    public struct Entry: Codable, Equatable { public var file: String; public var tokens: Int }
    /// A document: `tokens` tokens from `start` (global offset in the concatenated stream).
    public struct Document: Codable, Equatable { public var source: String; public var start: Int; public var tokens: Int }
    /// Aligned pairs: pair i is source tokens `sourceOffsets[i] ..< sourceOffsets[i+1]` and the
    /// same for the target (both lists have pairs + 1 entries, starting at 0).
    public struct Pairs: Codable, Equatable {
        public var count: Int
        public var sourceOffsets: [Int]
        public var targetOffsets: [Int]
        enum CodingKeys: String, CodingKey { case count, sourceOffsets = "source_offsets", targetOffsets = "target_offsets" }
    }

    public var format = "loom-token-shards"
    public var version = 1
    public var vocabularySize: Int
    public var tokenWidth: Int
    /// The tokenizer file, relative to the directory.
    public var tokenizer = "tokenizer.json"
    /// A single stream (monolingual corpora); empty for parallel corpora.
    public var shards: [Entry] = []
    public var documents: [Document] = []
    /// Parallel corpora: the source and target streams and the pair table.
    public var sourceShards: [Entry]?
    public var targetShards: [Entry]?
    public var pairs: Pairs?

    enum CodingKeys: String, CodingKey {
        case format, version, tokenizer, shards, documents, pairs
        case vocabularySize = "vocabulary_size", tokenWidth = "token_width"
        case sourceShards = "source_shards", targetShards = "target_shards"
    }

    public static let fileName = "index.json"

    public static func read(directory: String) throws -> ShardIndex {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ShardError(path: path, offset: nil, FileManager.default.fileExists(atPath: directory)
                             ? "missing; not a shard directory (make one with `loom tokenize --out DIR`)"
                             : "the directory does not exist (make it with `loom tokenize --out \(directory)`)")
        }
        let index: ShardIndex
        do { index = try JSONDecoder().decode(ShardIndex.self, from: data) } catch {
            throw ShardError(path: path, offset: nil, "not a valid shard index (\(error))")
        }
        guard index.format == "loom-token-shards", index.version == 1 else {
            throw ShardError(path: path, offset: nil, "format \(index.format) version \(index.version); expected loom-token-shards version 1")
        }
        return index
    }

    func write(directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(directory + "/" + ShardIndex.fileName, data: try encoder.encode(self))
    }
}

/// An opened shard directory: the tokenizer and the memory-mapped, validated token streams.
public struct ShardCorpus {
    public let directory: String
    public let index: ShardIndex
    public let tokenizer: Tokenizer
    /// The single stream of a monolingual corpus (empty for a parallel one).
    public let tokens: TokenStream

    /// Opens `directory`; `tokenizer` overrides the tokenizer.json inside it (its vocabulary size
    /// must match the shards').
    public init(directory: String, tokenizer: Tokenizer? = nil) throws {
        self.directory = directory
        index = try ShardIndex.read(directory: directory)
        let tok = try tokenizer ?? TokenizerFile.load(directory + "/" + index.tokenizer)
        if tok.vocabularySize != index.vocabularySize {
            throw ShardError(path: directory + "/" + ShardIndex.fileName, offset: nil,
                             "vocabulary_size \(index.vocabularySize) does not match the tokenizer's \(tok.vocabularySize)")
        }
        self.tokenizer = tok
        tokens = try ShardCorpus.open(index.shards, directory: directory, vocabularySize: tok.vocabularySize)
    }

    static func open(_ entries: [ShardIndex.Entry], directory: String, vocabularySize: Int) throws -> TokenStream {
        TokenStream(shards: try entries.map {
            try Shard(path: directory + "/" + $0.file, vocabularySize: vocabularySize, tokens: $0.tokens)
        })
    }
}

/// Aligned source/target token pairs (for encoder-decoder training): pair i → both sides.
public struct ParallelCorpus {
    public let source: TokenStream
    public let target: TokenStream
    public let pairs: ShardIndex.Pairs

    public init(directory: String) throws {
        let corpus = try ShardCorpus(directory: directory)
        let path = directory + "/" + ShardIndex.fileName
        guard let pairs = corpus.index.pairs, let s = corpus.index.sourceShards, let t = corpus.index.targetShards else {
            throw ShardError(path: path, offset: nil, "not a parallel corpus (make one with `loom tokenize --source FILE --target FILE`)")
        }
        let v = corpus.tokenizer.vocabularySize
        source = try ShardCorpus.open(s, directory: directory, vocabularySize: v)
        target = try ShardCorpus.open(t, directory: directory, vocabularySize: v)
        guard pairs.sourceOffsets.count == pairs.count + 1, pairs.targetOffsets.count == pairs.count + 1,
              pairs.sourceOffsets.last == source.count, pairs.targetOffsets.last == target.count else {
            throw ShardError(path: path, offset: nil, "the pair table does not cover the source (\(source.count)) and target (\(target.count)) tokens; re-tokenize")
        }
        self.pairs = pairs
    }

    public var count: Int { pairs.count }

    /// Source and target tokens of pair `i`.
    public func pair(_ i: Int) -> (source: [Int32], target: [Int32]) {
        let s = pairs.sourceOffsets[i] ..< pairs.sourceOffsets[i + 1], t = pairs.targetOffsets[i] ..< pairs.targetOffsets[i + 1]
        return (Array(source.slice(s)), Array(target.slice(t)))
    }
}

// MARK: - The tokenize pipeline

/// Encodes files into a shard directory. The parts one rank does alone live here: check the
/// inputs, encode its files and write their shards, merge every rank's part into the index.
/// Who does what across ranks, and waiting for each other, is Training's `ShardedTokenization`.
public enum CorpusTokenizer {
    public struct Report: Codable {
        public var bytes = 0, tokens = 0, documents = 0, shards = 0
        /// Seconds spent encoding (reading, splitting and merging), and in total.
        public var encodeSeconds = 0.0, totalSeconds = 0.0
        /// Rank 0 of several: the merged index's totals; the fields above are this rank's own.
        public var merged: Totals?
        public init() {}
    }

    /// What an index lists in all.
    public struct Totals: Codable {
        public var tokens: Int, documents: Int, shards: Int
        public init(tokens: Int, documents: Int, shards: Int) { self.tokens = tokens; self.documents = documents; self.shards = shards }
    }

    /// Reads a whole input file, memory-mapped; missing and empty files are errors.
    static func input(_ path: String) throws -> MappedFile {
        guard FileManager.default.fileExists(atPath: path) else { throw ShardError(path: path, offset: nil, "input file not found") }
        let file = try MappedFile(path: path)
        if file.bytes.count == 0 { throw ShardError(path: path, offset: 0, "the input file is empty; remove it from the list") }
        return file
    }

    /// Maps every input file, so that a missing or empty one is reported before anything is
    /// written (every rank checks every file: the same errors everywhere).
    public static func inputs(_ files: [String]) throws -> [MappedFile] { try files.map(input) }

    /// What one rank wrote: per file, its shards and documents (starts relative to the file).
    public struct Part: Codable {
        public struct File: Codable {
            public var index: Int
            public var shards: [ShardIndex.Entry]
            public var documents: [ShardIndex.Document]
            public var tokens: Int
        }
        public var files: [File] = []
        /// Input bytes encoded and seconds spent encoding them.
        public var bytes = 0, encodeSeconds = 0.0

        /// This part's own tokens, documents and shards.
        public var totals: Totals {
            Totals(tokens: files.reduce(0) { $0 + $1.tokens }, documents: files.reduce(0) { $0 + $1.documents.count },
                   shards: files.reduce(0) { $0 + $1.shards.count })
        }
    }

    /// Encodes the files of rank `rank` of `ranks` (file i belongs to rank i mod `ranks`) into
    /// shards in `directory`: one series `shard-NNNNN.bin` across every file for one rank, one
    /// series `fileFFFFF-NNNNN.bin` per input file for several. Each file is one document, further
    /// split after each `<|endoftext|>` if the tokenizer has it. `inputs` are `inputs(files)`.
    public static func encode(files: [String], inputs: [MappedFile], rank: Int = 0, of ranks: Int = 1,
                              tokenizer: Tokenizer, directory: String, shardTokens: Int, threads: Int = 1) throws -> Part {
        let eot = tokenizer.specialTokenID("<|endoftext|>")
        let v = tokenizer.vocabularySize
        let single = ShardWriter(directory: directory, prefix: "shard", vocabularySize: v, shardTokens: shardTokens)
        var part = Part()
        for (i, (path, file)) in zip(files, inputs).enumerated() where i % ranks == rank {
            let e0 = monotonicSeconds()
            let ids = try encode(file.bytes, tokenizer: tokenizer, threads: threads, path: path)
            part.encodeSeconds += monotonicSeconds() - e0
            part.bytes += file.bytes.count
            var documents: [ShardIndex.Document] = [], start = 0
            for (k, t) in ids.enumerated() where t == eot && k + 1 < ids.count {
                documents.append(.init(source: path, start: start, tokens: k + 1 - start)); start = k + 1
            }
            documents.append(.init(source: path, start: start, tokens: ids.count - start))
            let writer = ranks == 1 ? single
                : ShardWriter(directory: directory, prefix: String(format: "file%05d", i), vocabularySize: v, shardTokens: shardTokens)
            let before = writer.shards.count
            try writer.append(ids)
            if ranks > 1 { try writer.finish() }
            part.files.append(.init(index: i, shards: writer.shards[before...].map { .init(file: $0.file, tokens: $0.tokens) },
                                    documents: documents, tokens: ids.count))
        }
        if ranks == 1 {
            // One series: a shard may hold the end of one file and the start of the next, so the
            // series is listed once, with the last file.
            try single.finish()
            let shards = single.shards.map { ShardIndex.Entry(file: $0.file, tokens: $0.tokens) }
            for k in part.files.indices { part.files[k].shards = [] }
            if !part.files.isEmpty { part.files[part.files.count - 1].shards = shards }
        }
        return part
    }

    /// The index of every rank's part, files in input order (document starts made global).
    public static func index(merging parts: [Part], tokenizer: Tokenizer) -> ShardIndex {
        let v = tokenizer.vocabularySize
        var index = ShardIndex(vocabularySize: v, tokenWidth: ShardFormat.width(vocabularySize: v))
        var total = 0
        for f in parts.flatMap(\.files).sorted(by: { $0.index < $1.index }) {
            index.shards += f.shards
            index.documents += f.documents.map { .init(source: $0.source, start: $0.start + total, tokens: $0.tokens) }
            total += f.tokens
        }
        return index
    }

    /// Writes tokenizer.json and then index.json into `directory` (the index last: a directory
    /// with an index is complete).
    public static func write(_ index: ShardIndex, tokenizer: Tokenizer, directory: String) throws {
        try AtomicFile.write(directory + "/tokenizer.json", data: try tokenizer.serialized())
        try index.write(directory: directory)
    }

    /// One process: tokenizes `files` into `out` (see `encode`) and writes the index.
    public static func tokenize(files: [String], tokenizer: Tokenizer, out: String, shardTokens: Int,
                                threads: Int = 1) throws -> Report {
        let t0 = monotonicSeconds()
        let inputs = try inputs(files)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        Temporaries.clearStale(in: out)   // shards a crashed run left half-written
        let part = try encode(files: files, inputs: inputs, tokenizer: tokenizer, directory: out,
                              shardTokens: shardTokens, threads: threads)
        try write(index(merging: [part], tokenizer: tokenizer), tokenizer: tokenizer, directory: out)
        return report(part, seconds: monotonicSeconds() - t0)
    }

    /// A rank's report of its part.
    public static func report(_ part: Part, seconds: Double) -> Report {
        var report = Report()
        let totals = part.totals
        (report.tokens, report.documents, report.shards) = (totals.tokens, totals.documents, totals.shards)
        report.bytes = part.bytes
        report.encodeSeconds = part.encodeSeconds
        report.totalSeconds = seconds
        return report
    }

    /// Tokenizes aligned line pairs: line i of `source` with line i of `target`. Both files must
    /// have the same number of lines.
    public static func tokenizeParallel(source: String, target: String, tokenizer: Tokenizer, out: String,
                                        shardTokens: Int) throws -> Report {
        let t0 = monotonicSeconds()
        let s = try input(source), t = try input(target)
        let sourceLines = lines(s.bytes), targetLines = lines(t.bytes)
        guard sourceLines.count == targetLines.count else {
            throw ShardError(path: source, offset: nil, "has \(sourceLines.count) lines but \(target) has \(targetLines.count); a parallel corpus needs one target line per source line")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        Temporaries.clearStale(in: out)
        let v = tokenizer.vocabularySize
        let sw = ShardWriter(directory: out, prefix: "source", vocabularySize: v, shardTokens: shardTokens)
        let tw = ShardWriter(directory: out, prefix: "target", vocabularySize: v, shardTokens: shardTokens)
        var pairs = ShardIndex.Pairs(count: sourceLines.count, sourceOffsets: [0], targetOffsets: [0])
        var report = Report()
        let e0 = monotonicSeconds()
        for (a, b) in zip(sourceLines, targetLines) {
            try sw.append(try tokenizer.encode(bytes: UnsafeRawBufferPointer(rebasing: s.bytes[a])))
            try tw.append(try tokenizer.encode(bytes: UnsafeRawBufferPointer(rebasing: t.bytes[b])))
            pairs.sourceOffsets.append(sw.totalTokens); pairs.targetOffsets.append(tw.totalTokens)
        }
        report.encodeSeconds = monotonicSeconds() - e0
        try sw.finish(); try tw.finish()
        var index = ShardIndex(vocabularySize: v, tokenWidth: ShardFormat.width(vocabularySize: v))
        index.sourceShards = sw.shards.map { .init(file: $0.file, tokens: $0.tokens) }
        index.targetShards = tw.shards.map { .init(file: $0.file, tokens: $0.tokens) }
        index.pairs = pairs
        try write(index, tokenizer: tokenizer, directory: out)
        report.bytes = s.bytes.count + t.bytes.count
        report.tokens = sw.totalTokens + tw.totalTokens; report.documents = pairs.count
        report.shards = sw.shards.count + tw.shards.count
        report.totalSeconds = monotonicSeconds() - t0
        return report
    }

    /// Byte ranges of the lines (without their "\n"; a final line without one counts).
    static func lines(_ b: UnsafeRawBufferPointer) -> [Range<Int>] {
        var out: [Range<Int>] = [], start = 0
        for i in 0..<b.count where b[i] == 0x0A { out.append(start..<i); start = i + 1 }
        if start < b.count { out.append(start..<b.count) }
        return out
    }

    /// Encodes `bytes`; a byte-level BPE splits the text into chunks at piece boundaries and
    /// encodes them on `threads` threads (same ids as one pass).
    public static func encode(_ bytes: UnsafeRawBufferPointer, tokenizer: Tokenizer, threads: Int, path: String) throws -> [Int32] {
        guard let bpe = tokenizer as? ByteLevelBPE else {
            do { return try tokenizer.encode(bytes: bytes) } catch { throw ShardError(path: path, offset: nil, "\(error)") }
        }
        // A special token holding "\n" could straddle a chunk start: encode such text in one piece.
        let splittable = threads > 1 && !bpe.specials.contains { $0.text.utf8.contains(0x0A) }
        let bounds = splittable ? chunkBounds(bytes, target: max(1 << 16, bytes.count / (threads * 8))) : [0, bytes.count]
        let results = UnsafeMutablePointer<[Int32]>.allocate(capacity: bounds.count - 1)
        results.initialize(repeating: [], count: bounds.count - 1)
        defer { results.deinitialize(count: bounds.count - 1); results.deallocate() }
        let loop = EncodeChunks(bpe: bpe, bytes: bytes, bounds: bounds, results: results)
        if threads > 1 {
            let pool = ThreadPool(threads: threads)
            pool.parallelFor(bounds.count - 1, loop)
        } else {
            loop.run(0 ..< bounds.count - 1)
        }
        var out: [Int32] = []
        out.reserveCapacity((0 ..< bounds.count - 1).reduce(0) { $0 + results[$1].count })
        for i in 0 ..< bounds.count - 1 { out += results[i] }
        return out
    }

    /// Chunk starts: positions k where bytes[k−2] is a non-space ASCII byte, bytes[k−1] is "\n"
    /// and bytes[k] an ASCII letter. The pattern cuts there whether or not the text is split.
    public static func chunkBounds(_ b: UnsafeRawBufferPointer, target: Int) -> [Int] {
        var bounds = [0]
        var k = target
        while k < b.count {
            var found = -1
            var j = k
            while j < b.count {
                let c = b[j]
                if b[j - 1] == 0x0A, j >= 2, b[j - 2] < 0x80, !(b[j - 2] == 0x20 || (0x09...0x0D).contains(b[j - 2])),
                   (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) { found = j; break }
                j += 1
            }
            if found < 0 { break }
            bounds.append(found)
            k = found + target
        }
        bounds.append(b.count)
        return bounds
    }

    struct EncodeChunks: ParallelLoop {
        let bpe: ByteLevelBPE
        let bytes: UnsafeRawBufferPointer
        let bounds: [Int]
        let results: UnsafeMutablePointer<[Int32]>
        func run(_ range: Range<Int>) {
            let encoder = ByteLevelBPE.Encoder(bpe)
            for i in range {
                var out: [Int32] = []
                out.reserveCapacity((bounds[i + 1] - bounds[i]) / 3)
                encoder.encode(UnsafeRawBufferPointer(rebasing: bytes[bounds[i] ..< bounds[i + 1]]), into: &out)
                results[i] = out
            }
        }
    }
}
