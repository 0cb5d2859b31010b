// The run in process: a TrainingRun and a Trainer driven by the test on one process (the
// single-process communicator) with a tiny corpus written here — resume after a pause, a stop
// request at a step boundary (checkpoint, Preempted with exit status 75), and the non-finite-step
// rules (skip and count; stop after training.maximum_nonfinite_steps without a poisoned checkpoint).
import Testing
import Foundation
import Distributed
import Data
import Kernels
import Models
import Training
import Support
import TestSupport

/// A scratch directory holding `corpus.txt`: deterministic pseudo-sentences, learnable in a few steps.
func trainingScratch() throws -> String {
    let dir = scratchPath("loom-run-")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var text = "", x: UInt64 = 12345
    let words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ate", "log", "."]
    while text.count < 6000 {
        x = x &* 6364136223846793005 &+ 1442695040888963407
        text += words[Int((x >> 33) % UInt64(words.count))] + ((x >> 20) % 8 == 0 ? "\n" : " ")
    }
    try text.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
    return dir
}

/// A 1-layer GPT on the scratch corpus: 12 steps, checkpoints every 4, validation every 6.
func tinyRunConfig(_ dir: String, _ overrides: [String] = []) throws -> LoomConfig {
    let yaml = """
    model: {layers: 1, heads: 2, width: 16, context_length: 16, dropout: 0.1}
    data: {corpus: \(dir)/corpus.txt}
    training: {steps: 12, batch_size: 4, micro_batch_size: 2, seed: 3, threads: 1}
    optimizer: {learning_rate: 1.0e-2}
    schedule: {kind: cosine, warmup_steps: 2, minimum_learning_rate: 1.0e-3}
    evaluation: {interval: 6, batches: 2}
    logging: {interval: 4}
    checkpoint: {interval: 4, keep: 5}
    """
    ThreadPool.configure(threads: 1)
    return try LoomConfig.parse(yaml: yaml, file: "tiny.yaml", overrides: overrides)
}

func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

func savedSteps(_ run: String) -> [Int] {
    CheckpointStore(run: run, keep: 1).list().compactMap { Int(($0 as NSString).lastPathComponent.dropFirst(5)) }
}

/// A language-model task whose loss is NaN at the steps `poisoned` picks (gradients stay finite).
final class PoisonedTask: TrainingTask {
    let inner: LanguageModelTask
    let poisoned: (Int) -> Bool
    init(_ inner: LanguageModelTask, poisoned: @escaping (Int) -> Bool) { self.inner = inner; self.poisoned = poisoned }
    var model: TrainableModel { inner.model }
    func globalTokens(step: Int) -> Int { inner.globalTokens(step: step) }
    func microBatches(step: Int, rank: Int, world: Int) -> Int { inner.microBatches(step: step, rank: rank, world: world) }
    func trainMicroBatch(step: Int, micro: Int, rank: Int, world: Int, scale: Float, dropoutKey: UInt64) -> (sum: Double, count: Int) {
        let r = inner.trainMicroBatch(step: step, micro: micro, rank: rank, world: world, scale: scale, dropoutKey: dropoutKey)
        return poisoned(step) ? (.nan, r.count) : r
    }
    func validationPart(batches: Int, rank: Int, world: Int) -> (sum: Double, count: Double) {
        inner.validationPart(batches: batches, rank: rank, world: world)
    }
    func describe(world: Int) -> String { inner.describe(world: world) }
    func validationDescription(batches: Int) -> String { inner.validationDescription(batches: batches) }
}

/// A Trainer on `task` writing into run directory `run` (a fresh one).
func trainer(_ config: LoomConfig, task: TrainingTask, run: String) throws -> Trainer {
    let trainer = try Trainer(config: config, task: task, communicator: SingleProcessCommunicator(), run: nil,
                              progress: Progress(mode: .off))
    let directory = try RunDirectory(creating: run)
    try directory.writeStart(config: config, tokenizer: CharacterTokenizer(characters: ["a"]))
    trainer.run = directory
    trainer.checkpoints = CheckpointStore(run: run, keep: config.checkpoint.keep)
    return trainer
}

