// Trainer: the training loop — data, forward/backward over micro-batches, gradient all-reduce,
// clipping, AdamW at the scheduled rate, logging and validation — driven by the config. It is not
// the model (Models) nor the transport (Distributed): it talks to peers only via a Communicator.
import Foundation
import Kernels
import Models
import Data
import Distributed
import CSignals

/// Monotonic seconds.
public func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

public struct TrainingSummary {
    public var steps: Int
    /// The validation loss measured after the last step; nil when none ran there
    /// (`evaluation.at_end: false`, or a pause).
    public var finalValidationLoss: Double?
    /// The newest validation pass of this run: (step after which it ran, loss); nil when none ran.
    public var lastValidation: (step: Int, loss: Double)?
    public var trainingSeconds: Double
    public var tokensPerSecond: Double
    /// SHA-256 (hex) of the final parameters, checked equal on every rank.
    public var parameterHash: String?
    /// Stopped early by --stop-after (a checkpoint, no final model).
    public var paused = false
}

public final class Trainer {
    public let config: LoomConfig
    /// The model and its data (GPT on windows, or the encoder-decoder on sentence pairs).
    public let task: TrainingTask
    public var model: TrainableModel { task.model }
    /// The GPT, when the task trains one (sampling, benchmarks).
    public var gpt: GPT? { (task as? LanguageModelTask)?.gpt }
    public let optimizer: AdamW
    public let schedule: LearningRateSchedule
    public let communicator: Communicator
    /// The gradient all-reduce, bucket by bucket, overlapped with backward.
    public let buckets: GradientBuckets
    /// Where the coordinator logs and saves; nil for benchmarks.
    public var run: RunDirectory?
    let progress: Progress

    private var reduction = [Double](repeating: 0, count: 3)
    private var broadcastSlot = [Double](repeating: 0, count: 1)
    /// Step counter, skip counts, plateau and best-validation state (what a checkpoint restores).
    public var state = TrainingState()
    /// Where the coordinator writes checkpoints; nil = no checkpoints (benchmarks, tests).
    public var checkpoints: CheckpointStore?
    /// Stop cleanly after this step with a checkpoint (training in chunks; resume tests).
    public var stopAfterStep: Int?
    /// Which engine runs each product shape (`kernels.gemm`); nil for `openblas` in fp32. Planned
    /// after this trainer's first step, which records the shapes, and again after any step or
    /// evaluation that met new ones; set as `Gemm.plan` before each step.
    public let gemm: GemmPlan?
    private var gemmPlanned = false
    /// Steps whose loss or gradient was not finite (update skipped).
    public var skippedSteps: Int { state.skippedSteps }

    /// A GPT language-model run on `data`.
    public convenience init(config: LoomConfig, data: PreparedData, communicator: Communicator,
                            run: RunDirectory?, progress: Progress) throws {
        try self.init(config: config, task: LanguageModelTask(config: config, data: data, world: communicator.worldSize),
                      communicator: communicator, run: run, progress: progress)
    }

