// TrainingTask: what the one trainer loop trains — a model and the data that feeds it — as
// LanguageModelTask (GPT on token windows), TranslationTask (the encoder-decoder on token-count
// batches of sentence pairs) and MaskedLanguageModelTask (BERT, in its own file). The loop splits each global batch across ranks
// and micro-steps by asking the task.
import Foundation
import Kernels
import Models
import Data
import Support

public protocol TrainingTask: AnyObject {
    var model: TrainableModel { get }
    /// Loss terms (target tokens) of the whole global batch of `step`; gradients are scaled by its
    /// inverse so micro-batches and ranks add up to the mean.
    func globalTokens(step: Int) -> Int
    /// How many micro-batches rank `rank` of `world` runs at `step`.
    func microBatches(step: Int, rank: Int, world: Int) -> Int
    /// Forward and backward (gradients added, times `scale`) of one micro-batch; returns (Σ loss, tokens).
    func trainMicroBatch(step: Int, micro: Int, rank: Int, world: Int, scale: Float, dropoutKey: UInt64) -> (sum: Double, count: Int)
    /// This rank's share of the validation loss as (numerator, denominator) to be summed over ranks.
    func validationPart(batches: Int, rank: Int, world: Int) -> (sum: Double, count: Double)
    /// A line describing the batch layout, for the start-up message.
    func describe(world: Int) -> String
    /// What one validation pass covers (for its message).
    func validationDescription(batches: Int) -> String
    /// Bytes held beside the model for thread replicas (their gradients and activations).
    var replicaBytes: Int { get }
    /// Tokens the global batch of `step` feeds the model (the throughput's count): `globalTokens`
    /// for a language model, every position of every sequence for masked language modelling.
    func inputTokens(step: Int) -> Int
    /// Predictions the last `validationPart` got right on this rank (its share of an accuracy over
    /// the same denominator as the loss); nil for a task that measures no accuracy.
    var lastValidationCorrect: Double? { get }
}

extension TrainingTask {
    public var replicaBytes: Int { 0 }
    public func inputTokens(step: Int) -> Int { globalTokens(step: step) }
    public var lastValidationCorrect: Double? { nil }

    /// A global batch of sequences must split evenly into ranks × micro-batches; the error
    /// suggests a micro-batch size that does.
    static func checkBatchSplits(_ config: LoomConfig, world: Int) throws {
        let t = config.training
        guard t.batchSize % (world * t.microBatchSize) == 0 else {
            throw ConfigError(file: "config", key: "training.batch_size",
                              message: "\(t.batchSize) is not divisible by ranks (\(world)) × micro_batch_size (\(t.microBatchSize))"
                              + (t.batchSize % world == 0 ? "; e.g. --set training.micro_batch_size=\(t.batchSize / world)" : ""))
        }
    }

    /// `training.precision: bf16` on a CPU that cannot run bf16 products stops here, before the
    /// model is built, with the CPU named.
    static func checkPrecision(_ config: LoomConfig, cpu: CPUFeatures = .current()) throws {
        if config.training.precision == .bf16, let why = Precision.bf16Unsupported(on: cpu) {
            throw ConfigError(file: "config", key: "training.precision", message: why)
        }
    }
}

/// GPT on (context + 1)-token windows: example e of step s is the same window whichever rank or
/// micro-step draws it; rank r takes examples r·B/W ..< (r+1)·B/W in micro-batches.
public final class LanguageModelTask: TrainingTask {
    public let gpt: GPT
    /// The pool's threads as whole-model replicas (`training.thread_parallelism`), or nil when the
    /// threads split each kernel instead.
    public let replicas: GPTReplicas?
    public var model: TrainableModel { gpt }
    let batchSize: Int, microBatch: Int, time: Int
    let trainSampler: WindowSampler
    let validationSampler: WindowSampler
    let inputs: UnsafeMutablePointer<Int32>    // (microBatch, T)
    let targets: UnsafeMutablePointer<Int32>   // (microBatch, T)

