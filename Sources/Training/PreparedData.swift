// PreparedData: the tokenizer and tokens a config names — a text file tokenized at start-up or a
// memory-mapped shard directory — loaded before anything is written (and synthetic data for
// benchmarks).
import Foundation
import Kernels
import Data
import Support

/// The corpus and tokenizer of a config, loaded before anything is written.
public struct PreparedData {
    public let tokenizer: Tokenizer
    public let corpus: TextCorpus

    public init(config: LoomConfig) throws {
        let d = config.data
        let named: Tokenizer? = try d.tokenizer.path.map(TokenizerFile.load)
        if !d.shards.isEmpty {
            let shards = try ShardCorpus(directory: d.shards, tokenizer: named)
            tokenizer = shards.tokenizer
            if d.validationShards.isEmpty {
                corpus = TextCorpus(path: d.shards, stream: shards.tokens, validationFraction: d.validationFraction)
            } else {
                let validation = try ShardCorpus(directory: d.validationShards, tokenizer: shards.tokenizer)
                corpus = TextCorpus(path: d.shards, train: shards.tokens, validation: validation.tokens)
            }
            return
        }
        let path = d.corpus
        if let named {
            guard let bytes = FileManager.default.contents(atPath: path) else { throw CorpusError.missing(path: path) }
            let tokens: [Int32]
            do { tokens = try bytes.withUnsafeBytes { try named.encode(bytes: $0) } } catch {
                throw CorpusError.unreadable(path: path, reason: "\(error)")
            }
            tokenizer = named
            corpus = TextCorpus(path: path, tokens: tokens, validationFraction: d.validationFraction)
            return
        }
        let text = try TextCorpus.readText(path)
        let tokenizer = CharacterTokenizer(corpus: text)
        self.tokenizer = tokenizer
        corpus = TextCorpus(path: path, tokens: try tokenizer.encode(text),
                            validationFraction: d.validationFraction)
    }
}

extension PreparedData {
    /// Random tokens of a given vocabulary, for benchmarks without a corpus.
    public static func synthetic(vocabularySize: Int, tokens: Int, seed: UInt64) -> PreparedData {
        let characters = (0..<vocabularySize).map { Unicode.Scalar(UInt32(0x100 + $0))! }
        let key = CounterRandom.key(seed, 0xB)
        let ids = (0..<tokens).map { Int32(CounterRandom.below(vocabularySize, key: key, counter: UInt64($0))) }
        return PreparedData(tokenizer: CharacterTokenizer(characters: characters),
                            corpus: TextCorpus(path: "(synthetic)", tokens: ids, validationFraction: 0.1))
    }

    public init(tokenizer: Tokenizer, corpus: TextCorpus) {
        self.tokenizer = tokenizer
        self.corpus = corpus
    }
}

/// The parallel corpora (training and validation shard directories from `loom tokenize --source
/// … --target …`) and shared tokenizer of a translation config, with its begin/end tokens.
public struct PreparedTranslationData {
    public let tokenizer: Tokenizer
    public let train: ParallelCorpus
    public let validation: ParallelCorpus
    public let begin: Int32, end: Int32

    public init(config: LoomConfig) throws {
        let d = config.data
        guard !d.shards.isEmpty else {
            throw ConfigError(file: "config", key: "data.shards",
                              message: "model.kind transformer needs a parallel shard directory (loom tokenize --source F --target F --out DIR)")
        }
        guard !d.validationShards.isEmpty else {
            throw ConfigError(file: "config", key: "data.validation_shards", message: "model.kind transformer needs a parallel validation shard directory")
        }
        let tok = try ShardCorpus(directory: d.shards).tokenizer
        tokenizer = tok
        train = try ParallelCorpus(directory: d.shards)
        validation = try ParallelCorpus(directory: d.validationShards)
        func special(_ names: [String]) -> Int32? { names.compactMap { tok.specialTokenID($0) }.first }
        guard let b = special(["<s>", "<|endoftext|>"]), let e = special(["</s>", "<|endoftext|>"]) else {
            throw ConfigError(file: "config", key: "data.shards",
                              message: "the tokenizer has neither <s>/</s> nor <|endoftext|>; train it with --special '<|endoftext|>'")
        }
        begin = b; end = e
    }
}