    public init(config: LoomConfig, task: TrainingTask, communicator: Communicator,
                run: RunDirectory?, progress: Progress) throws {
        self.config = config
        self.task = task
        self.communicator = communicator
        self.run = run
        self.progress = progress
        let t = config.training, o = config.optimizer
        let model = task.model
        // bf16 products run on oneDNN primitives whatever the fp32 engine, so bf16 always plans.
        gemm = config.kernels.gemm == .openblas && config.training.precision == .fp32 ? nil
            : GemmPlan(selection: config.kernels.gemm)
        optimizer = AdamW(layout: model.layout, beta1: Float(o.beta1), beta2: Float(o.beta2),
                          epsilon: Float(o.epsilon), weightDecay: Float(o.weightDecay))
        schedule = LearningRateSchedule(kind: config.schedule.kind, peak: o.learningRate,
                                        minimum: config.schedule.minimumLearningRate,
                                        warmupSteps: config.schedule.warmupSteps, totalSteps: t.steps,
                                        width: config.model.width, cooldownSteps: config.schedule.cooldownSteps)
        state.plateau = ReduceOnPlateau(factor: config.schedule.plateauFactor, patience: config.schedule.plateauPatience,
                                        minimumScale: config.schedule.minimumLearningRate / o.learningRate)
        buckets = GradientBuckets(groups: model.layout.groups.map(\.range),
                                  bucketBytes: Int(config.distributed.bucketMegabytes * 1048576),
                                  gradients: model.gradients.pointer, communicator: communicator,
                                  overlap: config.distributed.overlap)
        let groupStarts = model.layout.groups.map(\.range.lowerBound)
        model.onGroupReady = { [buckets] group in buckets.ready(from: groupStarts[group]) }
        model.onBackwardProgress = { [buckets] in buckets.progress() }

        // Every rank must run the same config and binary on the same data; rank 0 initialises,
        // everyone receives.
        try ReplicaCheck.sameRun(config: config, data: communicator.worldSize > 1 ? DataFingerprint.files(config: config) : [],
                                 communicator: communicator)
        if communicator.isCoordinator { model.initialize(seed: UInt64(t.seed)) }
        communicator.broadcast(model.parameters.pointer, bytes: model.parameters.bytes, root: 0)
        model.parametersDidChange()
    }

    /// What one optimizer step reports back.
    public struct StepResult {
        /// Mean training loss over the global batch.
        public var loss: Double
        /// False when the loss or gradient was not finite and the update was skipped.
        public var updated: Bool
        /// Some rank was asked to stop (SIGTERM/SIGINT/SIGUSR1): every rank sees the same answer.
        public var stopRequested: Bool
    }

    /// One optimizer step at `step` (0-based). This rank's stop request (`stopSignal`, read once
    /// the micro-batches are done, so a signal during the step counts for this step) is summed
    /// with the loss: all ranks agree on it at the same step boundary.
    public func trainStep(_ step: Int, learningRate: Double, stopSignal: () -> Bool = { false }) -> StepResult {
        if Gemm.plan !== gemm { Gemm.plan = gemm }
        guard let gemm, !gemmPlanned else {
            defer { gemm?.planUnplanned() }
            return optimizerStep(step, learningRate: learningRate, stopSignal: stopSignal)
        }
        // The first step runs on OpenBLAS and records the product shapes; then the plan is made.
        gemmPlanned = true
        let (result, shapes) = GemmPlan.record { optimizerStep(step, learningRate: learningRate, stopSignal: stopSignal) }
        gemm.add(shapes)
        Gemm.plan = gemm
        if communicator.isCoordinator { progress.message("loom train: " + gemm.summary) }
        return result
    }

    private func optimizerStep(_ step: Int, learningRate: Double, stopSignal: () -> Bool) -> StepResult {
        let world = communicator.worldSize, rank = communicator.rank
        let scale = Float(1.0 / Double(max(task.globalTokens(step: step), 1)))
        let dropoutKey = CounterRandom.key(UInt64(config.training.seed), 3, UInt64(step))
        VectorOps.zero(model.gradients.pointer, count: model.gradients.count)
        var lossSum = 0.0, counted = 0
        let micros = task.microBatches(step: step, rank: rank, world: world)
        if micros == 0 { buckets.arm() }   // nothing to compute here, but the reductions must run
        for micro in 0..<micros {
            if micro == micros - 1 { buckets.arm() }
            let (sum, count) = task.trainMicroBatch(step: step, micro: micro, rank: rank, world: world,
                                                    scale: scale, dropoutKey: dropoutKey)
            lossSum += sum; counted += count
        }
        Profiler.measure(.communication) {
            buckets.finish()
            reduction[0] = lossSum; reduction[1] = Double(counted); reduction[2] = stopSignal() ? 1 : 0
            reduction.withUnsafeMutableBufferPointer { communicator.allReduceSum($0.baseAddress!, count: 3) }
        }
        let loss = reduction[0] / max(reduction[1], 1)
        let stop = reduction[2] > 0
        let norm = Profiler.measure(.optimizer) { GradientClipping.norm(model.gradients) }
        if !loss.isFinite || !norm.isFinite {
            return StepResult(loss: loss, updated: false, stopRequested: stop)
        }
        Profiler.measure(.optimizer) {
            optimizer.step(parameters: model.parameters, gradients: model.gradients, learningRate: Float(learningRate),
                           gradientScale: GradientClipping.factor(norm: norm, maxNorm: Float(config.optimizer.gradientClip)))
        }
        model.parametersDidChange()
        return StepResult(loss: loss, updated: true, stopRequested: stop)
    }