    public init(config: LoomConfig, data: PreparedData, world: Int) throws {
        let t = config.training
        try Self.checkBatchSplits(config, world: world)
        batchSize = t.batchSize
        microBatch = t.microBatchSize
        time = config.model.contextLength
        let shape = try config.gptConfig(vocabularySize: data.tokenizer.vocabularySize)
        // Replicas need the pool (configured before the task) and a micro-batch that splits evenly.
        let threads = ThreadPool.shared.threads
        let work = microBatch * time * shape.width * shape.width
        let batchParallel = t.threadParallelism == .batch || (t.threadParallelism == .auto && work < 1 << 26)
        let replicaCount = batchParallel && threads > 1 && microBatch % threads == 0 ? threads : 1
        try Self.checkPrecision(config)
        gpt = GPT(config: shape, maxBatch: microBatch / replicaCount, precision: t.precision)
        replicas = replicaCount > 1 ? GPTReplicas(primary: gpt, count: replicaCount) : nil
        let seed = UInt64(t.seed)
        trainSampler = try WindowSampler(tokens: data.corpus.train, time: time, seed: seed, purpose: 1,
                                         path: data.corpus.path, split: "training")
        validationSampler = try WindowSampler(tokens: data.corpus.validation, time: time, seed: seed, purpose: 2,
                                              path: data.corpus.path, split: "validation")
        inputs = .allocate(capacity: microBatch * time)
        targets = .allocate(capacity: microBatch * time)
    }

    deinit { inputs.deallocate(); targets.deallocate() }

    public func globalTokens(step: Int) -> Int { batchSize * time }

    public func microBatches(step: Int, rank: Int, world: Int) -> Int { batchSize / (world * microBatch) }

    public func trainMicroBatch(step: Int, micro: Int, rank: Int, world: Int, scale: Float, dropoutKey: UInt64) -> (sum: Double, count: Int) {
        let first = rank * (batchSize / world) + micro * microBatch
        trainSampler.fill(inputs: inputs, targets: targets, batch: microBatch, step: step, firstExample: first)
        let dropout = DropoutStream(key: dropoutKey, firstExample: first)
        if let replicas {
            return replicas.trainMicroBatch(tokens: inputs, targets: targets, time: time, dropout: dropout, scale: scale)
        }
        let r = gpt.forward(tokens: inputs, targets: targets, batch: microBatch, time: time, dropout: dropout)
        gpt.backward(tokens: inputs, targets: targets, scale: scale)
        return r
    }

    public var replicaBytes: Int { replicas?.extraBytes ?? 0 }

    /// Mean over `batches` fixed validation batches of each batch's mean loss.
    public func validationPart(batches: Int, rank: Int, world: Int) -> (sum: Double, count: Double) {
        var sum = 0.0, count = 0.0
        var b = rank
        while b < batches {
            validationSampler.fill(inputs: inputs, targets: targets, batch: microBatch, step: b, firstExample: 0)
            let r = replicas?.evaluate(tokens: inputs, targets: targets, time: time)
                ?? gpt.forward(tokens: inputs, targets: targets, batch: microBatch, time: time)
            sum += r.sum / Double(max(r.count, 1)); count += 1
            b += world
        }
        return (sum, count)
    }

    public func validationDescription(batches: Int) -> String { "mean of \(batches) batches" }

    public func describe(world: Int) -> String {
        "\(gpt.layout.count) parameters, vocabulary \(gpt.config.vocabularySize), \(world) rank(s) × "
            + "\(microBatches(step: 0, rank: 0, world: world)) micro-step(s) of \(microBatch) windows of \(time)"
            + (replicas.map { " (\($0.count) thread replicas of \($0.batchPerReplica))" } ?? "")
    }
}