@Suite(.serialized) struct TrainingRunTests {
    func run(_ config: LoomConfig, _ path: String, resume: ResumeRequest? = nil) throws -> TrainingRun {
        try TrainingRun(config: config, communicator: SingleProcessCommunicator(), directory: path, resume: resume,
                        progress: Progress(mode: .off))
    }

    @Test func aPausedRunResumesBitIdentically() throws {
        let dir = try trainingScratch(), config = try tinyRunConfig(dir)
        let full = try run(config, dir + "/full").train()
        #expect(full.stopReason == .completed && full.steps == 12 && full.firstStep == 0)
        #expect(full.checkpoint == dir + "/full/checkpoints/step-00000012")

        let first = try run(config, dir + "/half").train(stopAfter: 6)
        #expect(first.stopReason == .paused && first.steps == 6 && first.parameterHash == nil)
        #expect(savedSteps(dir + "/half") == [4, 6])
        #expect(fileBytes(dir + "/half/model.safetensors") == nil, "a paused run wrote a final model")

        let second = try run(config, dir + "/half", resume: .latest)
        #expect(second.resumedFrom == dir + "/half/checkpoints/step-00000006")
        #expect(second.trainer.state.step == 6 && second.trainer.state.validationLoss != nil)
        let rest = try second.train()
        #expect(rest.stopReason == .completed && rest.firstStep == 6 && rest.steps == 12)
        #expect(rest.parameterHash == full.parameterHash)
        #expect(fileBytes(dir + "/half/model.safetensors") == fileBytes(dir + "/full/model.safetensors"))
        #expect(fileBytes(dir + "/half/model.safetensors") != nil)
    }

    @Test func resumeAutoStartsFreshWithoutACheckpointAndLatestRefuses() throws {
        let dir = try trainingScratch(), config = try tinyRunConfig(dir)
        #expect(throws: CheckpointError.self) { try run(config, dir + "/none", resume: .latest) }
        let fresh = try run(config, dir + "/auto", resume: .auto)
        #expect(fresh.resumedFrom == nil && fresh.trainer.state.step == 0)
    }

    @Test func aStopRequestCheckpointsAtTheStepBoundaryAndPreempts() throws {
        let dir = try trainingScratch(), config = try tinyRunConfig(dir, ["checkpoint.interval=0"])
        let reference = try run(config, dir + "/reference").train()
        let stopped = try run(config, dir + "/stopped")
        let trainer = stopped.trainer
        // The request arrives during step index 4 (the fifth step): that step finishes and is saved.
        trainer.stopSignal = { trainer.state.step == 4 }
        do {
            _ = try stopped.train()
            Issue.record("a stop request did not stop the run")
        } catch let stop as Preempted {
            #expect(stop.step == 5 && stop.checkpoint == dir + "/stopped/checkpoints/step-00000005")
            #expect(Preempted.exitCode == 75)
        }
        #expect(savedSteps(dir + "/stopped") == [5])
        #expect(fileBytes(dir + "/stopped/model.safetensors") == nil)
        let resumed = try run(config, dir + "/stopped", resume: .latest).train()
        #expect(resumed.firstStep == 5 && resumed.stopReason == .completed && resumed.parameterHash == reference.parameterHash)
    }

    @Test func aNonFiniteStepIsSkippedCountedAndNeverSaved() throws {
        let dir = try trainingScratch(), config = try tinyRunConfig(dir, ["checkpoint.interval=1", "checkpoint.keep=20"])
        let data = try PreparedData(config: config)
        let inner = try LanguageModelTask(config: config, data: data, world: 1)
        let t = try trainer(config, task: PoisonedTask(inner, poisoned: { $0 == 4 }), run: dir + "/run")
        let summary = try t.train()
        #expect(summary.stopReason == .completed && t.state.skippedSteps == 1 && t.state.nonfiniteInARow == 0)
        // Step index 4 is the fifth step: its state is not saved; the next good step is.
        #expect(savedSteps(dir + "/run") == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12])
        #expect(t.optimizer.updates == 11, "AdamW counted the skipped step")
        let saved = try TrainingState(encoded: fileBytes(dir + "/run/checkpoints/step-00000006/state.json") ?? Data())
        #expect(saved.skippedSteps == 1 && saved.optimizerUpdates == 5)
    }