    /// The validation loss (the task decides over which batches), the same on every rank.
    public func evaluate(batches: Int) -> Double {
        if Gemm.plan !== gemm { Gemm.plan = gemm }
        defer { gemm?.planUnplanned() }
        let part = task.validationPart(batches: batches, rank: communicator.rank, world: communicator.worldSize)
        reduction[0] = part.sum; reduction[1] = part.count; reduction[2] = 0
        reduction.withUnsafeMutableBufferPointer { communicator.allReduceSum($0.baseAddress!, count: 3) }
        return reduction[0] / max(reduction[1], 1)
    }

    /// The coordinator's learning rate for `step`, broadcast so every rank uses rank 0's value.
    public func learningRate(at step: Int) -> Double {
        if communicator.isCoordinator {
            var rate = schedule.rate(at: step)
            if schedule.kind == .plateau && step >= schedule.warmupSteps { rate *= state.plateau.scale }
            broadcastSlot[0] = rate
        }
        broadcastSlot.withUnsafeMutableBytes { communicator.broadcast($0.baseAddress!, bytes: 8, root: 0) }
        return broadcastSlot[0]
    }

    /// Continues from a checkpoint: rank 0 reads and verifies it, every rank receives the weights,
    /// AdamW moments and state. Shapes that differ from the config are an error naming the tensor.
    public func resume(from path: String) throws {
        var fields = [Double](repeating: 0, count: 10)
        var failure: Error?
        if communicator.isCoordinator {
            do {
                let s = try CheckpointStore.load(path, model: model, optimizer: optimizer)
                fields = [Double(s.step), Double(s.optimizerUpdates), Double(s.skippedSteps), Double(s.nonfiniteInARow),
                          s.plateau.scale, s.plateau.best, Double(s.plateau.badEvaluations),
                          s.validationLoss ?? .nan, s.bestValidationLoss ?? .nan, Double(s.tokensSeen)]
            } catch {
                failure = error
                fields[0] = -1
            }
        }
        fields.withUnsafeMutableBytes { communicator.broadcast($0.baseAddress!, bytes: $0.count, root: 0) }
        if let failure { throw failure }
        guard fields[0] >= 0 else {
            throw CheckpointError(path: path, message: "rank 0 could not load this checkpoint (see its error)")
        }
        for buffer in [model.parameters, optimizer.m, optimizer.v] {
            communicator.broadcast(buffer.pointer, bytes: buffer.bytes, root: 0)
        }
        model.parametersDidChange()
        state.step = Int(fields[0]); state.optimizerUpdates = Int(fields[1])
        state.skippedSteps = Int(fields[2]); state.nonfiniteInARow = Int(fields[3])
        state.plateau.scale = fields[4]; state.plateau.best = fields[5]; state.plateau.badEvaluations = Int(fields[6])
        state.validationLoss = fields[7].isNaN ? nil : fields[7]
        state.bestValidationLoss = fields[8].isNaN ? nil : fields[8]
        state.tokensSeen = Int(fields[9])
        optimizer.updates = state.optimizerUpdates
    }

    /// Writes a checkpoint of the current state (coordinator only; others return nil).
    @discardableResult
    func saveCheckpoint() throws -> String? {
        guard communicator.isCoordinator, let checkpoints else { return nil }
        state.optimizerUpdates = optimizer.updates
        let path = try checkpoints.save(model: model, optimizer: optimizer, state: state, config: config,
                                        worldSize: communicator.worldSize)
        progress.message("checkpoint: \(path)")
        return path
    }