/// The encoder-decoder on sentence pairs: each step's global batch is one token-count batch
/// (fairseq's max-tokens, length-bucketed, reshuffled every epoch by the seed); rank r takes pairs
/// r·n/W ..< (r+1)·n/W of it, in micro-batches of at most `micro_batch_size` pairs. Sequences:
/// source = tokens + [end]; decoder input = [begin] + tokens; target = tokens + [end].
public final class TranslationTask: TrainingTask {
    public let transformer: EncoderDecoder
    public var model: TrainableModel { transformer }
    let train: ParallelCorpus, validation: ParallelCorpus
    let begin: Int32, end: Int32
    let maxTokens: Int, maxSentences: Int, microBatch: Int, seed: UInt64
    let labelSmoothing: Float
    /// The epoch's batches (pair indices, the same every epoch) and the current epoch's order of
    /// them, reshuffled in place at an epoch boundary (no allocation in the step loop).
    private let batches: [[Int]]
    private var order: [Int]
    private var epoch = -1
    private let trainLengths: (source: [Int], target: [Int])
    private let validationBatches: [[Int]]
    let source: UnsafeMutablePointer<Int32>, sourceLengths: UnsafeMutablePointer<Int32>
    let targetInput: UnsafeMutablePointer<Int32>, targetOutput: UnsafeMutablePointer<Int32>

    public init(config: LoomConfig, train: ParallelCorpus, validation: ParallelCorpus, tokenizer: Tokenizer,
                begin: Int32, end: Int32) throws {
        let m = config.model, t = config.training
        self.train = train; self.validation = validation; self.begin = begin; self.end = end
        maxTokens = t.maxTokens > 0 ? t.maxTokens : Int.max
        maxSentences = t.batchSize
        microBatch = t.microBatchSize
        seed = UInt64(t.seed)
        labelSmoothing = Float(t.labelSmoothing)
        let shape = try config.encoderDecoderConfig(vocabularySize: tokenizer.vocabularySize)
        try Self.checkPrecision(config)
        transformer = EncoderDecoder(config: shape, maxBatch: microBatch, precision: t.precision)
        func lengths(_ c: ParallelCorpus) -> (source: [Int], target: [Int]) {
            ((0..<c.count).map { c.pairs.sourceOffsets[$0 + 1] - c.pairs.sourceOffsets[$0] + 1 },
             (0..<c.count).map { c.pairs.targetOffsets[$0 + 1] - c.pairs.targetOffsets[$0] + 1 })
        }
        let l = lengths(train)
        trainLengths = l
        if let i = l.source.indices.first(where: { max(l.source[$0], l.target[$0]) > m.contextLength }) {
            throw ConfigError(file: "config", key: "model.context_length",
                              message: "training pair \(i) needs \(max(l.source[i], l.target[i])) positions, more than \(m.contextLength); raise it or filter long pairs")
        }
        let v = lengths(validation), size = microBatch
        let byLength = (0..<validation.count).sorted { max(v.source[$0], v.target[$0]) < max(v.source[$1], v.target[$1]) }
        validationBatches = stride(from: 0, to: byLength.count, by: size).map { Array(byLength[$0..<min($0 + size, byLength.count)]) }
        let capacity = microBatch * m.contextLength
        source = .allocate(capacity: capacity); sourceLengths = .allocate(capacity: microBatch)
        targetInput = .allocate(capacity: capacity); targetOutput = .allocate(capacity: capacity)
        batches = try TokenBatcher.sortedBatches(sourceLengths: l.source, targetLengths: l.target,
                                                 maxTokens: maxTokens, maxSentences: t.batchSize, seed: seed)
        guard !batches.isEmpty else {
            throw ConfigError(file: "config", key: "data.shards", message: "the training corpus has no pairs")
        }
        order = [Int](repeating: 0, count: batches.count)   // filled by batch(step:) for each epoch
    }

    deinit { source.deallocate(); sourceLengths.deallocate(); targetInput.deallocate(); targetOutput.deallocate() }

    /// The global batch of `step`: batch step mod n of epoch step / n (n batches per epoch, the
    /// same every epoch), so the order depends only on the seed and the step, also after a resume.
    func batch(step: Int) -> [Int] {
        let e = step / stepsPerEpoch
        if e != epoch {
            TokenBatcher.epochOrder(&order, seed: seed, epoch: e)
            epoch = e
        }
        return batches[order[step % stepsPerEpoch]]
    }

