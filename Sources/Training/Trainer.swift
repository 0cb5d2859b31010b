// Trainer: the training loop — data, forward/backward over micro-batches, gradient all-reduce,
// clipping, AdamW at the scheduled rate, logging and validation — driven by the config. It talks
// to peers only through a Communicator.
import Foundation
import Kernels
import Models
import Data
import Distributed
import CSignals
import Support

public struct TrainingSummary {
    public var steps: Int
    /// The step this process started from (the checkpoint's after a resume, else 0).
    public var firstStep: Int
    /// Why the loop ended: all steps done, --stop-after, or a stop request.
    public var stopReason: StopReason
    /// The mean training loss of the last step, nil when this process ran none.
    public var lastTrainingLoss: Double?
    /// The validation loss measured after the last step; nil when none ran there
    /// (`evaluation.at_end: false`, or a pause).
    public var finalValidationLoss: Double?
    /// The newest validation pass of this run: (step after which it ran, loss); nil when none ran.
    public var lastValidation: (step: Int, loss: Double)?
    /// The newest checkpoint this process wrote (coordinator only).
    public var checkpoint: String?
    public var trainingSeconds: Double
    public var tokensPerSecond: Double
    /// SHA-256 (hex) of the final parameters, checked equal on every rank.
    public var parameterHash: String?
    /// Stopped early by --stop-after (a checkpoint, no final model).
    public var paused: Bool { stopReason == .paused }
}

/// The clocks and running sums of one `train()`: training time, the window of steps since the
/// last log line, the newest validation pass.
struct RunMeter {
    let start = monotonicSeconds()
    let firstTokens: Int
    var trainingSeconds = 0.0, lastStepSeconds = 0.0
    var lastLoss: Double?
    var lastValidation: (step: Int, loss: Double)?
    var lastCheckpoint: String?
    var windowStart = monotonicSeconds(), windowSteps = 0, windowLoss = 0.0, windowTokens = 0.0

    init(firstTokens: Int) { self.firstTokens = firstTokens }

    mutating func time<T>(_ body: () -> T) -> T {
        let t0 = monotonicSeconds()
        defer { lastStepSeconds = monotonicSeconds() - t0; trainingSeconds += lastStepSeconds }
        return body()
    }

    mutating func add(loss: Double, tokens: Int) {
        lastLoss = loss
        windowSteps += 1; windowLoss += loss; windowTokens += Double(tokens)
    }

    /// Tokens per second over the window so far.
    var windowRate: Double { windowTokens / max(monotonicSeconds() - windowStart, 1e-9) }

    mutating func resetWindow() { windowStart = monotonicSeconds(); windowSteps = 0; windowLoss = 0; windowTokens = 0 }

    /// Tokens per second of training time, over this process's steps.
    func tokensPerSecond(_ state: TrainingState) -> Double {
        Double(state.tokensSeen - firstTokens) / max(trainingSeconds, 1e-9)
    }
}

public final class Trainer {
    public let config: LoomConfig
    /// The model and its data (GPT on windows, or the encoder-decoder on sentence pairs).
    public let task: TrainingTask
    public var model: TrainableModel { task.model }
    /// The GPT, when the task trains one (sampling, benchmarks).
    public var gpt: GPT? { (task as? LanguageModelTask)?.gpt }
    public let optimizer: AdamW
    /// When to log, validate, save and stop, the learning rate, and the state a checkpoint restores.
    public let schedule: TrainingSchedule
    public let communicator: Communicator
    /// The gradient all-reduce, bucket by bucket, overlapped with backward.
    public let buckets: GradientBuckets
    /// Where the coordinator logs and saves; nil for benchmarks.
    public var run: RunDirectory?
    let progress: Progress

    /// ZeRO-1 (`distributed.shard_optimizer` on more than one rank): the parameter slices, and this
    /// rank's slice of the summed gradients, which the buckets reduce-scatter into; nil unsharded.
    public let slices: ParameterSlices?
    let sliceGradients: FlatBuffer?   // (slices.range(rank).count) summed gradients of this rank's slice

