// RunReading: what the reading commands (sample, eval loss, inspect, resume) need from a run that
// `loom train` wrote — the reader's error when the directory is not there, and a trained GPT loaded
// from a run directory or one of its checkpoints with the run's config and tokenizer.
import Foundation
import Data
import Models
import Kernels
import Support

/// A run directory (or checkpoint) that a reading command was given does not exist. Nothing is
/// written on this path, so the message says what to pass instead rather than what was kept.
public struct RunNotFoundError: Error, CustomStringConvertible {
    public let path: String
    /// What was expected at `path`: "run directory" or "run directory or checkpoint".
    public let expected: String
    /// What to do instead.
    public let hint: String
    public init(path: String, expected: String = "run directory",
                hint: String = "train one with `loom train` or pass a run directory") {
        self.path = path; self.expected = expected; self.hint = hint
    }
    public var description: String { "no such \(expected): \(path); \(hint)" }
}

/// A trained GPT read back from a run: RUN (its final model.safetensors) or RUN/checkpoints/step-N
/// (that checkpoint's weights), with the run's resolved config.yaml and tokenizer.json.
public struct TrainedGPT {
    /// The run directory the config and tokenizer come from.
    public let run: String
    /// The weights file that was read.
    public let weights: String
    public let config: LoomConfig
    public let tokenizer: Tokenizer
    public let tokenizerPath: String
    public let model: GPT

    /// Loads the model at `path` for forwards of up to `maxBatch` sequences, in the run's
    /// `training.precision` unless `precision` is given.
    public init(path: String, maxBatch: Int, precision: Precision? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RunNotFoundError(path: path, expected: "run directory or checkpoint")
        }
        guard isDirectory.boolValue else {
            throw RunReadError(path: path, message: "a file, not a run directory or checkpoint; pass RUN or RUN/checkpoints/step-N")
        }
        let fm = FileManager.default
        let isCheckpoint = fm.fileExists(atPath: path + "/manifest.json")
        // RUN/checkpoints/step-N → RUN
        let run = isCheckpoint ? PathName.directory(of: PathName.directory(of: PathName.absolute(path))) : path
        let configPath = run + "/config.yaml", tokenizerPath = run + "/tokenizer.json"
        let weights = path + "/model.safetensors"
        for (file, what) in [(configPath, "the run's resolved config"), (tokenizerPath, "the run's tokenizer")]
        where !fm.fileExists(atPath: file) {
            throw RunReadError(path: file, message: "missing (\(what)); is \(run) a run directory written by `loom train`?")
        }
        guard fm.fileExists(atPath: weights) else {
            throw RunReadError(path: weights, message: isCheckpoint ? "missing; the checkpoint is incomplete"
                               : "missing: the run has not finished; pass one of its checkpoints (\(run)/checkpoints/step-N)")
        }
        let config = try LoomConfig.load(path: configPath)
        guard !config.trainsTranslation else {
            throw RunReadError(path: configPath, message: "model.kind transformer is an encoder-decoder; score it with `loom translate` and `loom eval bleu`")
        }
        let tokenizer = try TokenizerFile.load(tokenizerPath)
        let precision = precision ?? config.training.precision
        if precision == .bf16, let why = Precision.bf16Unsupported(on: .current()) {
            throw RunReadError(path: configPath, message: "training.precision bf16: \(why)")
        }
        let model = GPT(config: try config.gptConfig(vocabularySize: tokenizer.vocabularySize), maxBatch: maxBatch,
                        precision: precision)
        try Safetensors.read(weights, layout: model.layout, into: model.parameters)
        model.parametersDidChange()
        self.run = run; self.weights = weights; self.config = config
        self.tokenizer = tokenizer; self.tokenizerPath = tokenizerPath; self.model = model
    }
}

/// A file of a run that a reading command cannot use, named with the reason.
public struct RunReadError: Error, CustomStringConvertible {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}