    /// Global batches in one epoch (steps until the data order repeats with a new shuffle).
    public var stepsPerEpoch: Int { batches.count }

    func share(_ pairs: [Int], rank: Int, world: Int) -> ArraySlice<Int> {
        pairs[(rank * pairs.count / world)..<((rank + 1) * pairs.count / world)]
    }

    public func globalTokens(step: Int) -> Int { batch(step: step).reduce(0) { $0 + trainLengths.target[$1] } }

    public func microBatches(step: Int, rank: Int, world: Int) -> Int {
        (share(batch(step: step), rank: rank, world: world).count + microBatch - 1) / microBatch
    }

    /// Fills the (B, S) source, (B) lengths and (B, T) decoder input / target for `pairs`, reading
    /// the tokens straight from the (memory-mapped) corpus.
    func fill(_ corpus: ParallelCorpus, _ pairs: ArraySlice<Int>) -> (B: Int, S: Int, T: Int) {
        let so = corpus.pairs.sourceOffsets, to = corpus.pairs.targetOffsets
        var S = 1, T = 1
        for i in pairs { S = max(S, so[i + 1] - so[i] + 1); T = max(T, to[i + 1] - to[i] + 1) }
        let B = pairs.count
        source.update(repeating: 0, count: B * S)
        targetInput.update(repeating: 0, count: B * T)
        targetOutput.update(repeating: -1, count: B * T)
        for (b, i) in pairs.enumerated() {
            let n = so[i + 1] - so[i], m = to[i + 1] - to[i]
            for k in 0..<n { source[b * S + k] = corpus.source[so[i] + k] }
            source[b * S + n] = end
            sourceLengths[b] = Int32(n + 1)
            targetInput[b * T] = begin
            for k in 0..<m {
                let token = corpus.target[to[i] + k]
                targetInput[b * T + k + 1] = token; targetOutput[b * T + k] = token
            }
            targetOutput[b * T + m] = end
        }
        return (B, S, T)
    }

    public func trainMicroBatch(step: Int, micro: Int, rank: Int, world: Int, scale: Float, dropoutKey: UInt64) -> (sum: Double, count: Int) {
        let all = batch(step: step), mine = share(all, rank: rank, world: world)
        let lo = mine.startIndex + micro * microBatch, hi = min(lo + microBatch, mine.endIndex)
        let (B, S, T) = fill(train, mine[lo..<hi])
        let r = transformer.forward(source: source, sourceLengths: sourceLengths, targetInput: targetInput,
                                    targetOutput: targetOutput, batch: B, sourceLength: S, targetLength: T,
                                    labelSmoothing: labelSmoothing, dropout: DropoutStream(key: dropoutKey, firstExample: lo))
        transformer.backward(scale: scale)
        return r
    }

    /// Σ loss and Σ tokens over the whole validation set (no label smoothing: the true NLL).
    public func validationPart(batches: Int, rank: Int, world: Int) -> (sum: Double, count: Double) {
        var sum = 0.0, count = 0.0
        for (i, pairs) in validationBatches.enumerated() where i % world == rank {
            let (B, S, T) = fill(validation, pairs[...])
            let r = transformer.forward(source: source, sourceLengths: sourceLengths, targetInput: targetInput,
                                        targetOutput: targetOutput, batch: B, sourceLength: S, targetLength: T)
            sum += r.sum; count += Double(r.count)
        }
        return (sum, count)
    }

    public func validationDescription(batches: Int) -> String { "\(validation.count) validation pairs, per target token, no smoothing" }

    public func describe(world: Int) -> String {
        "\(transformer.layout.count) parameters, vocabulary \(transformer.config.vocabularySize), \(train.count) training pairs, "
            + "batches of ≤ \(maxSentences) pairs / \(maxTokens == Int.max ? "any" : "\(maxTokens)") tokens over \(world) rank(s), micro-batches of ≤ \(microBatch)"
    }
}