    /// Under a bare `mpirun`, a SIGTERM to mpirun reaches the ranks `odls_base_sigkill_timeout`
    /// seconds later and is followed by SIGKILL as long again; when that leaves less than a step
    /// (and its checkpoint), says how to stop with a checkpoint.
    func warnIfMpirunWouldKillBeforeACheckpoint(stepSeconds: Double) {
        guard communicator.isCoordinator, let deadline = Launch.secondsBeforeKillAfterTerm, deadline < 2 * stepSeconds else { return }
        let suggested = Int((10 * stepSeconds + 30).rounded(.up))
        progress.message(String(format: "note: a step takes %.1f s, but after a SIGTERM to mpirun the ranks have %.0f s "
                                + "(odls_base_sigkill_timeout) before SIGKILL: too little to finish the step and checkpoint. "
                                + "To stop with a checkpoint, send mpirun SIGUSR1, launch with launch/mpirun, or add "
                                + "--mca odls_base_sigkill_timeout %d.", stepSeconds, deadline, suggested))
    }

    /// Trains from `state.step` to `training.steps`, logging, validating and checkpointing as
    /// configured; saves the final model. Throws `Preempted` after checkpointing when any rank
    /// was signalled to stop, and `TrainingError.nonfinite` when too many steps in a row failed.
    public func train() throws -> TrainingSummary {
        let total = config.training.steps
        let logEvery = config.logging.interval, evalEvery = config.evaluation.interval
        let checkpointEvery = config.checkpoint.interval
        let start = monotonicSeconds()
        var trainingSeconds = 0.0, lastValidation: (step: Int, loss: Double)?
        var windowStart = monotonicSeconds(), windowSteps = 0, windowLoss = 0.0, windowTokens = 0.0
        let firstStep = state.step, firstTokens = state.tokensSeen

        while state.step < total {
            let step = state.step
            let lr = learningRate(at: step)
            let stepTokens = Double(task.globalTokens(step: step))
            let t0 = monotonicSeconds()
            let result = trainStep(step, learningRate: lr, stopSignal: { loom_stop_signal() != 0 })
            trainingSeconds += monotonicSeconds() - t0
            state.step += 1
            state.tokensSeen += Int(stepTokens)
            state.validationLoss = nil
            if result.updated {
                state.nonfiniteInARow = 0
            } else {
                state.skippedSteps += 1; state.nonfiniteInARow += 1
                progress.message("step \(state.step): non-finite loss or gradient, update skipped (\(state.nonfiniteInARow) in a row)")
                if state.nonfiniteInARow >= config.training.maximumNonfiniteSteps {
                    throw TrainingError.nonfinite(steps: state.nonfiniteInARow, lastStep: state.step)
                }
            }
            if state.step == firstStep + 1 { warnIfMpirunWouldKillBeforeACheckpoint(stepSeconds: monotonicSeconds() - t0) }
            windowSteps += 1; windowLoss += result.loss; windowTokens += stepTokens
            let tokensPerStep = windowTokens / Double(windowSteps)

            let done = state.step == total
            if state.step % logEvery == 0 || done || state.step == firstStep + 1 {
                let now = monotonicSeconds()
                let rate = windowTokens / max(now - windowStart, 1e-9)
                let meanLoss = windowLoss / Double(windowSteps)
                if communicator.isCoordinator {
                    run?.log(["step": state.step, "train_loss": meanLoss, "lr": lr, "tokens": state.tokensSeen,
                              "elapsed_s": now - start, "tokens_per_s": rate])
                    progress.status(step: state.step, total: total, loss: meanLoss, learningRate: lr, tokensPerSecond: rate,
                                    remainingSeconds: Double(total - state.step) * tokensPerStep / rate, line: true)
                }
                windowStart = monotonicSeconds(); windowSteps = 0; windowLoss = 0; windowTokens = 0
            } else if communicator.isCoordinator, progress.isTerminal {
                let rate = windowTokens / max(monotonicSeconds() - windowStart, 1e-9)
                progress.status(step: state.step, total: total, loss: result.loss, learningRate: lr, tokensPerSecond: rate,
                                remainingSeconds: Double(total - state.step) * tokensPerStep / rate, line: false)
            }
            if (evalEvery > 0 && state.step % evalEvery == 0) || (done && config.evaluation.atEnd) {
                let validation = evaluate(batches: config.evaluation.batches)
                lastValidation = (state.step, validation)
                state.validationLoss = validation
                if communicator.isCoordinator {
                    if schedule.kind == .plateau, state.plateau.observe(validationLoss: validation) {
                        progress.message(String(format: "validation loss stopped improving: learning rate × %.3g", state.plateau.scale))
                    }
                    run?.log(["step": state.step, "train_loss": result.loss, "lr": lr, "tokens": state.tokensSeen,
                              "elapsed_s": monotonicSeconds() - start, "tokens_per_s": Double(state.tokensSeen - firstTokens) / trainingSeconds,
                              "val_loss": validation])
                    progress.message(String(format: "step %d: val loss %.4f (%@)", state.step, validation,
                                            task.validationDescription(batches: config.evaluation.batches)))
                }
                windowStart = monotonicSeconds()
            }
            let pause = state.step == stopAfterStep && !done
            let checkpointDue = (checkpointEvery > 0 && state.step % checkpointEvery == 0) || done || result.stopRequested || pause
            // Never checkpoint a step whose update was skipped for a non-finite loss or gradient.
            if checkpointDue && state.nonfiniteInARow == 0 {
                // "Best" is among checkpoints: only a saved validation loss can become it.
                if let v = state.validationLoss, v <= (state.bestValidationLoss ?? .infinity) { state.bestValidationLoss = v }
                try saveCheckpoint()
            }
            if pause && !result.stopRequested {
                run?.close()
                progress.message("loom train: paused after step \(state.step) as asked (--stop-after); continue with --resume latest")
                return TrainingSummary(steps: state.step, finalValidationLoss: state.validationLoss, lastValidation: lastValidation,
                                       trainingSeconds: trainingSeconds,
                                       tokensPerSecond: Double(state.tokensSeen - firstTokens) / max(trainingSeconds, 1e-9),
                                       parameterHash: nil, paused: true)
            }
            if result.stopRequested && !done {
                run?.close()
                throw Preempted(step: state.step, checkpoint: checkpoints.map { $0.directory + "/" + CheckpointStore.name(step: state.step) })
            }
        }
        let hash = try ReplicaCheck.identicalParameters(model.parameters, communicator: communicator)
        if communicator.isCoordinator, let run {
            try Safetensors.write(run.modelPath, layout: model.layout, buffer: model.parameters,
                                  metadata: ["format": "pt", "loom": model.kind, "step": "\(state.step)"])
            run.close()
        }
        // A run resumed at its last step runs no pass: its checkpoint's validation loss is the final one.
        return TrainingSummary(steps: state.step, finalValidationLoss: state.validationLoss, lastValidation: lastValidation,
                               trainingSeconds: trainingSeconds,
                               tokensPerSecond: Double(state.tokensSeen - firstTokens) / max(trainingSeconds, 1e-9),
                               parameterHash: hash)
    }
}

/// A run stopped by a signal at a step boundary, after the coordinator wrote `checkpoint`.
public struct Preempted: Error, CustomStringConvertible {
    /// Exit status of a preempted run (EX_TEMPFAIL): "try again with --resume latest".
    public static let exitCode: Int32 = 75
    public let step: Int
    public let checkpoint: String?
    public var description: String {
        "stopped by a signal after step \(step)" + (checkpoint.map { "; checkpoint \($0); continue with --resume latest" } ?? "")
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonfinite(steps: Int, lastStep: Int)
    public var description: String {
        switch self {
        case let .nonfinite(steps, lastStep):
            return "\(steps) steps in a row (up to step \(lastStep)) had a non-finite loss or gradient; stopped without writing a checkpoint of that state (lower optimizer.learning_rate or raise training.maximum_nonfinite_steps)"
        }
    }
}
