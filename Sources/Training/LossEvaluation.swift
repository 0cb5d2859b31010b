// LossEvaluation: a trained GPT's loss on a token stream — mean negative log-likelihood per token
// (nats), perplexity and bits per byte — over the whole stream in context-length windows with a
// stride, or over exactly the validation windows training drew (to check against metrics.jsonl).
import Foundation
import Data
import Models
import Kernels
import Support

/// What a loss evaluation measured.
public struct LossReport: Sendable {
    /// `strided` (the whole stream) or `validation` (training's validation windows).
    public var windowing: String
    /// Windows run through the model.
    public var windows = 0
    /// Predicted (scored) tokens.
    public var tokens = 0
    /// Σ −ln p(token | context) over the scored tokens, in nats.
    public var totalNLL = 0.0
    /// UTF-8 bytes the scored tokens stand for (their `decodeBytes`).
    public var bytes = 0
    /// The mean NLL per token, nats: totalNLL / tokens for `strided`; for `validation`, the mean of
    /// the per-batch means, as training computes it.
    public var meanNLL = 0.0
    public var contextLength = 0
    /// Tokens between window starts (`strided`); 0 for `validation`.
    public var stride = 0

    /// exp(meanNLL).
    public var perplexity: Double { exp(meanNLL) }
    /// totalNLL / ln 2 / bytes: the code length of the scored text's bytes under the model.
    public var bitsPerByte: Double { totalNLL / log(2.0) / Double(max(bytes, 1)) }
}

public enum LossEvaluation {
    /// Scores every token of `tokens` but the first. Window k starts at token k·stride and holds
    /// up to contextLength + 1 tokens (T inputs, T targets, shorter at the end); it scores only the
    /// targets past the previous window's last one, so each token is scored once, with at least
    /// contextLength − stride tokens of context from the second window on (stride = contextLength:
    /// non-overlapping windows). `batch` windows run together.
    public static func strided(model: GPT, tokens: TokenStream, stride: Int, batch: Int,
                               tokenizer: Tokenizer) throws -> LossReport {
        let T = model.config.contextLength, N = tokens.count
        guard N >= 2 else { throw LossEvaluationError("the text has \(N) token(s); scoring needs at least 2") }
        guard stride >= 1, stride <= T else { throw LossEvaluationError("--stride must be 1…\(T) (the context length), got \(stride)") }
        let B = min(batch, model.maxBatch)
        let byteLengths = tokenByteLengths(tokenizer)
        var report = LossReport(windowing: "strided", contextLength: T, stride: stride)
        let inputs = UnsafeMutablePointer<Int32>.allocate(capacity: B * T)    // (B, T)
        let targets = UnsafeMutablePointer<Int32>.allocate(capacity: B * T)   // (B, T), −1 = not scored
        defer { inputs.deallocate(); targets.deallocate() }
        var begin = 0, scoredThrough = 0      // the last target position scored so far
        var done = false
        while !done {
            // Gather up to B windows of full length T (a shorter last one runs alone).
            var rows = 0, length = T
            while rows < B && !done {
                let end = min(begin + T, N - 1)                  // last target position of this window
                let L = end - begin
                if L < T && rows > 0 { break }                   // the short last window: its own batch
                length = L
                tokens.copy(from: begin, count: L, into: inputs + rows * L)
                tokens.copy(from: begin + 1, count: L, into: targets + rows * L)
                for j in 0..<L where begin + 1 + j <= scoredThrough { targets[rows * L + j] = -1 }
                for j in 0..<L where targets[rows * L + j] >= 0 { report.bytes += byteLengths[Int(targets[rows * L + j])] }
                scoredThrough = end
                rows += 1
                report.windows += 1
                if end == N - 1 { done = true } else { begin += stride }
                if L < T { break }
            }
            let r = model.forward(tokens: inputs, targets: targets, batch: rows, time: length)
            report.totalNLL += r.sum
            report.tokens += r.count
        }
        report.meanNLL = report.totalNLL / Double(max(report.tokens, 1))
        return report
    }

    /// The validation windows of training, scored as training scores them: `batches` batches of
    /// `microBatch` windows of contextLength + 1 tokens, batch b drawn by `WindowSampler(seed,
    /// purpose 2)` at step b from `validation`; the result is the mean of the batch means (what
    /// metrics.jsonl's `val_loss` records, up to the arithmetic of a different thread split).
    public static func validationWindows(model: GPT, validation: TokenStream, seed: UInt64, batches: Int, microBatch: Int,
                                         tokenizer: Tokenizer, path: String) throws -> LossReport {
        let T = model.config.contextLength
        guard microBatch <= model.maxBatch else { throw LossEvaluationError("the model holds \(model.maxBatch) windows, not \(microBatch)") }
        let sampler = try WindowSampler(tokens: validation, time: T, seed: seed, purpose: 2, path: path, split: "validation")
        let byteLengths = tokenByteLengths(tokenizer)
        var report = LossReport(windowing: "validation", contextLength: T, stride: 0)
        let inputs = UnsafeMutablePointer<Int32>.allocate(capacity: microBatch * T)    // (microBatch, T)
        let targets = UnsafeMutablePointer<Int32>.allocate(capacity: microBatch * T)   // (microBatch, T)
        defer { inputs.deallocate(); targets.deallocate() }
        var sumOfMeans = 0.0
        for b in 0..<batches {
            sampler.fill(inputs: inputs, targets: targets, batch: microBatch, step: b, firstExample: 0)
            let r = model.forward(tokens: inputs, targets: targets, batch: microBatch, time: T)
            sumOfMeans += r.sum / Double(max(r.count, 1))
            report.totalNLL += r.sum
            report.tokens += r.count
            report.windows += microBatch
            for i in 0..<(microBatch * T) { report.bytes += byteLengths[Int(targets[i])] }
        }
        report.meanNLL = sumOfMeans / Double(max(batches, 1))
        return report
    }

    /// Bytes each token id stands for.
    static func tokenByteLengths(_ tokenizer: Tokenizer) -> [Int] {
        (0..<tokenizer.vocabularySize).map { tokenizer.decodeBytes([Int32($0)]).count }
    }
}

/// A loss evaluation that cannot run as asked, with the reason and the fix.
public struct LossEvaluationError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
