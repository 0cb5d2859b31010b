// TrainingRun: one training run from a resolved config — the task its model kind needs, the
// trainer, the resume decision (rank 0 decides, every rank hears it), the run directory with its
// config, tokenizer and model-config.json — then the training itself.
import Foundation
import Data
import Distributed
import Support
import Models
import Kernels

/// Which checkpoint `--resume` asks for.
public enum ResumeRequest: Equatable, Sendable {
    /// The newest valid checkpoint of the run; none is an error.
    case latest
    /// The newest valid checkpoint if there is one, else a fresh start (restarts by a launcher).
    case auto
    /// This checkpoint directory.
    case checkpoint(String)

    /// `latest`, `auto`, or a checkpoint path.
    public init(_ text: String) {
        switch text {
        case "latest": self = .latest
        case "auto": self = .auto
        default: self = .checkpoint(text)
        }
    }
}

extension LoomConfig {
    /// The config trains the encoder-decoder on sentence pairs (`model.kind: transformer`), not a GPT.
    public var trainsTranslation: Bool { model.kind == .transformer }
}

/// A model with its data, as the config's model kind wants it.
public struct PreparedTask {
    public let task: TrainingTask
    public let tokenizer: Tokenizer
    /// Tokens held in memory for a language model (training + validation); 0 for translation.
    public let tokenCount: Int

    /// GPT on a corpus, BERT on the same kind of corpus (`model.kind: bert`), or the encoder-decoder
    /// on parallel shards (`model.kind: transformer`).
    public init(config: LoomConfig, world: Int) throws {
        if config.trainsTranslation {
            let data = try PreparedTranslationData(config: config)
            tokenizer = data.tokenizer
            tokenCount = 0
            task = try TranslationTask(config: config, train: data.train, validation: data.validation,
                                       tokenizer: data.tokenizer, begin: data.begin, end: data.end)
        } else {
            let data = try PreparedData(config: config)
            tokenizer = data.tokenizer
            tokenCount = data.tokenCount
            task = config.model.kind == .bert ? try MaskedLanguageModelTask(config: config, data: data, world: world)
                : try LanguageModelTask(config: config, data: data, world: world)
        }
    }
}

public final class TrainingRun {
    public let config: LoomConfig
    public let communicator: Communicator
    /// The run directory (written by rank 0 only).
    public let path: String
    public let prepared: PreparedTask
    public let trainer: Trainer
    /// The checkpoint this run continues from (rank 0's path; nil for a fresh start).
    public private(set) var resumedFrom: String?
    let progress: Progress

    /// Builds the task and trainer, resumes when `resume` finds a checkpoint, and (rank 0) opens
    /// the run directory: nothing is written before everything is validated.
    public init(config: LoomConfig, communicator: Communicator, directory: String, resume: ResumeRequest?,
                progress: Progress) throws {
        self.communicator = communicator
        communicator.setCollectiveTimeout(seconds: config.distributed.timeoutSeconds,
                                          firstStepSeconds: config.distributed.firstStepTimeoutSeconds)
        self.path = directory
        self.progress = progress
        prepared = try PreparedTask(config: config, world: communicator.worldSize)
        // The resolved config states the vocabulary the tokenizer decided (config.yaml, state.json).
        var resolved = config
        resolved.model = config.model.withVocabularySize(try config.resolvedVocabulary(tokenizer: prepared.tokenizer.vocabularySize))
        self.config = resolved
        trainer = try Trainer(config: resolved, task: prepared.task, communicator: communicator, run: nil, progress: progress)
        if try resumeIfAsked(resume) {
            progress.report(.resumed(step: trainer.state.step, checkpoint: resumedFrom ?? "rank 0's checkpoint"))
        } else {
            try initializeFromHuggingFace()
        }
        if communicator.isCoordinator { try openDirectory(replacing: resume == .auto) }
    }

    /// Rank 0 chooses the checkpoint (it reads the files) and tells the others whether there is
    /// one; then every rank loads it. Returns whether the run resumed.
    private func resumeIfAsked(_ resume: ResumeRequest?) throws -> Bool {
        if communicator.isCoordinator, let resume {
            resumedFrom = try Self.chooseCheckpoint(resume, run: path, keep: config.checkpoint.keep)
        }
        var resuming: UInt8 = resumedFrom == nil ? 0 : 1
        communicator.broadcast(&resuming, bytes: 1, root: 0)
        guard resuming == 1 else { return false }
        try trainer.resume(from: resumedFrom ?? "")
        return true
    }

    /// `model.init_from`: rank 0 reads the Hugging Face GPT-2 weights over the random ones (an
    /// error naming the file and tensor leaves the model untouched), every rank receives them.
    private func initializeFromHuggingFace() throws {
        guard case let .gpt(shape) = config.model, let directory = shape.initFrom,
              let gpt = (prepared.task as? LanguageModelTask)?.gpt else { return }
        var failure: Error?
        if communicator.isCoordinator {
            do { try HuggingFaceGPT2.loadWeights(directory: directory, into: gpt) } catch { failure = error }
        }
        var loaded: UInt8 = failure == nil ? 1 : 0
        communicator.broadcast(&loaded, bytes: 1, root: 0)
        if let failure { throw failure }
        guard loaded == 1 else { throw HuggingFaceError(file: directory, message: "rank 0 could not read these weights (see its error)") }
        communicator.broadcast(gpt.parameters.pointer, bytes: gpt.parameters.bytes, root: 0)
        gpt.parametersDidChange()
    }