    @Test func tooManyNonFiniteStepsInARowStopWithoutAPoisonedCheckpoint() throws {
        let dir = try trainingScratch()
        let config = try tinyRunConfig(dir, ["checkpoint.interval=1", "training.maximum_nonfinite_steps=3", "checkpoint.keep=20"])
        let data = try PreparedData(config: config)
        let inner = try LanguageModelTask(config: config, data: data, world: 1)
        let t = try trainer(config, task: PoisonedTask(inner, poisoned: { $0 >= 5 }), run: dir + "/run")
        do {
            _ = try t.train()
            Issue.record("the run went on after 3 non-finite steps in a row")
        } catch let TrainingError.nonfinite(steps, lastStep) {
            #expect(steps == 3 && lastStep == 8)
        }
        #expect(t.state.skippedSteps == 3)
        #expect(savedSteps(dir + "/run") == [1, 2, 3, 4, 5], "checkpoints after the first skipped step")
        #expect(fileBytes(dir + "/run/model.safetensors") == nil)
    }
}

@Suite struct TrainingStateTests {
    @Test func travelsAsBytesExactly() throws {
        var state = TrainingState()
        state.step = 123; state.tokensSeen = 1 << 40; state.optimizerUpdates = 120; state.skippedSteps = 3
        state.nonfiniteInARow = 1; state.plateau.scale = 0.1 * 0.5; state.plateau.best = 1 / 3.0
        state.plateau.badEvaluations = 2; state.validationLoss = 2.000000000000001; state.bestValidationLoss = .pi
        #expect(try TrainingState(encoded: state.encoded()) == state)
        // Not finite: the plateau's "no best yet" and a diverged validation loss.
        var fresh = TrainingState()
        fresh.validationLoss = .nan
        let back = try TrainingState(encoded: fresh.encoded())
        #expect(back.plateau.best == .infinity && back.validationLoss == nil && back.step == 0)
    }

