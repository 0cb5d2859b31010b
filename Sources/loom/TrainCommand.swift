// TrainCommand: `loom train CONFIG [--set key=value]… [--run-dir DIR]`. It is not the loop
// itself (Training.Trainer).
import ArgumentParser
import Foundation
import Training
import Models
import Data
import Kernels
import Distributed
import CSignals

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a model from a YAML config.")

    @Argument(help: "The YAML config (see configs/).") var config: String
    @Option(name: .customLong("set"), help: "Override a config key by its dotted path, e.g. training.steps=100.")
    var overrides: [String] = []
    @Option(name: .customLong("run-dir"), help: "Where the run's files go (default: runs/NAME-TIMESTAMP).")
    var runDirectory: String?
    @Option(name: .customLong("resume"), help: ArgumentHelp(
        "Continue from a checkpoint: 'latest' (the newest valid one of --run-dir), 'auto' (latest if there is one, else start fresh: for restarts), or a checkpoint directory.",
        valueName: "latest|auto|PATH"))
    var resume: String?
    @Option(name: .customLong("stop-after"), help: "Stop cleanly after this step, with a checkpoint (continue later with --resume latest).")
    var stopAfter: Int?
    @Flag(name: .long, help: "Print only errors and the final summary.") var quiet = false

    func run() throws {
        try reportingErrors {
            // First of all: a stop request during start-up (loading data, building the model) is
            // kept and honoured after the first step, instead of killing the process.
            loom_install_stop_handlers()
            // The binary, its libraries and the runtime, before anything is read: the memory plan's base.
            let start = ProcessMemory.residentBytes()
            let job = try joinJob()
            let config = try LoomConfig.load(path: config, overrides: overrides)
            ThreadPool.configure(threads: threadsPerRank(configured: config.training.threads, job: job))
            let progress = Training.Progress(enabled: !quiet && job.isCoordinator)
            let tokenizer: Tokenizer
            let task: TrainingTask
            var tokens = 0
            if config.model.kind == .transformer {
                let data = try PreparedTranslationData(config: config)
                tokenizer = data.tokenizer
                task = try TranslationTask(config: config, train: data.train, validation: data.validation,
                                           tokenizer: data.tokenizer, begin: data.begin, end: data.end)
            } else {
                let data = try PreparedData(config: config)
                tokenizer = data.tokenizer
                tokens = data.tokenCount
                task = try LanguageModelTask(config: config, data: data, world: job.worldSize)
            }
            let trainer = try Trainer(config: config, task: task, communicator: job, run: nil, progress: progress)
            // Which checkpoint to continue from: rank 0 decides (it reads the files) and tells the others.
            let path = try runPath()
            var checkpoint: String?
            if job.isCoordinator, let resume {
                checkpoint = try chooseCheckpoint(resume, run: path, keep: config.checkpoint.keep, progress: progress)
            }
            var resuming: UInt8 = checkpoint == nil ? 0 : 1
            job.broadcast(&resuming, bytes: 1, root: 0)
            if resuming == 1 {
                try trainer.resume(from: checkpoint ?? "")
                progress.message("loom train: resuming from \(checkpoint ?? "rank 0's checkpoint") at step \(trainer.state.step)")
            }
            // Everything is validated; only now is anything written, and only by rank 0.
            if job.isCoordinator {
                let run: RunDirectory
                if resuming == 1 {
                    run = try RunDirectory(resuming: path, afterStep: trainer.state.step)
                    try run.writeConfigAndTokenizer(config: config, tokenizer: tokenizer)
                } else {
                    run = try RunDirectory(creating: path, replacing: resume == "auto")
                    try run.writeStart(config: config, tokenizer: tokenizer)
                }
                for leftover in run.clearedTemporaries {
                    progress.message("loom train: removed \(leftover), left half-written by a Loom process that died")
                }
                trainer.run = run
                trainer.checkpoints = CheckpointStore(run: path, keep: config.checkpoint.keep)
                // `loom translate RUN` (or a checkpoint of it) reads the model's shape from here.
                if let t = task as? TranslationTask {
                    try EncoderDecoderFile(config: t.transformer.config).write(path + "/" + EncoderDecoderFile.fileName)
                }
            }
            progress.message(BLASStartup.summary())
            progress.message("loom train: \(task.describe(world: job.worldSize)), \(ThreadPool.shared.threads) thread(s) per rank, run dir \(path)")
            if task.model.precision == .bf16 {
                progress.message("loom train: training.precision bf16: matrix products on bf16 operands with fp32 accumulation"
                                 + " (oneDNN \(OneDNN.implementation(bf16: true) ?? "?")), fp32 master weights, optimizer and loss")
            }
            trainer.stopAfterStep = stopAfter
            let summary: TrainingSummary
            do { summary = try trainer.train() } catch let stop as Preempted {
                if job.isCoordinator { FileHandle.standardError.write(Data("loom train: \(stop)\n".utf8)) }
                job.finish()
                throw ExitCode(Preempted.exitCode)
            }
            if summary.paused {
                job.finish()
                return
            }
            if job.isCoordinator {
                print(String(format: "done: %d steps, %@, training time %.1f s (%.0f tokens/s), model %@",
                             summary.steps, validationText(summary, config.evaluation), summary.trainingSeconds,
                             summary.tokensPerSecond, trainer.run?.modelPath ?? path))
                let memory = MemoryPlan(trainer: trainer, start: start, tokens: tokens)
                print(String(format: "memory: peak RSS %.1f MiB, %.2f× the plan of %.1f MiB (parameters, gradients, AdamW moments, activations, replicas, tokens, process at start)",
                             Double(memory.peakRSS) / 1048576, memory.ratio, Double(memory.planned) / 1048576))
                if job.worldSize > 1, let hash = summary.parameterHash {
                    print("replicas: \(job.worldSize) ranks hold bit-identical parameters (sha256 \(hash.prefix(16))…)")
                }
            }
            job.finish()
        }
    }

    /// The summary's validation clause: the loss after the last step, or why there is none.
    func validationText(_ summary: TrainingSummary, _ evaluation: EvaluationSection) -> String {
        if let loss = summary.finalValidationLoss { return String(format: "final val loss %.4f", loss) }
        if let last = summary.lastValidation {
            return String(format: "no validation after the last step (evaluation.at_end: false; val loss %.4f after step %d)", last.loss, last.step)
        }
        if evaluation.interval == 0 { return "no validation (evaluation.interval: 0, evaluation.at_end: false)" }
        return "no validation (evaluation.at_end: false, and no step of this run was a multiple of evaluation.interval \(evaluation.interval))"
    }

    /// --run-dir, or the run a checkpoint path belongs to (RUN/checkpoints/step-N), or a new name.
    func runPath() throws -> String {
        if let runDirectory { return runDirectory }
        if let resume, resume != "latest", resume != "auto" {
            return PathName.directory(of: PathName.directory(of: PathName.absolute(resume)))
        }
        if resume != nil { throw ValidationError("--resume \(resume!) needs --run-dir RUN (the run to continue)") }
        return defaultRunDirectory()
    }

    /// The checkpoint to continue from, or nil to start fresh (`auto` without one).
    func chooseCheckpoint(_ resume: String, run: String, keep: Int, progress: Training.Progress) throws -> String? {
        switch resume {
        case "latest", "auto":
            let store = CheckpointStore(run: run, keep: keep)
            if let found = store.newestValid(warn: { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) { return found }
            if resume == "auto" { return nil }
            throw CheckpointError(path: store.directory, message: "no valid checkpoint to resume from (start without --resume, or use --resume auto)")
        default:
            try CheckpointStore.verify(resume)
            return resume
        }
    }

    func defaultRunDirectory() -> String {
        let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(name)-\(formatter.string(from: Date()))"
    }
}