    /// The checkpoint to continue from, or nil to start fresh (`auto` without one). A damaged
    /// checkpoint met on the way is skipped with a warning on stderr.
    public static func chooseCheckpoint(_ resume: ResumeRequest, run: String, keep: Int) throws -> String? {
        switch resume {
        case .latest, .auto:
            let store = CheckpointStore(run: run, keep: keep)
            if let found = store.newestValid(warn: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) { return found }
            if resume == .auto { return nil }
            throw CheckpointError(path: store.directory, message: "no valid checkpoint to resume from (start without --resume, or use --resume auto)")
        case let .checkpoint(path):
            try CheckpointStore.verify(path)
            return path
        }
    }

    /// The run directory: created (or reopened after the checkpoint's step), the resolved config
    /// and tokenizer written, the checkpoint store attached, and for the encoder-decoder the
    /// model-config.json that `loom translate RUN` reads the model's shape from.
    private func openDirectory(replacing: Bool) throws {
        let run: RunDirectory
        if resumedFrom != nil {
            run = try RunDirectory(resuming: path, afterStep: trainer.state.step)
            try run.writeConfigAndTokenizer(config: config, tokenizer: prepared.tokenizer)
        } else {
            run = try RunDirectory(creating: path, replacing: replacing)
            try run.writeStart(config: config, tokenizer: prepared.tokenizer)
        }
        for leftover in run.clearedTemporaries { progress.report(.removedTemporary(path: leftover)) }
        if config.logging.tensorboard {
            run.tensorboard = try TensorBoardEvents(directory: path + "/tensorboard",
                                                    resumingAt: resumedFrom == nil ? nil : trainer.state.step + 1)
        }
        trainer.run = run
        trainer.checkpoints = CheckpointStore(run: path, keep: config.checkpoint.keep)
        if let t = prepared.task as? TranslationTask {
            try EncoderDecoderFile(config: t.transformer.config).write(path + "/" + EncoderDecoderFile.fileName)
        }
    }

    /// The start-up lines that describe the run (batch layout, threads, precision).
    public func describe(threads: Int) {
        progress.message("loom train: \(prepared.task.describe(world: communicator.worldSize)), \(threads) thread(s) per rank, run dir \(path)")
        if prepared.task.model.precision == .bf16 {
            progress.message("loom train: training.precision bf16: matrix products on bf16 operands with fp32 accumulation"
                             + " (\(BF16Gemm.available ? "Loom's \(BF16Gemm.implementation) kernel or " : "")oneDNN \(OneDNN.implementation(bf16: true) ?? "?"), as kernels.gemm chooses)"
                             + ", fp32 master weights, optimizer and loss")
        }
    }

    /// Trains to `training.steps`, or to `stopAfter` (a pause with a checkpoint). Throws
    /// `Preempted` after the stop-request checkpoint, `TrainingError` after too many non-finite steps.
    public func train(stopAfter: Int? = nil) throws -> TrainingSummary {
        trainer.stopAfterStep = stopAfter
        return try trainer.train()
    }

    /// The final model's path (written by rank 0 when the run completes).
    public var modelPath: String { trainer.run?.modelPath ?? path }
}

extension TrainingSummary {
    /// The summary's validation clause: the loss after the last step, or why there is none.
    public func validationText(_ evaluation: EvaluationSection) -> String {
        if let loss = finalValidationLoss { return String(format: "final val loss %.4f", loss) }
        if let last = lastValidation {
            return String(format: "no validation after the last step (evaluation.at_end: false; val loss %.4f after step %d)", last.loss, last.step)
        }
        if evaluation.interval == 0 { return "no validation (evaluation.interval: 0, evaluation.at_end: false)" }
        return "no validation (evaluation.at_end: false, and no step of this run was a multiple of evaluation.interval \(evaluation.interval))"
    }

    /// The `--json` summary object (`event: summary`): steps, losses, why the run stopped, the
    /// newest checkpoint, throughput and the parameter hash all ranks agreed on.
    public func fields(_ evaluation: EvaluationSection, ranks: Int, model: String?) -> [String: Any] {
        func value(_ x: Any?) -> Any { x ?? NSNull() }
        return ["event": "summary", "steps": steps, "first_step": firstStep, "stop_reason": stopReason.rawValue,
                "train_loss": value(lastTrainingLoss.flatMap { $0.isFinite ? $0 : nil }),
                "val_loss": value(finalValidationLoss), "last_val_loss": value(lastValidation?.loss),
                "last_val_step": value(lastValidation?.step), "validation": validationText(evaluation),
                "checkpoint": value(checkpoint), "model": value(model), "training_s": trainingSeconds,
                "tokens_per_s": tokensPerSecond, "ranks": ranks, "parameter_sha256": value(parameterHash)]
    }
}
