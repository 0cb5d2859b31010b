// Sharded tokenization on ranks as threads: two ranks write the files one rank's parts would
// (byte for byte), a rank that fails makes every rank fail with nothing left behind, the parallel
// corpus is encoded once, and publishing into an existing directory replaces its index.
import Testing
import Foundation
import Data
import Distributed
import Training
import TestSupport

@Suite struct ShardedTokenizationTests {
    static func bpe() throws -> ByteLevelBPE {
        var t = BPETrainer()
        t.add(Array(String(repeating: "the quick brown fox jumps over the lazy dog, we're 12 ünï\n", count: 20).utf8))
        return try t.train(vocabularySize: 300, specials: ["<|endoftext|>"])
    }

    static let texts = ["first file<|endoftext|>second doc", "third file, plain", "fourth we're", "fifth 12 ünï", "sixth"]

    static func files(in dir: String, _ texts: [String]) throws -> [String] {
        let files = texts.indices.map { dir + "/f\($0).txt" }
        for (f, t) in zip(files, texts) { try t.write(toFile: f, atomically: true, encoding: .utf8) }
        return files
    }

    /// Every file of a directory and its bytes.
    static func contents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    /// Names in `dir` that start with a dot: staging directories and temporaries.
    static func hidden(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
    }

    @Test func twoRanksWriteWhatTheirPartsWouldByteForByte() throws {
        let bpe = try Self.bpe()
        let dir = try scratch()
        let files = try Self.files(in: dir, Self.texts)
        let reports = ThreadRanks.run(2) { job in
            try ShardedTokenization.tokenize(files: files, tokenizer: bpe, out: dir + "/two", shardTokens: 3, threads: 1,
                                             communicator: job)
        }
        // The same parts encoded and merged by one process, as Data's pieces do it.
        try FileManager.default.createDirectory(atPath: dir + "/parts", withIntermediateDirectories: true)
        let inputs = try CorpusTokenizer.inputs(files)
        let parts = try (0..<2).map {
            try CorpusTokenizer.encode(files: files, inputs: inputs, rank: $0, of: 2, tokenizer: bpe, directory: dir + "/parts", shardTokens: 3)
        }
        try CorpusTokenizer.write(CorpusTokenizer.index(merging: parts, tokenizer: bpe), tokenizer: bpe, directory: dir + "/parts")
        let two = try Self.contents(dir + "/two")
        let byParts = try Self.contents(dir + "/parts")
        #expect(two == byParts)
        #expect(two.keys.filter { $0.hasSuffix(".bin") }.allSatisfy { $0.hasPrefix("file0000") })
        // One rank: one shard series, the same tokens and documents.
        _ = try ShardedTokenization.tokenize(files: files, tokenizer: bpe, out: dir + "/one", shardTokens: 3, threads: 1,
                                             communicator: SingleProcessCommunicator())
        let one = try ShardCorpus(directory: dir + "/one"), merged = try ShardCorpus(directory: dir + "/two")
        #expect(Array(one.tokens) == Array(merged.tokens) && one.index.documents == merged.index.documents)
        #expect(one.index.shards.allSatisfy { $0.file.hasPrefix("shard-") })
        // Each rank reports its own files; rank 0 also the merged index.
        let r0 = try reports[0].get(), r1 = try reports[1].get()
        #expect(r0.tokens + r1.tokens == one.tokens.count && r0.documents + r1.documents == one.index.documents.count)
        #expect(r0.merged?.tokens == one.tokens.count && r1.merged == nil)
        #expect(try Self.hidden(dir).isEmpty, "no staging directory left")
    }

