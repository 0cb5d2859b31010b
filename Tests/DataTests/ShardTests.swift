// Token shards: write → memory-map → same tokens; every corrupted header field, truncation and
// out-of-range tokens are errors naming the file and byte offset; sampling from shards equals
// sampling from an array; the tokenize pipeline (documents, threads, bad input); parallel pairs.
import Testing
import Foundation
import Data

func directory() -> String { (temporaryPath("x") as NSString).deletingLastPathComponent }

/// Rewrites `count` bytes at `offset` of a file.
func patch(_ path: String, at offset: Int, _ bytes: [UInt8]) throws {
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    for (k, b) in bytes.enumerated() { data[offset + k] = b }
    try data.write(to: URL(fileURLWithPath: path))
}

func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

@Suite struct ShardFormatTests {
    @Test func writeThenReadBothWidths() throws {
        for vocabulary in [1000, 70_000] {
            let path = directory() + "/s.bin"
            let tokens = (0..<5000).map { Int32(($0 * 7919) % vocabulary) }
            try ShardWriter.writeShard(path, tokens: tokens, vocabularySize: vocabulary)
            let shard = try Shard(path: path, vocabularySize: vocabulary)
            #expect(shard.width == (vocabulary <= 65536 ? 2 : 4))
            #expect(shard.count == tokens.count)
            #expect(Array(TokenStream(shards: [shard])) == tokens)
            let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
            #expect(size == 64 + tokens.count * shard.width)
        }
    }

    /// Each corruption must fail with the path and the byte offset of the field at fault.
    @Test(arguments: [
        ("magic", 0, [UInt8](repeating: 0x58, count: 8), "bad magic"),
        ("version", 8, littleEndian(UInt32(2)), "version 2"),
        ("width", 12, littleEndian(UInt32(3)), "width 3"),
        ("vocabulary", 16, littleEndian(UInt64(999)), "vocabulary size 999"),
        ("count", 24, littleEndian(UInt64(99)), "truncated"),
        ("checksum", 32, littleEndian(UInt64(12345)), "checksum mismatch"),
    ])
    func corruptedHeaderField(field: String, offset: Int, bytes: [UInt8], message: String) throws {
        let path = directory() + "/shard-00000.bin"
        try ShardWriter.writeShard(path, tokens: (0..<40).map { Int32($0) }, vocabularySize: 50)
        _ = try Shard(path: path, vocabularySize: 50)
        try patch(path, at: offset, bytes)
        // A count that runs past the end is reported where the data stops: 64 + 40 × 2.
        let expectedOffset = field == "count" ? 64 + 80 : offset
        #expect {
            try Shard(path: path, vocabularySize: 50)
        } throws: { error in
            let text = "\(error)"
            return text.contains(path) && text.contains("byte offset \(expectedOffset):") && text.contains(message)
        }
    }

    @Test func payloadCorruptionFailsTheChecksum() throws {
        let path = directory() + "/s.bin"
        try ShardWriter.writeShard(path, tokens: (0..<40).map { Int32($0) }, vocabularySize: 50)
        try patch(path, at: 64 + 10, [0x07])
        #expect { try Shard(path: path, vocabularySize: 50) } throws: { "\($0)".contains("byte offset 32:") && "\($0)".contains(path) }
    }

    @Test func truncationAndTrailingBytes() throws {
        let path = directory() + "/s.bin"
        try ShardWriter.writeShard(path, tokens: (0..<40).map { Int32($0) }, vocabularySize: 50)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(100).write(to: URL(fileURLWithPath: path))
        #expect { try Shard(path: path, vocabularySize: 50) } throws: { "\($0)".contains("byte offset 100:") && "\($0)".contains("truncated") }
        try whole.prefix(30).write(to: URL(fileURLWithPath: path))
        #expect { try Shard(path: path, vocabularySize: 50) } throws: { "\($0)".contains("byte offset 30:") && "\($0)".contains("header needs 64") }
        try (whole + Data([1, 2])).write(to: URL(fileURLWithPath: path))
        #expect { try Shard(path: path, vocabularySize: 50) } throws: { "\($0)".contains("byte offset 144:") }
        try Data().write(to: URL(fileURLWithPath: path))
        #expect { try Shard(path: path, vocabularySize: 50) } throws: { "\($0)".contains("byte offset 0:") }
    }

    @Test func tokenNotBelowTheVocabularyNamesItsOffset() throws {
        let path = directory() + "/s.bin"
        var tokens = (0..<9000).map { Int32($0 % 50) }
        tokens[8123] = 50   // the header's vocabulary is 50, so 50 is out of range
        try ShardWriter.writeShard(path, tokens: tokens, vocabularySize: 50)
        #expect { try Shard(path: path, vocabularySize: 50) } throws: { error in
            "\(error)".contains("byte offset \(64 + 8123 * 2):") && "\(error)".contains("token 8123 is 50")
        }
    }

    @Test func samplerOverShardsMatchesSamplerOverArray() throws {
        let dir = directory()
        let tokens = (0..<3000).map { Int32(($0 * 31) % 300) }
        let writer = ShardWriter(directory: dir, prefix: "shard", vocabularySize: 300, shardTokens: 700)
        try writer.append(tokens); try writer.finish()
        #expect(writer.shards.count == 5)
        let stream = TokenStream(shards: try writer.shards.map { try Shard(path: dir + "/" + $0.file, vocabularySize: 300, tokens: $0.tokens) })
        #expect(Array(stream) == tokens)
        #expect(Array(stream.slice(650 ..< 760)) == Array(tokens[650 ..< 760]))
        let a = try WindowSampler(tokens: tokens, time: 100, seed: 9, purpose: 1, path: "a", split: "training")
        let b = try WindowSampler(tokens: stream, time: 100, seed: 9, purpose: 1, path: "b", split: "training")
        for step in 0..<20 {
            var ia = [Int32](repeating: 0, count: 800), ta = ia, ib = ia, tb = ia
            a.fill(inputs: &ia, targets: &ta, batch: 8, step: step, firstExample: 0)
            b.fill(inputs: &ib, targets: &tb, batch: 8, step: step, firstExample: 0)
            #expect(ia == ib && ta == tb)
        }
        let split = TextCorpus(path: dir, stream: stream, validationFraction: 0.1)
        #expect(split.train.count == 2700 && Array(split.validation) == Array(tokens[2700...]))
    }
}

