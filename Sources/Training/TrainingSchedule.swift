// TrainingSchedule: when a run logs, validates, saves and stops, after Marian's Scheduler. It holds
// the run's TrainingState and answers from it and the config: `keepGoing`, `shouldLog`,
// `shouldValidate`, `shouldSave`, the learning rate of the next step (with the plateau's scale),
// and the rules for a stop request, a pause (--stop-after) and non-finite steps.
import Foundation

/// Why a run left its loop.
public enum StopReason: String, Codable, Sendable {
    /// `training.steps` are done.
    case completed
    /// --stop-after: a checkpoint, no final model; continue with --resume latest.
    case paused
    /// A stop request (SIGTERM/SIGINT/SIGUSR1) at a step boundary: a checkpoint, exit 75.
    case preempted
}

public final class TrainingSchedule {
    /// Step counter, skip counts, plateau and best-validation state (what a checkpoint restores).
    public var state = TrainingState()
    /// The rate's formula over the steps, before the plateau's scale.
    public let learningRate: LearningRateSchedule
    public let totalSteps: Int
    /// Stop cleanly after this step with a checkpoint (training in chunks; resume tests).
    public var stopAfterStep: Int?
    /// Why the loop must end after the step just finished; nil while it goes on.
    public private(set) var stopReason: StopReason?
    let logInterval: Int, validationInterval: Int, checkpointInterval: Int
    let validateAtEnd: Bool
    let maximumNonfiniteSteps: Int
    /// The step this run (process) started from: its first step is always logged.
    public private(set) var firstStep = 0

    public init(config: LoomConfig) {
        let o = config.optimizer, s = config.schedule
        totalSteps = config.training.steps
        learningRate = LearningRateSchedule(kind: s.kind, peak: o.learningRate, minimum: s.minimumLearningRate,
                                            warmupSteps: s.warmupSteps, totalSteps: totalSteps,
                                            width: config.model.width, cooldownSteps: s.cooldownSteps)
        state.plateau = ReduceOnPlateau(factor: s.plateauFactor, patience: s.plateauPatience,
                                        minimumScale: s.minimumLearningRate / o.learningRate)
        logInterval = config.logging.interval
        validationInterval = config.evaluation.interval
        checkpointInterval = config.checkpoint.interval
        validateAtEnd = config.evaluation.atEnd
        maximumNonfiniteSteps = config.training.maximumNonfiniteSteps
    }

    /// Marks where this process starts (after a resume, the checkpoint's step).
    public func begin() {
        firstStep = state.step
        stopReason = state.step < totalSteps ? nil : .completed
    }

    /// Whether another step runs.
    public var keepGoing: Bool { stopReason == nil && state.step < totalSteps }

    /// The step just finished is the last of `training.steps`.
    public var done: Bool { state.step == totalSteps }

    /// The rate of step `step` (0-based): the formula's, times the plateau's scale once warmup ends.
    public func rate(at step: Int) -> Double {
        let rate = learningRate.rate(at: step)
        return learningRate.kind == .plateau && step >= learningRate.warmupSteps ? rate * state.plateau.scale : rate
    }

    /// Counts a finished step of `tokens` target tokens: a skipped update adds to the non-finite
    /// counts, a stop request or the --stop-after step ends the loop. Returns whether the update
    /// was skipped.
    @discardableResult
    public func finished(step result: Trainer.StepResult, tokens: Int) -> Bool {
        state.step += 1
        state.tokensSeen += tokens
        state.validationLoss = nil
        if result.updated {
            state.nonfiniteInARow = 0
        } else {
            state.skippedSteps += 1; state.nonfiniteInARow += 1
        }
        if result.stopRequested && !done { stopReason = .preempted }
        else if state.step == stopAfterStep && !done { stopReason = .paused }
        else if done { stopReason = .completed }
        return !result.updated
    }

    /// Throws once `training.maximum_nonfinite_steps` steps in a row were skipped: the run stops
    /// without a checkpoint of that state.
    public func checkNonfiniteSteps() throws {
        if state.nonfiniteInARow >= maximumNonfiniteSteps {
            throw TrainingError.nonfinite(steps: state.nonfiniteInARow, lastStep: state.step)
        }
    }

    /// A progress line and a metrics record: every `logging.interval` steps, the last step and
    /// this process's first.
    public var shouldLog: Bool { state.step % logInterval == 0 || done || state.step == firstStep + 1 }

    /// A validation pass: every `evaluation.interval` steps (0 = never) and after the last step
    /// when `evaluation.at_end`.
    public var shouldValidate: Bool {
        (validationInterval > 0 && state.step % validationInterval == 0) || (done && validateAtEnd)
    }

    /// A checkpoint: every `checkpoint.interval` steps (0 = never), at the end, and before stopping
    /// for a request or a pause; never of a step whose update was skipped (a poisoned state).
    public var shouldSave: Bool {
        let due = (checkpointInterval > 0 && state.step % checkpointInterval == 0) || done || stopReason != .none
        return due && state.nonfiniteInARow == 0
    }

    /// Takes a validation loss: the plateau rule may lower the rate (returns true then).
    @discardableResult
    public func validated(loss: Double) -> Bool {
        state.validationLoss = loss
        return learningRate.kind == .plateau && state.plateau.observe(validationLoss: loss)
    }

    /// Before a save: "best" is among checkpoints, so only a saved validation loss can become it.
    public func willSave() {
        if let v = state.validationLoss, v <= (state.bestValidationLoss ?? .infinity) { state.bestValidationLoss = v }
    }
}