    /// A state.json of a Loom 0.4.0 checkpoint as JSONSerialization writes it, with the run's extra keys.
    @Test func readsTheStateFilesOfEarlierCheckpoints() throws {
        let old = """
        {"best_validation_loss":1.75,"config":"model: {}","data_position":{"global_batch":8,"next_step":30,"note":"n"},
         "loom_version":"0.4.0","nonfinite_in_a_row":0,"optimizer_updates":29,
         "schedule":{"kind":"plateau","plateau_bad_evaluations":1,"plateau_best":1.5,"plateau_scale":0.25},
         "seed":11,"skipped_steps":1,"step":30,"tokens_seen":7680,"validation_loss":null,"world_size":2}
        """
        let s = try TrainingState(encoded: Data(old.utf8))
        #expect(s.step == 30 && s.tokensSeen == 7680 && s.optimizerUpdates == 29 && s.skippedSteps == 1)
        #expect(s.plateau.scale == 0.25 && s.plateau.best == 1.5 && s.plateau.badEvaluations == 1)
        #expect(s.validationLoss == nil && s.bestValidationLoss == 1.75)
        let missing = try TrainingState(encoded: Data(#"{"step": 4, "schedule": {"plateau_best": null}}"#.utf8))
        #expect(missing.step == 4 && missing.plateau.best == .infinity && missing.plateau.scale == 1)
    }

    @Test func continuingKeepsTheConfiguredPlateauRule() {
        var configured = TrainingState()
        configured.plateau = ReduceOnPlateau(factor: 0.3, patience: 7, minimumScale: 0.01)
        var saved = TrainingState()
        saved.step = 9; saved.plateau.scale = 0.5; saved.plateau.best = 2; saved.plateau.badEvaluations = 3
        let next = configured.continuing(from: saved)
        #expect(next.step == 9 && next.plateau.scale == 0.5 && next.plateau.best == 2 && next.plateau.badEvaluations == 3)
        #expect(next.plateau.factor == 0.3 && next.plateau.patience == 7 && next.plateau.minimumScale == 0.01)
    }
}

@Suite struct TrainingScheduleTests {
    func schedule(_ overrides: [String] = []) throws -> TrainingSchedule {
        try TrainingSchedule(config: LoomConfig.parse(yaml: """
        model: {layers: 1, heads: 2, width: 16, context_length: 16}
        data: {corpus: corpus.txt}
        training: {steps: 10, batch_size: 4, micro_batch_size: 2, maximum_nonfinite_steps: 2}
        evaluation: {interval: 4, at_end: false}
        logging: {interval: 3}
        checkpoint: {interval: 5}
        """, file: "s.yaml", overrides: overrides))
    }

    func step(_ s: TrainingSchedule, updated: Bool = true, stop: Bool = false) {
        s.finished(step: Trainer.StepResult(loss: 1, updated: updated, stopRequested: stop), tokens: 8)
    }

    @Test func answersWhenToLogValidateAndSave() throws {
        let s = try schedule()
        s.begin()
        var logged: [Int] = [], validated: [Int] = [], saved: [Int] = []
        while s.keepGoing {
            step(s)
            if s.shouldLog { logged.append(s.state.step) }
            if s.shouldValidate { validated.append(s.state.step) }
            if s.shouldSave { saved.append(s.state.step) }
        }
        #expect(logged == [1, 3, 6, 9, 10] && validated == [4, 8] && saved == [5, 10])
        #expect(s.stopReason == .completed && s.state.tokensSeen == 80)
    }

    @Test func aStopRequestOutranksAPauseAndTheLastStepOutranksBoth() throws {
        let s = try schedule()
        s.stopAfterStep = 2
        s.begin()
        step(s)
        #expect(s.keepGoing && !s.shouldSave)
        step(s, stop: true)
        #expect(s.stopReason == .preempted && s.shouldSave && !s.keepGoing)
        let paused = try schedule()
        paused.stopAfterStep = 1
        paused.begin()
        step(paused)
        #expect(paused.stopReason == .paused && paused.shouldSave)
        let last = try schedule(["training.steps=1"])
        last.stopAfterStep = 1
        last.begin()
        step(last, stop: true)
        #expect(last.stopReason == .completed)
    }

    @Test func nonFiniteStepsAreCountedAndTooManyThrow() throws {
        let s = try schedule()
        s.begin()
        step(s, updated: false)
        #expect(s.state.skippedSteps == 1 && s.state.nonfiniteInARow == 1 && !s.shouldSave)
        #expect(throws: Never.self) { try s.checkNonfiniteSteps() }
        step(s)
        #expect(s.state.nonfiniteInARow == 0)
        step(s, updated: false); step(s, updated: false)
        #expect(throws: TrainingError.self) { try s.checkNonfiniteSteps() }
        #expect(s.state.skippedSteps == 3)
    }

    @Test func thePlateauScaleAppliesAfterWarmupOnly() throws {
        let s = try schedule(["schedule.kind=plateau", "schedule.warmup_steps=2", "schedule.plateau_patience=0"])
        s.validated(loss: 2)
        #expect(s.validated(loss: 3))   // no improvement, patience 0: lowered
        let scale = s.state.plateau.scale
        #expect(scale < 1)
        #expect(s.rate(at: 1) == s.learningRate.rate(at: 1))
        #expect(s.rate(at: 5) == s.learningRate.rate(at: 5) * scale)
        let cosine = try schedule()
        #expect(!cosine.validated(loss: 2) && !cosine.validated(loss: 3) && cosine.state.plateau.scale == 1)
    }
}
