// ShardIndex: a tokenized corpus directory — index.json (shards, token counts, document
// boundaries, aligned pairs for parallel corpora), the tokenizer.json beside it, and the
// `loom tokenize` pipeline that writes them. It is not the shard file format (TokenShards).
import Foundation
import Kernels

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

/// Encodes files into a shard directory.
public enum CorpusTokenizer {
    public struct Report {
        public var bytes = 0, tokens = 0, documents = 0, shards = 0
        /// Seconds spent encoding (reading, splitting and merging), and in total.
        public var encodeSeconds = 0.0, totalSeconds = 0.0
        /// Rank 0 of several: the merged index's (tokens, documents, shards); the fields above are
        /// this rank's own.
        public var merged: (tokens: Int, documents: Int, shards: Int)?
    }

    /// Reads a whole input file, memory-mapped; missing and empty files are errors.
    static func input(_ path: String) throws -> MappedFile {
        guard FileManager.default.fileExists(atPath: path) else { throw ShardError(path: path, offset: nil, "input file not found") }
        let file = try MappedFile(path: path)
        if file.bytes.count == 0 { throw ShardError(path: path, offset: 0, "the input file is empty; remove it from the list") }
        return file
    }

    /// Which files this process encodes when several are launched together (`mpirun -np W loom
    /// tokenize`): file i belongs to rank i mod W. No messages pass between ranks: each writes its
    /// shards and a partial index; rank 0 waits for the partial indices and writes index.json.
    public struct RankSplit {
        public var rank: Int, size: Int
        /// Identifies the launch, so rank 0 never merges a partial index left by an earlier run.
        public var job: String
        public init(rank: Int, size: Int, job: String) { self.rank = rank; self.size = size; self.job = job }
        public static let single = RankSplit(rank: 0, size: 1, job: "")
        /// From Open MPI's environment (OMPI_COMM_WORLD_RANK / _SIZE, PMIX_NAMESPACE); one rank otherwise.
        public static func fromEnvironment() -> RankSplit {
            let env = ProcessInfo.processInfo.environment
            guard let r = env["OMPI_COMM_WORLD_RANK"].flatMap(Int.init), let w = env["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init),
                  w > 1, (0..<w).contains(r) else { return .single }
            return RankSplit(rank: r, size: w, job: env["PMIX_NAMESPACE"] ?? env["OMPI_MCA_ess_base_jobid"] ?? "")
        }
    }

    /// What one rank wrote: per file, its shards and documents (starts relative to the file).
    struct PartialIndex: Codable {
        struct File: Codable { var index: Int; var shards: [ShardIndex.Entry]; var documents: [ShardIndex.Document]; var tokens: Int }
        var job: String
        var rank: Int
        var files: [File]
    }

    static func partialPath(_ out: String, rank: Int) -> String { out + String(format: "/index.rank-%05d.json", rank) }

