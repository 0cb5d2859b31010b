// MaskedLanguageModelTask: BERT pre-training as a TrainingTask — `[CLS] window [SEP]` sequences
// drawn from the same token streams as the GPT, masked by MaskedSequenceSampler, the loss only at
// the chosen positions and normalised by their count over the whole global batch (every rank and
// micro-batch), which any rank can compute because the masks depend on (seed, step, example) alone.
import Foundation
import Kernels
import Models
import Data
import Support

/// BERT on masked sequences: example e of step s is the same sequence and mask whichever rank or
/// micro-step draws it; rank r takes examples r·B/W ..< (r+1)·B/W in micro-batches.
public final class MaskedLanguageModelTask: TrainingTask {
    public let bert: BERT
    public var model: TrainableModel { bert }
    public let specials: MaskedLanguageModelTokens
    let batchSize: Int, microBatch: Int, time: Int
    let trainSampler: MaskedSequenceSampler
    let validationSampler: MaskedSequenceSampler
    let inputs: UnsafeMutablePointer<Int32>    // (microBatch, T) masked sequences
    let targets: UnsafeMutablePointer<Int32>   // (microBatch, T) original tokens at chosen positions, −1 elsewhere
    let lengths: UnsafeMutablePointer<Int32>   // (microBatch) valid positions (all T: sequences are packed)
    /// globalTokens of the last step asked for (the loop asks twice per step).
    private var countedStep = -1, countedTokens = 0
    public private(set) var lastValidationCorrect: Double?

    public init(config: LoomConfig, data: PreparedData, world: Int) throws {
        let t = config.training
        try Self.checkBatchSplits(config, world: world)
        batchSize = t.batchSize
        microBatch = t.microBatchSize
        time = config.model.contextLength
        let (shape, masking) = try config.bertConfig(vocabularySize: data.tokenizer.vocabularySize)
        do { specials = try MaskedLanguageModelTokens(tokenizer: data.tokenizer) } catch let error as MaskedLanguageModelError {
            throw ConfigError(file: "config", key: "data.tokenizer", message: error.message)
        }
        try Self.checkPrecision(config)
        let seed = UInt64(t.seed)
        trainSampler = try MaskedSequenceSampler(tokens: data.corpus.train, time: time, seed: seed, purpose: 1, policy: masking,
                                                 specials: specials, path: data.corpus.path, split: "training")
        validationSampler = try MaskedSequenceSampler(tokens: data.corpus.validation, time: time, seed: seed, purpose: 2,
                                                      policy: masking, specials: specials, path: data.corpus.path,
                                                      split: "validation")
        bert = BERT(config: shape, maxBatch: microBatch, maxPredictions: microBatch * masking.maximumChosen(time: time),
                    precision: t.precision)
        inputs = .allocate(capacity: microBatch * time)
        targets = .allocate(capacity: microBatch * time)
        lengths = .allocate(capacity: microBatch)
    }

    deinit { inputs.deallocate(); targets.deallocate(); lengths.deallocate() }

    /// The chosen positions of the whole global batch of `step` (the loss's denominator).
    public func globalTokens(step: Int) -> Int {
        if step != countedStep {
            countedTokens = (0..<batchSize).reduce(0) { $0 + trainSampler.predictionCount(step: step, example: $1) }
            countedStep = step
        }
        return countedTokens
    }

    public func inputTokens(step: Int) -> Int { batchSize * time }

    public func microBatches(step: Int, rank: Int, world: Int) -> Int { batchSize / (world * microBatch) }

    public func trainMicroBatch(step: Int, micro: Int, rank: Int, world: Int, scale: Float, dropoutKey: UInt64) -> (sum: Double, count: Int) {
        let first = rank * (batchSize / world) + micro * microBatch
        trainSampler.fill(inputs: inputs, targets: targets, lengths: lengths, batch: microBatch, step: step, firstExample: first)
        let r = bert.forward(tokens: inputs, segments: nil, lengths: lengths, targets: targets, batch: microBatch, time: time,
                             dropout: DropoutStream(key: dropoutKey, firstExample: first))
        bert.backward(scale: scale)
        return r
    }

