// The data section: text corpus or shard directory (exactly one), a tokenizer file for either,
// separate validation shards — each resolved by PreparedData or refused naming the key or file.
import Testing
import Foundation
import Training
import Data
import TestSupport

func scratch() throws -> String {
    let dir = scratchPath("loom-data-config-")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

let shardYAML = """
model: {layers: 2, heads: 2, width: 16, context_length: 8}
data: {shards: shards}
training: {steps: 10, batch_size: 4, micro_batch_size: 2}
"""

@Suite struct DataConfigTests {
    static let text = String(repeating: "to be or not to be, that is the question.\n", count: 40)

    static func bpe() throws -> ByteLevelBPE {
        var t = BPETrainer()
        t.add(Array(text.utf8))
        return try t.train(vocabularySize: 300)
    }

    @Test func exactlyOneOfCorpusAndShards() {
        #expect(configError(shardYAML, overrides: ["data.corpus=x.txt"]).contains("'data.shards': set exactly one of data.corpus"))
        #expect(configError(shardYAML, overrides: ["data.shards="]).contains("'data.corpus': set exactly one"))
    }

    @Test func corpusWithATokenizerFile() throws {
        let dir = try scratch(), bpe = try Self.bpe()
        try Self.text.write(toFile: dir + "/c.txt", atomically: true, encoding: .utf8)
        try bpe.serialized().write(to: URL(fileURLWithPath: dir + "/tok.json"))
        let c = try LoomConfig.parse(yaml: minimalYAML, file: "t.yaml", overrides: ["data.corpus=\(dir)/c.txt", "data.tokenizer=\(dir)/tok.json"])
        let data = try PreparedData(config: c)
        #expect(data.tokenizer.vocabularySize == bpe.vocabularySize)
        let all = Array(data.corpus.train) + Array(data.corpus.validation)
        #expect(all == (try bpe.encode(Self.text)))
        let missing = try LoomConfig.parse(yaml: minimalYAML, file: "t.yaml", overrides: ["data.corpus=\(dir)/c.txt", "data.tokenizer=\(dir)/nope.json"])
        #expect { try PreparedData(config: missing) } throws: { "\($0)".contains("nope.json") }
    }

    @Test func shardsWithSeparateValidationShards() throws {
        let dir = try scratch(), bpe = try Self.bpe()
        try Self.text.write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        try "to be, or not.\n".write(toFile: dir + "/b.txt", atomically: true, encoding: .utf8)
        _ = try CorpusTokenizer.tokenize(files: [dir + "/a.txt"], tokenizer: bpe, out: dir + "/train", shardTokens: 50)
        _ = try CorpusTokenizer.tokenize(files: [dir + "/b.txt"], tokenizer: bpe, out: dir + "/val", shardTokens: 50)
        let split = try PreparedData(config: LoomConfig.parse(yaml: shardYAML, file: "t.yaml", overrides: ["data.shards=\(dir)/train"]))
        let whole = try bpe.encode(Self.text)
        let n = Int(Double(whole.count) * 0.9)
        #expect(Array(split.corpus.train) == Array(whole[..<n]) && Array(split.corpus.validation) == Array(whole[n...]))
        let c = try LoomConfig.parse(yaml: shardYAML, file: "t.yaml", overrides: ["data.shards=\(dir)/train", "data.validation_shards=\(dir)/val"])
        #expect(try LoomConfig.parse(yaml: c.yaml(), file: "resolved.yaml") == c)
        let separate = try PreparedData(config: c)
        #expect(Array(separate.corpus.train) == whole)
        #expect(Array(separate.corpus.validation) == (try bpe.encode("to be, or not.\n")))
        // A tokenizer file of another vocabulary is refused, naming the index.
        try CharacterTokenizer(corpus: "abc").serialized().write(to: URL(fileURLWithPath: dir + "/char.json"))
        let wrong = try LoomConfig.parse(yaml: shardYAML, file: "t.yaml", overrides: ["data.shards=\(dir)/train", "data.tokenizer=\(dir)/char.json"])
        #expect { try PreparedData(config: wrong) } throws: { "\($0)".contains("train/index.json") && "\($0)".contains("vocabulary_size") }
    }
}
