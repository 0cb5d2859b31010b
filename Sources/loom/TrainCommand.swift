// TrainCommand: `loom train CONFIG [--set key=value]… [--run-dir DIR] [--init-from DIR] [--json]`: parses the
// arguments, hands the run to Training.TrainingRun and prints its summary as text or JSON. It is
// not the run itself (TrainingRun) nor the loop (Trainer).
import ArgumentParser
import Foundation
import Training
import Data
import Kernels
import CSignals
import Support

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
    @Option(name: .customLong("init-from"), help: ArgumentHelp(
        "Start the GPT from a Hugging Face GPT-2 directory (config.json, model.safetensors, tokenizer): the same as --set model.init_from=DIR.",
        valueName: "DIR"))
    var initFrom: String?
    @Flag(name: .long, help: "Print only errors and the final summary.") var quiet = false
    @Flag(name: .long, help: "Print JSON lines instead of text: one object per event (log, validation, checkpoint, …) and a final summary.")
    var json = false

    func run() throws {
        try reportingErrors {
            // First of all: a stop request during start-up (loading data, building the model) is
            // kept and honoured after the first step, instead of killing the process.
            loom_install_stop_handlers()
            // The binary, its libraries and the runtime, before anything is read: the memory plan's base.
            let start = ProcessMemory.residentBytes()
            let job = try joinJob()
            let config = try LoomConfig.load(path: config, overrides: overrides + (initFrom.map { ["model.init_from=\($0)"] } ?? []))
            let path = try runPath()
            ThreadPool.configure(threads: threadsPerRank(configured: config.training.threads, job: job))
            let progress = Training.Progress(mode: quiet || !job.isCoordinator ? .off : json ? .json : .text)
            let run = try TrainingRun(config: config, communicator: job, directory: path, resume: resume.map(ResumeRequest.init),
                                      progress: progress)
            progress.message(BLASStartup.summary())
            run.describe(threads: ThreadPool.shared.threads)
            let summary: TrainingSummary
            do { summary = try run.train(stopAfter: stopAfter) } catch let stop as Preempted {
                if job.isCoordinator {
                    FileHandle.standardError.write(Data("loom train: \(stop)\n".utf8))
                    if json { Progress.printJSON(stop.fields) }
                }
                job.finish()
                throw ExitCode(Preempted.exitCode)
            } catch let error as TrainingError {
                if job.isCoordinator && json { Progress.printJSON(error.fields) }
                throw error
            }
            if job.isCoordinator { report(summary, run: run, memory: MemoryPlan(trainer: run.trainer, start: start, tokens: run.prepared.tokenCount)) }
            job.finish()
        }
    }

    /// The final summary on rank 0: the JSON object, or the text lines (nothing after a pause).
    func report(_ summary: TrainingSummary, run: TrainingRun, memory: MemoryPlan) {
        let ranks = run.communicator.worldSize
        if json {
            let model = summary.stopReason == .completed ? run.modelPath : nil
            Progress.printJSON(summary.fields(run.config.evaluation, ranks: ranks, model: model)
                .merging(memory.fields) { a, _ in a })
            return
        }
        if summary.paused { return }
        print(String(format: "done: %d steps, %@, training time %.1f s (%.0f tokens/s), model %@",
                     summary.steps, summary.validationText(run.config.evaluation), summary.trainingSeconds,
                     summary.tokensPerSecond, run.modelPath))
        print(String(format: "memory: peak RSS %.1f MiB, %.2f× the plan of %.1f MiB (parameters, gradients, AdamW moments, activations, replicas, tokens, process at start)",
                     Double(memory.peakRSS) / 1048576, memory.ratio, Double(memory.planned) / 1048576))
        if ranks > 1, let hash = summary.parameterHash {
            print("replicas: \(ranks) ranks hold bit-identical parameters (sha256 \(hash.prefix(16))…)")
        }
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

    func defaultRunDirectory() -> String {
        let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(name)-\(formatter.string(from: Date()))"
    }
}
