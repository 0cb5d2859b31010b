// PreparedData: the tokenizer and tokenized corpus a config names, loaded before anything is
// written (and synthetic data for benchmarks). It is not the sampler (Data.WindowSampler).
import Kernels
import Data

/// The corpus and tokenizer of a config, loaded before anything is written.
public struct PreparedData {
    public let tokenizer: Tokenizer
    public let corpus: TextCorpus

    public init(config: LoomConfig) throws {
        let path = config.data.corpus
        let text = try TextCorpus.readText(path)
        let tokenizer = CharacterTokenizer(corpus: text)
        self.tokenizer = tokenizer
        corpus = TextCorpus(path: path, tokens: try tokenizer.encode(text),
                            validationFraction: config.data.validationFraction)
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
