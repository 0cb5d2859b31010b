// TrainCommand: `loom train CONFIG [--set key=value]… [--run-dir DIR]`. It is not the loop
// itself (Training.Trainer).
import ArgumentParser
import Foundation
import Training
import Kernels
import Distributed

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a model from a YAML config.")

    @Argument(help: "The YAML config (see configs/).") var config: String
    @Option(name: .customLong("set"), help: "Override a config key by its dotted path, e.g. training.steps=100.")
    var overrides: [String] = []
    @Option(name: .customLong("run-dir"), help: "Where the run's files go (default: runs/NAME-TIMESTAMP).")
    var runDirectory: String?
    @Flag(name: .long, help: "Print only errors and the final summary.") var quiet = false

    func run() throws {
        try reportingErrors {
            let job = try joinJob()
            let config = try LoomConfig.load(path: config, overrides: overrides)
            let data = try PreparedData(config: config)
            ThreadPool.configure(threads: threadsPerRank(configured: config.training.threads, job: job))
            let progress = Progress(enabled: !quiet && job.isCoordinator)
            let trainer = try Trainer(config: config, data: data, communicator: job, run: nil, progress: progress)
            // Everything is validated; only now is anything written, and only by rank 0.
            let path = runDirectory ?? defaultRunDirectory()
            if job.isCoordinator {
                let run = try RunDirectory(creating: path)
                try run.writeStart(config: config, tokenizer: data.tokenizer)
                trainer.run = run
            }
            progress.message("loom train: \(trainer.model.layout.count) parameters, vocabulary \(trainer.model.config.vocabularySize), "
                             + "\(job.worldSize) rank(s) × \(trainer.microSteps) micro-step(s) of \(trainer.microBatch), "
                             + "\(ThreadPool.shared.threads) thread(s) per rank, run dir \(path)")
            let summary = try trainer.train()
            if job.isCoordinator {
                print(String(format: "done: %d steps, final val loss %.4f, training time %.1f s (%.0f tokens/s), model %@",
                             summary.steps, summary.finalValidationLoss ?? .nan, summary.trainingSeconds,
                             summary.tokensPerSecond, trainer.run?.modelPath ?? path))
                if job.worldSize > 1, let hash = summary.parameterHash {
                    print("replicas: \(job.worldSize) ranks hold bit-identical parameters (sha256 \(hash.prefix(16))…)")
                }
            }
            job.finish()
        }
    }

    func defaultRunDirectory() -> String {
        let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(name)-\(formatter.string(from: Date()))"
    }
}