@Suite struct TokenizePipelineTests {
    static func bpe() throws -> ByteLevelBPE {
        var t = BPETrainer()
        t.add(Array(String(repeating: englishSample, count: 3).utf8))
        return try t.train(vocabularySize: 350, specials: ["<|endoftext|>"])
    }

    @Test func documentsShardsAndThreads() throws {
        let bpe = try Self.bpe()
        let dir = directory()
        var g = SeededGenerator(state: 3)
        let words = ["the", "Citizen", "speak", "we're", "12", "famish?", "\n", "\n\n", "  ", "ünï"]
        let long = (0..<6000).map { _ in (0..<10).map { _ in words.randomElement(using: &g)! }.joined(separator: " ") }.joined(separator: "\n")
        let chunks = Array(long.utf8).withUnsafeBytes { CorpusTokenizer.chunkBounds($0, target: 1 << 16) }
        #expect(chunks.count > 3, "the text must be encoded in several chunks")
        try long.write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        try "one doc<|endoftext|>two doc<|endoftext|>three".write(toFile: dir + "/b.txt", atomically: true, encoding: .utf8)
        let report = try CorpusTokenizer.tokenize(files: [dir + "/a.txt", dir + "/b.txt"], tokenizer: bpe,
                                                  out: dir + "/shards", shardTokens: 10_000, threads: 2)
        let corpus = try ShardCorpus(directory: dir + "/shards")
        let expected = try bpe.encode(long) + bpe.encode("one doc<|endoftext|>two doc<|endoftext|>three")
        #expect(Array(corpus.tokens) == expected, "two threads must give the one-pass ids")
        #expect(report.tokens == expected.count && corpus.index.shards.count == (expected.count + 9999) / 10_000)
        // a.txt is one document; b.txt three, split after each end-of-text token.
        let docs = corpus.index.documents
        #expect(docs.map(\.source) == [dir + "/a.txt"] + [String](repeating: dir + "/b.txt", count: 3))
        #expect(docs.count == 4 && docs[1].start == docs[0].tokens)
        #expect(bpe.decode(Array(corpus.tokens.slice(docs[2].start ..< docs[2].start + docs[2].tokens))) == "two doc<|endoftext|>")
        #expect(docs.reduce(0) { $0 + $1.tokens } == expected.count)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/shards").allSatisfy { !$0.hasPrefix(".") }, "no temporary files left")
        // Opening with a tokenizer of another vocabulary size is refused.
        #expect { try ShardCorpus(directory: dir + "/shards", tokenizer: CharacterTokenizer(corpus: "abc")) } throws: {
            "\($0)".contains("index.json") && "\($0)".contains("350")
        }
    }

    @Test func ranksSplitFilesAndMergingTheirPartsGivesTheOneRankCorpus() throws {
        let bpe = try Self.bpe()
        let dir = directory()
        let texts = ["first file<|endoftext|>second doc", "third file, plain", "fourth we're", "fifth 12 ünï"]
        let files = texts.indices.map { dir + "/f\($0).txt" }
        for (f, t) in zip(files, texts) { try t.write(toFile: f, atomically: true, encoding: .utf8) }
        _ = try CorpusTokenizer.tokenize(files: files, tokenizer: bpe, out: dir + "/one", shardTokens: 4)
        // Rank 1 of 2 encodes files 1 and 3, rank 0 files 0 and 2, each into its own shard series.
        try FileManager.default.createDirectory(atPath: dir + "/two", withIntermediateDirectories: true)
        let inputs = try CorpusTokenizer.inputs(files)
        let one1 = try CorpusTokenizer.encode(files: files, inputs: inputs, rank: 1, of: 2, tokenizer: bpe,
                                              directory: dir + "/two", shardTokens: 4)
        #expect(!FileManager.default.fileExists(atPath: dir + "/two/index.json"), "encoding a part writes no index")
        #expect(one1.files.map(\.index) == [1, 3])
        let one0 = try CorpusTokenizer.encode(files: files, inputs: inputs, rank: 0, of: 2, tokenizer: bpe,
                                              directory: dir + "/two", shardTokens: 4)
        try CorpusTokenizer.write(CorpusTokenizer.index(merging: [one1, one0], tokenizer: bpe), tokenizer: bpe, directory: dir + "/two")
        let one = try ShardCorpus(directory: dir + "/one"), two = try ShardCorpus(directory: dir + "/two")
        #expect(Array(one.tokens) == Array(two.tokens) && one.index.documents == two.index.documents)
        #expect(one.index.documents.count == 5)
        #expect(two.index.shards.map(\.file).allSatisfy { $0.hasPrefix("file0000") })
    }

    @Test func missingAndEmptyInputsAreErrors() throws {
        let bpe = try Self.bpe()
        let dir = directory()
        try "".write(toFile: dir + "/empty.txt", atomically: true, encoding: .utf8)
        #expect { try CorpusTokenizer.tokenize(files: [dir + "/nope.txt"], tokenizer: bpe, out: dir + "/o", shardTokens: 10) } throws: {
            "\($0)".contains("nope.txt") && "\($0)".contains("not found")
        }
        #expect { try CorpusTokenizer.tokenize(files: [dir + "/empty.txt"], tokenizer: bpe, out: dir + "/o", shardTokens: 10) } throws: {
            "\($0)".contains("empty.txt") && "\($0)".contains("empty")
        }
        #expect { try ShardCorpus(directory: dir + "/o") } throws: { "\($0)".contains("index.json") }
    }

    @Test func parallelPairsStayAligned() throws {
        let bpe = try Self.bpe()
        let dir = directory()
        let source = ["a small dog", "", "we're here", "ünï 12"], target = ["ein kleiner Hund", "leer", "wir sind hier", "x"]
        try (source.joined(separator: "\n") + "\n").write(toFile: dir + "/s.txt", atomically: true, encoding: .utf8)
        try target.joined(separator: "\n").write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
        _ = try CorpusTokenizer.tokenizeParallel(source: dir + "/s.txt", target: dir + "/t.txt", tokenizer: bpe,
                                                 out: dir + "/p", shardTokens: 5)
        let corpus = try ParallelCorpus(directory: dir + "/p")
        #expect(corpus.count == 4)
        for i in 0..<4 {
            let pair = corpus.pair(i)
            let s = try bpe.encode(source[i]), t = try bpe.encode(target[i])
            #expect(pair.source == s && pair.target == t)
        }
        try "one\ntwo\nthree\n".write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
        #expect { try CorpusTokenizer.tokenizeParallel(source: dir + "/s.txt", target: dir + "/t.txt", tokenizer: bpe, out: dir + "/q", shardTokens: 5) } throws: {
            "\($0)".contains("has 4 lines") && "\($0)".contains("t.txt has 3")
        }
    }
}
