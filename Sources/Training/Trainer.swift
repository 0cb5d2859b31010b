// Trainer: the training loop — data, forward/backward over micro-batches, gradient all-reduce,
// clipping, AdamW at the scheduled rate, logging and validation — driven by the config. It is not
// the model (Models) nor the transport (Distributed): it talks to peers only via a Communicator.
import Foundation
import Kernels
import Models
import Data
import Distributed

/// Monotonic seconds.
public func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

public struct TrainingSummary {
    public var steps: Int
    public var finalValidationLoss: Double?
    public var trainingSeconds: Double
    public var tokensPerSecond: Double
    /// SHA-256 (hex) of the final parameters, checked equal on every rank.
    public var parameterHash: String?
}

public final class Trainer {
    public let config: LoomConfig
    public let model: GPT
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public let communicator: Communicator
    /// The gradient all-reduce, bucket by bucket, overlapped with backward.
    public let buckets: GradientBuckets
    let trainSampler: WindowSampler
    let validationSampler: WindowSampler
    /// Where the coordinator logs and saves; nil for benchmarks.
    public var run: RunDirectory?
    let progress: Progress

    /// Sequences per forward/backward, and micro-steps per optimizer step on this rank.
    public let microBatch: Int
    public let microSteps: Int
    let time: Int
    let inputs: UnsafeMutablePointer<Int32>    // (microBatch, T)
    let targets: UnsafeMutablePointer<Int32>   // (microBatch, T)
    private var reduction = [Double](repeating: 0, count: 2)
    /// Steps whose loss or gradient was not finite (update skipped).
    public private(set) var skippedSteps = 0

    public init(config: LoomConfig, data: PreparedData, communicator: Communicator,
                run: RunDirectory?, progress: Progress) throws {
        self.config = config
        self.communicator = communicator
        self.run = run
        self.progress = progress
        let t = config.training
        let world = communicator.worldSize
        guard t.batchSize % (world * t.microBatchSize) == 0 else {
            throw ConfigError(file: "config", key: "training.batch_size",
                              message: "\(t.batchSize) is not divisible by ranks (\(world)) × micro_batch_size (\(t.microBatchSize))"
                              + (t.batchSize % world == 0 ? "; e.g. --set training.micro_batch_size=\(t.batchSize / world)" : ""))
        }
        microBatch = t.microBatchSize
        microSteps = t.batchSize / (world * t.microBatchSize)
        time = config.model.contextLength
        let gpt = config.gptConfig(vocabularySize: data.tokenizer.vocabularySize)
        guard gpt.vocabularySize >= data.tokenizer.vocabularySize else {
            throw ConfigError(file: "config", key: "model.vocabulary_size",
                              message: "\(gpt.vocabularySize) is smaller than the tokenizer's \(data.tokenizer.vocabularySize)")
        }
        model = GPT(config: gpt, maxBatch: microBatch)
        let o = config.optimizer
        optimizer = AdamW(layout: model.layout, beta1: Float(o.beta1), beta2: Float(o.beta2),
                          epsilon: Float(o.epsilon), weightDecay: Float(o.weightDecay))
        schedule = LearningRateSchedule(kind: .init(rawValue: config.schedule.kind)!, peak: o.learningRate,
                                        minimum: config.schedule.minimumLearningRate,
                                        warmupSteps: config.schedule.warmupSteps, totalSteps: t.steps)
        let seed = UInt64(t.seed)
        trainSampler = try WindowSampler(tokens: data.corpus.train, time: time, seed: seed, purpose: 1,
                                         path: data.corpus.path, split: "training")
        validationSampler = try WindowSampler(tokens: data.corpus.validation, time: time, seed: seed, purpose: 2,
                                              path: data.corpus.path, split: "validation")
        inputs = .allocate(capacity: microBatch * time)
        targets = .allocate(capacity: microBatch * time)
        buckets = GradientBuckets(groups: model.layout.groups.map(\.range),
                                  bucketBytes: Int(config.distributed.bucketMegabytes * 1048576),
                                  gradients: model.gradients.pointer, communicator: communicator,
                                  overlap: config.distributed.overlap)
        let groupStarts = model.layout.groups.map(\.range.lowerBound)
        model.onGroupReady = { [buckets] group in buckets.ready(from: groupStarts[group]) }
        model.onBackwardProgress = { [buckets] in buckets.progress() }

        // Every rank must run the same config and binary; rank 0 initialises, everyone receives.
        try ReplicaCheck.sameRun(config: config, communicator: communicator)
        if communicator.isCoordinator { model.initialize(seed: seed) }
        communicator.broadcast(model.parameters.pointer, bytes: model.parameters.bytes, root: 0)
    }

    deinit { inputs.deallocate(); targets.deallocate() }

