// PreparedData: the tokenizer and tokens a config names — a text file tokenized at start-up or a
// memory-mapped shard directory — loaded before anything is written (and synthetic data for
// benchmarks). It is not the sampler (Data.WindowSampler).
import Foundation
import Kernels
import Data

/// The corpus and tokenizer of a config, loaded before anything is written.
public struct PreparedData {
    public let tokenizer: Tokenizer
    public let corpus: TextCorpus

    public init(config: LoomConfig) throws {
        let d = config.data
        let named: Tokenizer? = d.tokenizer == "character" ? nil : try TokenizerFile.load(d.tokenizer)
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
