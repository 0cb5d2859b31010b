// TextCorpus: a token stream (a tokenized text or memory-mapped shards) split into training (first
// part) and validation (last part), and WindowSampler, which draws (context + 1)-token windows from
// either.
import Foundation
import Support

public enum CorpusError: Error, CustomStringConvertible {
    case missing(path: String)
    case unreadable(path: String, reason: String)
    case tooSmall(path: String, split: String, tokens: Int, needed: Int)

    public var description: String {
        switch self {
        case let .missing(path): return "\(path): corpus file not found (set data.corpus to a text file)"
        case let .unreadable(path, reason): return "\(path): cannot read corpus (\(reason))"
        case let .tooSmall(path, split, tokens, needed):
            return "\(path): the \(split) split has \(tokens) tokens but a window needs \(needed); use a larger corpus or a shorter context"
        }
    }
}

/// Token ids of one text or shard set, split once: `train` = first (1 − validationFraction),
/// `validation` = rest.
public struct TextCorpus {
    public let path: String
    public let train: TokenStream
    public let validation: TokenStream

    public init(path: String, tokens: [Int32], validationFraction: Double) {
        self.init(path: path, stream: TokenStream(tokens), validationFraction: validationFraction)
    }

    /// Separate training and validation streams (e.g. two shard directories).
    public init(path: String, train: TokenStream, validation: TokenStream) {
        self.path = path; self.train = train; self.validation = validation
    }

    public init(path: String, stream: TokenStream, validationFraction: Double) {
        self.path = path
        let n = Int(Double(stream.count) * (1 - validationFraction))
        train = stream.slice(0 ..< n)
        validation = stream.slice(n ..< stream.count)
    }

    /// Reads a UTF-8 text file.
    public static func readText(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw CorpusError.missing(path: path) }
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CorpusError.unreadable(path: path, reason: "not UTF-8 text or unreadable")
        }
    }
}

/// Draws windows of `time + 1` tokens at random offsets, keyed by (seed, purpose, step, example):
/// example e of step s is the same window whichever rank or micro-step asks for it. The tokens are
/// an in-memory array or memory-mapped u16/u32 shards (windows may span shard boundaries).
public struct WindowSampler {
    public let tokens: TokenStream
    public let time: Int
    public let seed: UInt64
    public let purpose: UInt64

    public init(tokens: [Int32], time: Int, seed: UInt64, purpose: UInt64, path: String, split: String) throws {
        try self.init(tokens: TokenStream(tokens), time: time, seed: seed, purpose: purpose, path: path, split: split)
    }

    public init(tokens: TokenStream, time: Int, seed: UInt64, purpose: UInt64, path: String, split: String) throws {
        guard tokens.count > time else {
            throw CorpusError.tooSmall(path: path, split: split, tokens: tokens.count, needed: time + 1)
        }
        self.tokens = tokens; self.time = time; self.seed = seed; self.purpose = purpose
    }

    /// Fills inputs and targets (B, T) with examples `firstExample ..< firstExample + B` of `step`.
    public func fill(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
                     batch B: Int, step: Int, firstExample: Int) {
        let T = time
        let key = CounterRandom.key(seed, purpose, UInt64(step))
        for b in 0..<B {
            let start = CounterRandom.below(tokens.count - T, key: key, counter: UInt64(firstExample + b))
            tokens.copy(from: start, count: T, into: inputs + b * T)
            tokens.copy(from: start + 1, count: T, into: targets + b * T)
        }
    }
}