    /// Tokenizes each file as one document (further split after each `<|endoftext|>` if the
    /// tokenizer has it) into `shard-NNNNN.bin` shards of `shardTokens` tokens (with several ranks:
    /// `fileFFFFF-NNNNN.bin`, one series per input file).
    public static func tokenize(files: [String], tokenizer: Tokenizer, out: String, shardTokens: Int,
                                threads: Int = 1, ranks: RankSplit = .single, waitSeconds: Double = 3600) throws -> Report {
        let t0 = monotonicNow()
        let inputs = try files.map(input)   // every rank checks every file: the same errors everywhere
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        if ranks.rank == 0 { Temporaries.clearStale(in: out) }   // shards a crashed run left half-written
        var report = Report()
        let eot = tokenizer.specialTokenID("<|endoftext|>")
        let v = tokenizer.vocabularySize
        let single = ShardWriter(directory: out, prefix: "shard", vocabularySize: v, shardTokens: shardTokens)
        var parts: [PartialIndex.File] = []
        for (i, (path, file)) in zip(files, inputs).enumerated() where i % ranks.size == ranks.rank {
            let e0 = monotonicNow()
            let ids = try encode(file.bytes, tokenizer: tokenizer, threads: threads, path: path)
            report.encodeSeconds += monotonicNow() - e0
            report.bytes += file.bytes.count
            var documents: [ShardIndex.Document] = [], start = 0
            for (k, t) in ids.enumerated() where t == eot && k + 1 < ids.count {
                documents.append(.init(source: path, start: start, tokens: k + 1 - start)); start = k + 1
            }
            documents.append(.init(source: path, start: start, tokens: ids.count - start))
            let writer = ranks.size == 1 ? single
                : ShardWriter(directory: out, prefix: String(format: "file%05d", i), vocabularySize: v, shardTokens: shardTokens)
            let before = writer.shards.count, offset = writer.totalTokens
            try writer.append(ids)
            if ranks.size > 1 { try writer.finish() }
            parts.append(.init(index: i, shards: writer.shards[before...].map { .init(file: $0.file, tokens: $0.tokens) },
                               documents: documents.map { .init(source: $0.source, start: $0.start + offset, tokens: $0.tokens) },
                               tokens: ids.count))
        }
        var index = ShardIndex(vocabularySize: v, tokenWidth: ShardFormat.width(vocabularySize: v))
        if ranks.size == 1 {
            try single.finish()
            index.shards = single.shards.map { .init(file: $0.file, tokens: $0.tokens) }
            index.documents = parts.flatMap(\.documents)
        } else {
            let partial = PartialIndex(job: ranks.job, rank: ranks.rank, files: parts)
            try AtomicFile.write(partialPath(out, rank: ranks.rank), data: try JSONEncoder().encode(partial))
            report.tokens = parts.reduce(0) { $0 + $1.tokens }
            report.shards = parts.reduce(0) { $0 + $1.shards.count }
            report.documents = parts.reduce(0) { $0 + $1.documents.count }
            if ranks.rank != 0 { report.totalSeconds = monotonicNow() - t0; return report }
            // Rank 0: wait for every partial index of this launch, then merge in file order.
            var all: [PartialIndex.File] = []
            for r in 0 ..< ranks.size {
                let path = partialPath(out, rank: r), deadline = monotonicNow() + waitSeconds
                while true {
                    if let data = FileManager.default.contents(atPath: path),
                       let p = try? JSONDecoder().decode(PartialIndex.self, from: data), p.job == ranks.job, p.rank == r {
                        all += p.files; break
                    }
                    if monotonicNow() > deadline {
                        throw ShardError(path: path, offset: nil, "rank \(r) of \(ranks.size) did not write its partial index within \(Int(waitSeconds)) s; did it fail? Re-run the whole `mpirun … loom tokenize`")
                    }
                    usleep(50_000)
                }
            }
            var total = 0
            for f in all.sorted(by: { $0.index < $1.index }) {
                index.shards += f.shards
                index.documents += f.documents.map { .init(source: $0.source, start: $0.start + total, tokens: $0.tokens) }
                total += f.tokens
            }
        }
        try AtomicFile.write(out + "/tokenizer.json", data: try tokenizer.serialized())
        try index.write(directory: out)
        let totals = (index.shards.reduce(0) { $0 + $1.tokens }, index.documents.count, index.shards.count)
        if ranks.size > 1 {
            for r in 0 ..< ranks.size { unlink(partialPath(out, rank: r)) }
            report.merged = totals
        } else {
            (report.tokens, report.documents, report.shards) = totals
        }
        report.totalSeconds = monotonicNow() - t0
        return report
    }

    /// Tokenizes aligned line pairs: line i of `source` with line i of `target`. Both files must
    /// have the same number of lines.
    public static func tokenizeParallel(source: String, target: String, tokenizer: Tokenizer, out: String,
                                        shardTokens: Int) throws -> Report {
        let t0 = monotonicNow()
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
        let e0 = monotonicNow()
        for (a, b) in zip(sourceLines, targetLines) {
            try sw.append(try tokenizer.encode(bytes: UnsafeRawBufferPointer(rebasing: s.bytes[a])))
            try tw.append(try tokenizer.encode(bytes: UnsafeRawBufferPointer(rebasing: t.bytes[b])))
            pairs.sourceOffsets.append(sw.totalTokens); pairs.targetOffsets.append(tw.totalTokens)
        }
        report.encodeSeconds = monotonicNow() - e0
        try sw.finish(); try tw.finish()
        try AtomicFile.write(out + "/tokenizer.json", data: try tokenizer.serialized())
        var index = ShardIndex(vocabularySize: v, tokenWidth: ShardFormat.width(vocabularySize: v))
        index.sourceShards = sw.shards.map { .init(file: $0.file, tokens: $0.tokens) }
        index.targetShards = tw.shards.map { .init(file: $0.file, tokens: $0.tokens) }
        index.pairs = pairs
        try index.write(directory: out)
        report.bytes = s.bytes.count + t.bytes.count
        report.tokens = sw.totalTokens + tw.totalTokens; report.documents = pairs.count
        report.shards = sw.shards.count + tw.shards.count
        report.totalSeconds = monotonicNow() - t0
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

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