    /// The step's sums over ranks: loss, tokens, stop requests and (sharded) the squared gradient norm.
    private var reduction = [Double](repeating: 0, count: 4)
    private var broadcastSlot = [Double](repeating: 0, count: 1)
    /// Step counter, skip counts, plateau and best-validation state (what a checkpoint restores).
    public var state: TrainingState {
        get { schedule.state }
        set { schedule.state = newValue }
    }
    /// Where the coordinator writes checkpoints; nil = no checkpoints (benchmarks, tests).
    public var checkpoints: CheckpointStore?
    /// Stop cleanly after this step with a checkpoint (training in chunks; resume tests).
    public var stopAfterStep: Int? {
        get { schedule.stopAfterStep }
        set { schedule.stopAfterStep = newValue }
    }
    /// This rank's stop request, read once per step after its micro-batches: by default whether
    /// SIGTERM, SIGINT or SIGUSR1 arrived.
    public var stopSignal: () -> Bool = { loom_stop_signal() != 0 }
    /// Which engine runs each product shape (`kernels.gemm`); nil for the default `loom` in fp32. Planned
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
        let o = config.optimizer
        let model = task.model
        // The default, Loom's kernel (or OpenBLAS without AVX-512) in fp32, needs no plan: bf16
        // products and the other engines are planned.
        gemm = config.kernels.gemm == .loom && config.training.precision == .fp32 ? nil
            : GemmPlan(selection: config.kernels.gemm)
        let sharded = config.distributed.shardOptimizer && communicator.worldSize > 1
        slices = sharded ? ParameterSlices(count: model.layout.count, world: communicator.worldSize) : nil
        let sliceGradients = slices.map { FlatBuffer(count: $0.counts[communicator.rank]) }
        self.sliceGradients = sliceGradients
        optimizer = AdamW(layout: model.layout, slice: slices?.range(communicator.rank), beta1: Float(o.beta1), beta2: Float(o.beta2),
                          epsilon: Float(o.epsilon), weightDecay: Float(o.weightDecay))
        schedule = TrainingSchedule(config: config)
        buckets = GradientBuckets(groups: model.layout.groups.map(\.range),
                                  bucketBytes: Int(config.distributed.bucketMegabytes * 1048576),
                                  gradients: model.gradients.pointer, communicator: communicator,
                                  overlap: config.distributed.overlap,
                                  sharding: slices.map { GradientBuckets.Sharding(slices: $0, sliceGradients: sliceGradients!.pointer) })
        let groupStarts = model.layout.groups.map(\.range.lowerBound)
        model.onGroupReady = { [buckets] group in buckets.ready(from: groupStarts[group]) }
        model.onBackwardProgress = { [buckets] in buckets.progress() }

        // Every rank must run the same config and binary on the same data; rank 0 initialises,
        // everyone receives.
        try ReplicaCheck.sameRun(config: config, data: communicator.worldSize > 1 ? DataFingerprint.files(config: config) : [],
                                 communicator: communicator)
        if communicator.isCoordinator { model.initialize(seed: UInt64(config.training.seed)) }
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
        /// The global gradient's L2 norm before clipping (NaN when not finite or not computed).
        public var gradientNorm: Double

