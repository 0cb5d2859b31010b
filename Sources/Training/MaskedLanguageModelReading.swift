// MaskedLanguageModelReading: what `loom fill-mask` and `loom eval mlm` need of a trained BERT — the
// model read back from a run or checkpoint, the top predictions for each [MASK] of a text, and the
// masked-token loss and accuracy on held-out sequences masked exactly as training's validation.
import Foundation
import Data
import Models
import Kernels
import Support

/// A trained BERT read back from a run: RUN (its final model.safetensors) or RUN/checkpoints/step-N,
/// with the run's resolved config.yaml and tokenizer.json.
public struct TrainedBERT {
    public let files: TrainedRunFiles
    public let tokenizer: Tokenizer
    public let specials: MaskedLanguageModelTokens
    public let masking: MaskingPolicy
    public let model: BERT

    /// Loads the model at `path` for forwards of up to `maxBatch` sequences with up to
    /// `maxPredictions` predicted positions (default: as many as the run's masking chooses; at most
    /// every position), in the run's `training.precision` unless `precision` is given.
    public init(path: String, maxBatch: Int, maxPredictions: Int? = nil, precision: Precision? = nil) throws {
        try self.init(files: TrainedRunFiles(path: path), maxBatch: maxBatch, maxPredictions: maxPredictions, precision: precision)
    }

    /// The model of a run whose files are already found (and its config read).
    public init(files: TrainedRunFiles, maxBatch: Int, maxPredictions: Int? = nil, precision: Precision? = nil) throws {
        self.files = files
        guard files.config.model.kind == .bert else {
            throw RunReadError(path: files.configPath, message: "model.kind is \(files.config.model.kind.rawValue), not bert; "
                               + (files.config.trainsTranslation ? "use `loom translate`" : "use `loom sample` and `loom eval loss`"))
        }
        tokenizer = try TokenizerFile.load(files.tokenizerPath)
        do { specials = try MaskedLanguageModelTokens(tokenizer: tokenizer) } catch let error as MaskedLanguageModelError {
            throw RunReadError(path: files.tokenizerPath, message: error.message)
        }
        let (shape, masking) = try files.config.bertConfig(vocabularySize: tokenizer.vocabularySize)
        self.masking = masking
        let T = shape.contextLength
        model = BERT(config: shape, maxBatch: maxBatch,
                     maxPredictions: min(maxPredictions ?? maxBatch * masking.maximumChosen(time: T), maxBatch * T),
                     precision: try files.precision(precision))
        try Safetensors.read(files.weights, layout: model.layout, into: model.parameters)
        model.parametersDidChange()
    }
}

/// One candidate for a [MASK]: the token, its id and its probability.
public struct FillMaskCandidate: Sendable {
    public let token: String
    public let id: Int32
    public let probability: Double
}

public struct FillMaskError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

public enum FillMask {
    /// The `topK` most probable tokens for each [MASK] of `text` (in order), from one forward of
    /// `[CLS] text [SEP]` (as Hugging Face's fill-mask pipeline), with the text's ids and each
    /// [MASK]'s logits (V).
    public static func predict(_ trained: TrainedBERT, text: String, topK: Int) throws
        -> (ids: [Int32], masks: [[FillMaskCandidate]], logits: [[Float]]) {
        let bert = trained.model, s = trained.specials
        let ids: [Int32]
        do { ids = try trained.tokenizer.encode(text) } catch { throw FillMaskError(message: "cannot encode the text: \(error)") }
        let sequence = [s.classification] + ids + [s.separator]
        let T = sequence.count, V = bert.config.vocabularySize
        guard T <= bert.config.contextLength else {
            throw FillMaskError(message: "the text is \(ids.count) tokens; with [CLS] and [SEP] that is more than the model's context of \(bert.config.contextLength)")
        }
        let masked = sequence.indices.filter { sequence[$0] == s.mask }
        guard !masked.isEmpty else {
            throw FillMaskError(message: "the text has no [MASK] token; write [MASK] where the model should predict a token")
        }
        guard masked.count <= bert.maxPredictions else {
            throw FillMaskError(message: "the text has \(masked.count) [MASK] tokens; at most \(bert.maxPredictions) at once")
        }
        let targets = sequence.map { $0 == s.mask ? Int32(0) : -1 }
        let length = [Int32(T)]
        sequence.withUnsafeBufferPointer { x in
            targets.withUnsafeBufferPointer { y in
                length.withUnsafeBufferPointer { n in
                    _ = bert.forward(tokens: x.baseAddress!, segments: nil, lengths: n.baseAddress!, targets: y.baseAddress!,
                                     batch: 1, time: T)
                }
            }
        }
        let logits = bert.predictedLogits
        let k = min(max(topK, 1), V)
        let masks = (0..<masked.count).map { row -> [FillMaskCandidate] in
            let z = logits + row * V
            var top = 0
            for i in 1..<V where z[i] > z[top] { top = i }
            var total = 0.0
            for i in 0..<V { total += exp(Double(z[i] - z[top])) }
            let best = (0..<V).sorted { z[$0] > z[$1] || (z[$0] == z[$1] && $0 < $1) }.prefix(k)
            return best.map { FillMaskCandidate(token: trained.tokenizer.decode([Int32($0)]), id: Int32($0),
                                                probability: exp(Double(z[$0] - z[top])) / total) }
        }
        let rows = (0..<masked.count).map { Array(UnsafeBufferPointer(start: logits + $0 * V, count: V)) }
        return (ids, masks, rows)
    }
}

/// What `loom eval mlm` measured.
public struct MaskedLanguageModelReport {
    public let score: MaskedLanguageModelScore
    /// Batches and sequences per batch that were scored, and the data they came from.
    public let batches: Int, batchSize: Int, contextLength: Int
}

public enum MaskedLanguageModelEvaluation {
    /// Scores `batches` batches of `batchSize` sequences drawn from `tokens` as training's
    /// validation draws them (seed, purpose 2, batch b = "step" b, the run's masking): with the run's
    /// own validation split, the same sequences, masks and figures as its val_loss and val_accuracy.
    public static func evaluate(_ trained: TrainedBERT, tokens: TokenStream, path: String, batches: Int,
                                batchSize: Int) throws -> MaskedLanguageModelReport {
        let config = trained.files.config, T = config.model.contextLength
        let sampler = try MaskedSequenceSampler(tokens: tokens, time: T, seed: UInt64(config.training.seed), purpose: 2,
                                                policy: trained.masking, specials: trained.specials, path: path,
                                                split: "evaluation")
        let inputs = UnsafeMutablePointer<Int32>.allocate(capacity: batchSize * T)    // (B, T)
        let targets = UnsafeMutablePointer<Int32>.allocate(capacity: batchSize * T)   // (B, T)
        let lengths = UnsafeMutablePointer<Int32>.allocate(capacity: batchSize)       // (B)
        defer { inputs.deallocate(); targets.deallocate(); lengths.deallocate() }
        var score = MaskedLanguageModelScore(countTargets: trained.model.config.vocabularySize)
        for b in 0..<batches {
            score.add(trained.model, sampler: sampler, batch: b, sequences: batchSize, inputs: inputs, targets: targets,
                      lengths: lengths)
        }
        return MaskedLanguageModelReport(score: score, batches: batches, batchSize: batchSize, contextLength: T)
    }
}
