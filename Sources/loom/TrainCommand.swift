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
            let config = try LoomConfig.load(path: config, overrides: overrides)
            let data = try PreparedData(config: config)
            ThreadPool.configure(threads: config.training.threads > 0 ? config.training.threads
                                 : ProcessInfo.processInfo.activeProcessorCount)
            let communicator = SingleProcessCommunicator()
            let progress = Progress(enabled: !quiet)
            let trainer = try Trainer(config: config, data: data, communicator: communicator, run: nil, progress: progress)
            // Everything is validated; only now is anything written.
            let path = runDirectory ?? defaultRunDirectory()
            let run = try RunDirectory(creating: path)
            try run.writeStart(config: config, tokenizer: data.tokenizer)
            trainer.run = run
            progress.message("loom train: \(trainer.model.layout.count) parameters, vocabulary \(trainer.model.config.vocabularySize), "
                             + "\(trainer.microSteps) micro-step(s) of \(trainer.microBatch), \(ThreadPool.shared.threads) thread(s), run dir \(path)")
            let summary = try trainer.train()
            print(String(format: "done: %d steps, final val loss %.4f, training time %.1f s (%.0f tokens/s), model %@",
                         summary.steps, summary.finalValidationLoss ?? .nan, summary.trainingSeconds,
                         summary.tokensPerSecond, run.modelPath))
        }
    }

    func defaultRunDirectory() -> String {
        let name = ((config as NSString).lastPathComponent as NSString).deletingPathExtension
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return "runs/\(name)-\(formatter.string(from: Date()))"
    }
}