        public init(loss: Double, updated: Bool, stopRequested: Bool, gradientNorm: Double = .nan) {
            self.loss = loss; self.updated = updated; self.stopRequested = stopRequested; self.gradientNorm = gradientNorm
        }
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
        let (result, shapes) = GemmPlan.record(fallback: gemm.fp32Fallback) { optimizerStep(step, learningRate: learningRate, stopSignal: stopSignal) }
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
            // Sharded, each rank holds only its slice's gradients: their sums of squares travel with
            // the loss (a non-finite gradient anywhere makes the sum non-finite on every rank).
            if let g = sliceGradients { reduction[3] = VectorOps.sumOfSquares(g.pointer, count: g.count) }
            reduction.withUnsafeMutableBufferPointer { communicator.allReduceSum($0.baseAddress!, count: slices == nil ? 3 : 4) }
        }
        let loss = reduction[0] / max(reduction[1], 1)
        let stop = reduction[2] > 0
        let norm = slices == nil ? Profiler.measure(.optimizer) { GradientClipping.norm(model.gradients) } : Float(reduction[3].squareRoot())
        if !loss.isFinite || !norm.isFinite {
            return StepResult(loss: loss, updated: false, stopRequested: stop, gradientNorm: Double(norm))
        }
        let factor = GradientClipping.factor(norm: norm, maxNorm: Float(config.optimizer.gradientClip))
        if let slices, let sliceGradients {
            // ZeRO-1: this rank updates its slice, then every rank's slice reaches every rank.
            Profiler.measure(.optimizer) {
                optimizer.step(parameters: model.parameters, sliceGradients: sliceGradients.pointer,
                               learningRate: Float(learningRate), gradientScale: factor)
            }
            Profiler.measure(.communication) { communicator.allGatherInPlace(model.parameters.pointer, counts: slices.counts) }
        } else {
            Profiler.measure(.optimizer) {
                optimizer.step(parameters: model.parameters, gradients: model.gradients, learningRate: Float(learningRate),
                               gradientScale: factor)
            }
        }
        model.parametersDidChange()
        return StepResult(loss: loss, updated: true, stopRequested: stop, gradientNorm: Double(norm))
    }

    /// The accuracy of the last `evaluate` (masked-token accuracy for BERT), the same on every
    /// rank; nil for tasks that measure none.
    public private(set) var lastValidationAccuracy: Double?

    /// The validation loss (the task decides over which batches), the same on every rank.
    public func evaluate(batches: Int) -> Double {
        if Gemm.plan !== gemm { Gemm.plan = gemm }
        defer { gemm?.planUnplanned() }
        let part = task.validationPart(batches: batches, rank: communicator.rank, world: communicator.worldSize)
        reduction[0] = part.sum; reduction[1] = part.count; reduction[2] = task.lastValidationCorrect ?? 0
        reduction.withUnsafeMutableBufferPointer { communicator.allReduceSum($0.baseAddress!, count: 3) }
        lastValidationAccuracy = task.lastValidationCorrect == nil ? nil : reduction[2] / max(reduction[1], 1)
        return reduction[0] / max(reduction[1], 1)
    }

    /// The coordinator's learning rate for `step`, broadcast so every rank uses rank 0's value.
    public func learningRate(at step: Int) -> Double {
        if communicator.isCoordinator { broadcastSlot[0] = schedule.rate(at: step) }
        broadcastSlot.withUnsafeMutableBytes { communicator.broadcast($0.baseAddress!, bytes: 8, root: 0) }
        return broadcastSlot[0]
    }

    /// Continues from a checkpoint: rank 0 reads and verifies it, every rank receives the weights,
    /// AdamW moments (sharded: its slice of them) and state (as its encoded bytes). Shapes that
    /// differ from the config are an error naming the tensor. The file holds the whole buffer's
    /// moments either way, so a run resumes on any rank count, sharded or not.
    public func resume(from path: String) throws {
        var saved: Data?, failure: Error?
        // Sharded, rank 0 reads the moments into full-size buffers for the time of the scatter.
        let whole = slices != nil && communicator.isCoordinator ? OptimizerMoments(count: model.layout.count) : nil
        if communicator.isCoordinator {
            do {
                saved = try CheckpointStore.load(path, model: model, moments: whole ?? OptimizerMoments(m: optimizer.m, v: optimizer.v)).encoded()
            } catch { failure = error }
        }
        let received = ReplicaCheck.broadcastFromCoordinator(saved, communicator: communicator)
        if let failure { throw failure }
        guard let received else {
            throw CheckpointError(path: path, message: "rank 0 could not load this checkpoint (see its error)")
        }
        if let slices {
            communicator.broadcast(model.parameters.pointer, bytes: model.parameters.bytes, root: 0)
            communicator.scatter(whole?.m.pointer, counts: slices.counts, into: optimizer.m.pointer, root: 0)
            communicator.scatter(whole?.v.pointer, counts: slices.counts, into: optimizer.v.pointer, root: 0)
        } else {
            for buffer in [model.parameters, optimizer.m, optimizer.v] {
                communicator.broadcast(buffer.pointer, bytes: buffer.bytes, root: 0)
            }
        }
        model.parametersDidChange()
        state = state.continuing(from: try TrainingState(encoded: received))
        optimizer.updates = state.optimizerUpdates
    }

    /// Writes a checkpoint of the current state (coordinator only; others return nil).
    @discardableResult
    func saveCheckpoint() throws -> String? {
        schedule.willSave()
        let moments = gatherMoments()
        guard communicator.isCoordinator, let checkpoints else { return nil }
        state.optimizerUpdates = optimizer.updates
        let path = try checkpoints.save(model: model, optimizer: optimizer, moments: moments, state: state, config: config,
                                        worldSize: communicator.worldSize)
        progress.report(.checkpoint(step: state.step, path: path))
        return path
    }

    /// Sharded, every rank's slice of the AdamW moments, gathered into full-size buffers on the
    /// coordinator when it is about to save (they live until the checkpoint is written); nil
    /// unsharded, on other ranks, and when the coordinator has no checkpoint store. Every rank
    /// calls it at the same step: rank 0 says whether it saves.
    func gatherMoments() -> OptimizerMoments? {
        guard let slices else { return nil }
        var saving: UInt8 = communicator.isCoordinator && checkpoints != nil ? 1 : 0
        communicator.broadcast(&saving, bytes: 1, root: 0)
        guard saving == 1 else { return nil }
        let whole = communicator.isCoordinator ? OptimizerMoments(count: model.layout.count) : nil
        communicator.gather(optimizer.m.pointer, counts: slices.counts, into: whole?.m.pointer, root: 0)
        communicator.gather(optimizer.v.pointer, counts: slices.counts, into: whole?.v.pointer, root: 0)
        return whole
    }

    /// Under a bare `mpirun`, a SIGTERM to mpirun reaches the ranks `odls_base_sigkill_timeout`
    /// seconds later and is followed by SIGKILL as long again; when that leaves less than a step
    /// (and its checkpoint), says how to stop with a checkpoint.
    func warnIfMpirunWouldKillBeforeACheckpoint(stepSeconds: Double) {
        guard communicator.isCoordinator, let deadline = Launch.secondsBeforeKillAfterTerm, deadline < 2 * stepSeconds else { return }
        progress.report(.killDeadline(stepSeconds: stepSeconds, deadlineSeconds: deadline,
                                      suggestedTimeout: Int((10 * stepSeconds + 30).rounded(.up))))
    }

    /// Trains from `state.step` to `training.steps`, logging, validating and checkpointing when
    /// the schedule says; saves the final model. Throws `Preempted` after checkpointing when any
    /// rank was signalled to stop, and `TrainingError.nonfinite` when too many steps in a row failed.
    public func train() throws -> TrainingSummary {
        schedule.begin()
        var meter = RunMeter(firstTokens: state.tokensSeen)
        while schedule.keepGoing {
            let step = state.step, tokens = task.inputTokens(step: step)
            communicator.beginStep(step)
            let rate = learningRate(at: step)
            let result = meter.time { trainStep(step, learningRate: rate, stopSignal: stopSignal) }
            if schedule.finished(step: result, tokens: tokens) {
                progress.report(.skipped(step: state.step, inARow: state.nonfiniteInARow))
            }
            try schedule.checkNonfiniteSteps()
            if state.step == schedule.firstStep + 1 { warnIfMpirunWouldKillBeforeACheckpoint(stepSeconds: meter.lastStepSeconds) }
            meter.add(loss: result.loss, tokens: tokens)
            report(step: result, learningRate: rate, meter: &meter)
            if schedule.shouldValidate { validate(lastLoss: result.loss, learningRate: rate, meter: &meter) }
            if schedule.shouldSave, let path = try saveCheckpoint() { meter.lastCheckpoint = path }
        }
        return try finish(meter)
    }

    /// The progress line (and metrics record) when the schedule says, else a redrawn status.
    private func report(step result: StepResult, learningRate rate: Double, meter: inout RunMeter) {
        let total = schedule.totalSteps, tokensPerStep = meter.windowTokens / Double(meter.windowSteps)
        let remaining = Double(total - state.step) * tokensPerStep
        if schedule.shouldLog {
            let perSecond = meter.windowRate, meanLoss = meter.windowLoss / Double(meter.windowSteps)
            if communicator.isCoordinator {
                run?.log(["step": state.step, "train_loss": meanLoss, "lr": rate, "tokens": state.tokensSeen,
                          "elapsed_s": monotonicSeconds() - meter.start, "tokens_per_s": perSecond,
                          "grad_norm": result.gradientNorm])
                progress.status(step: state.step, total: total, loss: meanLoss, learningRate: rate, tokensPerSecond: perSecond,
                                remainingSeconds: remaining / perSecond, line: true)
            }
            meter.resetWindow()
        } else if communicator.isCoordinator, progress.isTerminal {
            let perSecond = meter.windowRate
            progress.status(step: state.step, total: total, loss: result.loss, learningRate: rate, tokensPerSecond: perSecond,
                            remainingSeconds: remaining / perSecond, line: false)
        }
    }

    /// A validation pass after this step: logged, shown, and handed to the schedule (plateau).
    private func validate(lastLoss: Double, learningRate rate: Double, meter: inout RunMeter) {
        let loss = evaluate(batches: config.evaluation.batches)
        meter.lastValidation = (state.step, loss)
        let lowered = schedule.validated(loss: loss)
        if communicator.isCoordinator {
            if lowered { progress.report(.plateau(step: state.step, scale: state.plateau.scale)) }
            run?.log(["step": state.step, "train_loss": lastLoss, "lr": rate, "tokens": state.tokensSeen,
                      "elapsed_s": monotonicSeconds() - meter.start, "tokens_per_s": meter.tokensPerSecond(state),
                      "val_loss": loss, "val_accuracy": lastValidationAccuracy as Any])
            progress.report(.validation(step: state.step, loss: loss, accuracy: lastValidationAccuracy,
                                        covers: task.validationDescription(batches: config.evaluation.batches)))
        }
        meter.windowStart = monotonicSeconds()
    }

    /// After the loop: a pause returns, a stop request throws `Preempted`, a finished run checks
    /// that every rank holds the same parameters and the coordinator writes the final model.
    private func finish(_ meter: RunMeter) throws -> TrainingSummary {
        let reason = schedule.stopReason ?? .completed
        var summary = TrainingSummary(steps: state.step, firstStep: schedule.firstStep, stopReason: reason,
                                      lastTrainingLoss: meter.lastLoss, finalValidationLoss: state.validationLoss,
                                      lastValidation: meter.lastValidation, checkpoint: meter.lastCheckpoint,
                                      trainingSeconds: meter.trainingSeconds, tokensPerSecond: meter.tokensPerSecond(state))
        switch reason {
        case .paused:
            run?.close()
            progress.report(.paused(step: state.step))
        case .preempted:
            run?.close()
            throw Preempted(step: state.step, checkpoint: checkpoints.map { $0.directory + "/" + CheckpointStore.name(step: state.step) })
        case .completed:
            summary.parameterHash = try ReplicaCheck.identicalParameters(model.parameters, communicator: communicator)
            if communicator.isCoordinator, let run {
                try Safetensors.write(run.modelPath, layout: model.layout, buffer: model.parameters,
                                      metadata: ["format": "pt", "loom": model.kind, "step": "\(state.step)"])
                run.close()
            }
        }
        // A run resumed at its last step runs no pass: its checkpoint's validation loss is the final one.
        return summary
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

extension Preempted {
    /// The `--json` summary of a preempted run.
    public var fields: [String: Any] {
        ["event": "summary", "stop_reason": StopReason.preempted.rawValue, "steps": step, "checkpoint": checkpoint ?? NSNull()]
    }
}

extension TrainingError {
    /// The `--json` summary of a run stopped by non-finite steps (no checkpoint of that state).
    public var fields: [String: Any] {
        switch self {
        case let .nonfinite(steps, lastStep):
            return ["event": "summary", "stop_reason": "nonfinite", "steps": lastStep, "nonfinite_in_a_row": steps,
                    "error": description]
        }
    }
}