    /// One optimizer step at `step` (0-based): returns the mean training loss over the global batch.
    public func trainStep(_ step: Int, learningRate: Double) -> Double {
        let world = communicator.worldSize, perRank = config.training.batchSize / world
        let scale = Float(1.0 / Double(config.training.batchSize * time))
        let dropoutKey = CounterRandom.key(UInt64(config.training.seed), 3, UInt64(step))
        VectorOps.zero(model.gradients.pointer, count: model.gradients.count)
        var lossSum = 0.0, counted = 0
        for micro in 0..<microSteps {
            // Rank r's share of the global batch: examples r·perRank ..< (r+1)·perRank, in micro-batches.
            let first = communicator.rank * perRank + micro * microBatch
            if micro == microSteps - 1 { buckets.arm() }
            trainSampler.fill(inputs: inputs, targets: targets, batch: microBatch, step: step, firstExample: first)
            let (sum, count) = model.forward(tokens: inputs, targets: targets, batch: microBatch, time: time,
                                             dropout: DropoutStream(key: dropoutKey, firstExample: first))
            lossSum += sum; counted += count
            model.backward(tokens: inputs, targets: targets, scale: scale)
        }
        Profiler.measure(.communication) {
            buckets.finish()
            reduction[0] = lossSum; reduction[1] = Double(counted)
            reduction.withUnsafeMutableBufferPointer { communicator.allReduceSum($0.baseAddress!, count: 2) }
        }
        let loss = reduction[0] / max(reduction[1], 1)
        let norm = Profiler.measure(.optimizer) {
            GradientClipping.clip(model.gradients, maxNorm: Float(config.optimizer.gradientClip))
        }
        if !loss.isFinite || !norm.isFinite {
            skippedSteps += 1
            return loss
        }
        Profiler.measure(.optimizer) {
            optimizer.step(parameters: model.parameters, gradients: model.gradients, learningRate: Float(learningRate))
        }
        return loss
    }

    /// Mean validation loss over `batches` fixed batches (the same ones at every evaluation).
    public func evaluate(batches: Int) -> Double {
        var sum = 0.0, count = 0
        var b = communicator.rank
        while b < batches {
            validationSampler.fill(inputs: inputs, targets: targets, batch: microBatch, step: b, firstExample: 0)
            let r = model.forward(tokens: inputs, targets: targets, batch: microBatch, time: time)
            sum += r.sum / Double(max(r.count, 1)); count += 1
            b += communicator.worldSize
        }
        reduction[0] = sum; reduction[1] = Double(count)
        reduction.withUnsafeMutableBufferPointer { communicator.allReduceSum($0.baseAddress!, count: 2) }
        return reduction[0] / max(reduction[1], 1)
    }

    /// Trains for `training.steps` steps, logging and validating as configured; saves the model.
    public func train() throws -> TrainingSummary {
        let total = config.training.steps
        let tokensPerStep = Double(config.training.batchSize * time)
        let logEvery = config.logging.interval, evalEvery = config.evaluation.interval
        let start = monotonicSeconds()
        var trainingSeconds = 0.0, lastValidation: Double?
        var windowStart = monotonicSeconds(), windowSteps = 0, windowLoss = 0.0
        var step = 0
        while step < total {
            let lr = schedule.rate(at: step)
            let t0 = monotonicSeconds()
            let loss = trainStep(step, learningRate: lr)
            trainingSeconds += monotonicSeconds() - t0
            step += 1
            windowSteps += 1; windowLoss += loss

            let isLast = step == total
            if step % logEvery == 0 || isLast || step == 1 {
                let now = monotonicSeconds()
                let rate = Double(windowSteps) * tokensPerStep / max(now - windowStart, 1e-9)
                let meanLoss = windowLoss / Double(windowSteps)
                if communicator.isCoordinator {
                    run?.log(["step": step, "train_loss": meanLoss, "lr": lr, "tokens": Int(Double(step) * tokensPerStep),
                              "elapsed_s": now - start, "tokens_per_s": rate])
                    progress.status(step: step, total: total, loss: meanLoss, learningRate: lr, tokensPerSecond: rate,
                                    remainingSeconds: Double(total - step) * tokensPerStep / rate, line: true)
                }
                windowStart = monotonicSeconds(); windowSteps = 0; windowLoss = 0
            } else if communicator.isCoordinator, progress.isTerminal {
                let rate = Double(windowSteps) * tokensPerStep / max(monotonicSeconds() - windowStart, 1e-9)
                progress.status(step: step, total: total, loss: loss, learningRate: lr, tokensPerSecond: rate,
                                remainingSeconds: Double(total - step) * tokensPerStep / rate, line: false)
            }
            if (evalEvery > 0 && step % evalEvery == 0) || isLast {
                let validation = evaluate(batches: config.evaluation.batches)
                lastValidation = validation
                if communicator.isCoordinator {
                    run?.log(["step": step, "train_loss": loss, "lr": lr, "tokens": Int(Double(step) * tokensPerStep),
                              "elapsed_s": monotonicSeconds() - start, "tokens_per_s": Double(step) * tokensPerStep / trainingSeconds,
                              "val_loss": validation])
                    progress.message(String(format: "step %d: val loss %.4f (mean of %d batches)", step, validation,
                                            config.evaluation.batches))
                }
                windowStart = monotonicSeconds()
            }
        }
        let hash = try ReplicaCheck.identicalParameters(model.parameters, communicator: communicator)
        if communicator.isCoordinator, let run {
            try Safetensors.write(run.modelPath, layout: model.layout, buffer: model.parameters,
                                  metadata: ["format": "pt", "loom": "gpt", "step": "\(step)"])
            run.close()
        }
        return TrainingSummary(steps: step, finalValidationLoss: lastValidation, trainingSeconds: trainingSeconds,
                               tokensPerSecond: Double(step) * tokensPerStep / max(trainingSeconds, 1e-9),
                               parameterHash: hash)
    }
}