    @Test func aRankThatFailsFailsEveryRankAndNothingIsWritten() throws {
        let dir = try scratch()
        // File 1 (rank 1's) holds a character the tokenizer does not know.
        let files = try Self.files(in: dir, ["abc", "abx", "cab"])
        let tokenizer = CharacterTokenizer(corpus: "abc")
        let results = ThreadRanks.run(2) { job in
            try ShardedTokenization.tokenize(files: files, tokenizer: tokenizer, out: dir + "/out", shardTokens: 2, threads: 1,
                                             communicator: job)
        }
        for (rank, result) in results.enumerated() {
            #expect(throws: TokenizationFailure.self, "rank \(rank)") { try result.get() }
            guard case let .failure(error as TokenizationFailure) = result else { continue }
            #expect(error.failures.map(\.rank) == [1], "only rank 1 failed")
            #expect(error.description.contains("rank 1 of 2") && error.description.contains(files[1]), "\(error)")
            #expect(error.description.contains("encoding their files"))
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"), "no output directory")
        #expect(try Self.hidden(dir).isEmpty, "the staging directory is removed")
    }

    @Test func aMissingInputFailsEveryRankBeforeAnythingIsWritten() throws {
        let bpe = try Self.bpe()
        let dir = try scratch()
        let files = try Self.files(in: dir, ["one", "two"]) + [dir + "/gone.txt"]
        let results = ThreadRanks.run(2) { job in
            try ShardedTokenization.tokenize(files: files, tokenizer: bpe, out: dir + "/out", shardTokens: 2, threads: 1,
                                             communicator: job)
        }
        for result in results {
            guard case let .failure(error as TokenizationFailure) = result else { Issue.record("expected a failure: \(result)"); continue }
            #expect(error.failures.map(\.rank) == [0, 1] && error.description.contains("gone.txt"))
        }
        let hidden = try Self.hidden(dir)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out") && hidden.isEmpty)
        // One process: the error itself, as CorpusTokenizer reports it.
        #expect { try ShardedTokenization.tokenize(files: files, tokenizer: bpe, out: dir + "/out", shardTokens: 2, threads: 1,
                                                   communicator: SingleProcessCommunicator()) } throws: {
            $0 is ShardError && "\($0)".contains("gone.txt") && "\($0)".contains("not found")
        }
    }

    @Test func theParallelCorpusIsEncodedOnceAndEveryRankReportsIt() throws {
        let bpe = try Self.bpe()
        let dir = try scratch()
        try "a small dog\nwe're here\nünï 12\n".write(toFile: dir + "/s.txt", atomically: true, encoding: .utf8)
        try "ein kleiner Hund\nwir sind hier\nx\n".write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
        let reports = ThreadRanks.run(2) { job in
            try ShardedTokenization.tokenizeParallel(source: dir + "/s.txt", target: dir + "/t.txt", tokenizer: bpe,
                                                     out: dir + "/two", shardTokens: 5, communicator: job)
        }
        _ = try CorpusTokenizer.tokenizeParallel(source: dir + "/s.txt", target: dir + "/t.txt", tokenizer: bpe,
                                                 out: dir + "/one", shardTokens: 5)
        let two = try Self.contents(dir + "/two"), one = try Self.contents(dir + "/one")
        #expect(two == one)
        let r0 = try reports[0].get(), r1 = try reports[1].get()
        #expect(r0.documents == 3 && r1.documents == 3 && r0.tokens == r1.tokens && r0.tokens > 0)
        #expect(try Self.hidden(dir).isEmpty)
    }

    @Test func publishingIntoAnExistingDirectoryReplacesItsIndex() throws {
        let bpe = try Self.bpe()
        let dir = try scratch()
        let files = try Self.files(in: dir, Self.texts)
        _ = ThreadRanks.run(2) { job in
            try ShardedTokenization.tokenize(files: Array(files.prefix(2)), tokenizer: bpe, out: dir + "/out", shardTokens: 3,
                                             threads: 1, communicator: job)
        }
        let results = ThreadRanks.run(2) { job in
            try ShardedTokenization.tokenize(files: files, tokenizer: bpe, out: dir + "/out", shardTokens: 3, threads: 1,
                                             communicator: job)
        }
        for result in results { _ = try result.get() }
        let corpus = try ShardCorpus(directory: dir + "/out")
        #expect(Set(corpus.index.documents.map(\.source)) == Set(files))
        let hiddenBeside = try Self.hidden(dir), hiddenInside = try Self.hidden(dir + "/out")
        #expect(hiddenBeside.isEmpty && hiddenInside.isEmpty)
    }
}