    /// Σ loss and Σ chosen positions over `batches` fixed validation batches (batch b is "step" b
    /// of the validation sampler, so the masks are the same in every pass); the right predictions
    /// go to `lastValidationCorrect`.
    public func validationPart(batches: Int, rank: Int, world: Int) -> (sum: Double, count: Double) {
        var score = MaskedLanguageModelScore()
        for b in stride(from: rank, to: batches, by: world) {
            score.add(bert, sampler: validationSampler, batch: b, sequences: microBatch, inputs: inputs, targets: targets,
                      lengths: lengths)
        }
        lastValidationCorrect = Double(score.correct)
        return (score.sum, Double(score.count))
    }

    public func validationDescription(batches: Int) -> String {
        "\(batches) batches of \(microBatch) held-out sequences, per masked token"
    }

    public func describe(world: Int) -> String {
        "\(bert.layout.count) parameters, vocabulary \(bert.config.vocabularySize), \(world) rank(s) × "
            + "\(microBatches(step: 0, rank: 0, world: world)) micro-step(s) of \(microBatch) sequences of \(time), "
            + String(format: "%.0f %% of tokens predicted", 100 * trainSampler.policy.probability)
    }
}

/// Sums of a masked-language-model evaluation: loss, predictions, right predictions, and (when
/// asked) how often each token was a target, for the unigram baseline.
public struct MaskedLanguageModelScore {
    public var sum = 0.0, count = 0, correct = 0, sequences = 0
    /// (V) targets per token id; empty unless asked for.
    public var targetCounts: [Int] = []

    /// `countTargets`: the vocabulary size, to count targets per token (0: not counted).
    public init(countTargets vocabularySize: Int = 0) { targetCounts = [Int](repeating: 0, count: vocabularySize) }

    /// Runs batch `batch` of `sampler` (sequences 0 ..< `sequences` of "step" `batch`) through the
    /// model in evaluation mode and adds its loss and right arg-max predictions.
    public mutating func add(_ bert: BERT, sampler: MaskedSequenceSampler, batch: Int, sequences B: Int,
                             inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
                             lengths: UnsafeMutablePointer<Int32>) {
        let T = sampler.time
        sampler.fill(inputs: inputs, targets: targets, lengths: lengths, batch: B, step: batch, firstExample: 0)
        let r = bert.forward(tokens: inputs, segments: nil, lengths: lengths, targets: targets, batch: B, time: T)
        sum += r.sum; count += r.count; sequences += B
        let V = bert.config.vocabularySize, logits = bert.predictedLogits
        var row = 0
        for i in 0..<(B * T) where targets[i] >= 0 {
            if Self.argmax(logits + row * V, count: V) == Int(targets[i]) { correct += 1 }
            if !targetCounts.isEmpty { targetCounts[Int(targets[i])] += 1 }
            row += 1
        }
    }

    /// The index of the largest of `count` values (the first of equals).
    static func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for i in 1..<count where x[i] > x[best] { best = i }
        return best
    }

    public var loss: Double { sum / Double(max(count, 1)) }
    public var accuracy: Double { Double(correct) / Double(max(count, 1)) }
    /// The best constant guess for these very targets (their most frequent token): its accuracy,
    /// and the cross-entropy of their own unigram distribution (nats). Fitted on what is scored,
    /// so no unigram model does better on it.
    public var unigramBaseline: (accuracy: Double, loss: Double) {
        let n = Double(max(count, 1))
        let top = Double(targetCounts.max() ?? 0)
        let entropy = targetCounts.reduce(0.0) { h, c in c == 0 ? h : h - Double(c) / n * log(Double(c) / n) }
        return (top / n, entropy)
    }
}
