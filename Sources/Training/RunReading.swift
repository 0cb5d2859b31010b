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

/// The files a reading command opens in a run that `loom train` wrote: RUN (its final
/// model.safetensors) or RUN/checkpoints/step-N (that checkpoint's weights), with the run's resolved
/// config.yaml and tokenizer.json; each missing one is an error naming it.
public struct TrainedRunFiles {
    /// The run directory the config and tokenizer come from.
    public let run: String
    /// The weights file to read.
    public let weights: String
    public let configPath: String, tokenizerPath: String
    public let config: LoomConfig

    public init(path: String) throws {
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
        run = isCheckpoint ? PathName.directory(of: PathName.directory(of: PathName.absolute(path))) : path
        configPath = run + "/config.yaml"; tokenizerPath = run + "/tokenizer.json"
        weights = path + "/model.safetensors"
        for (file, what) in [(configPath, "the run's resolved config"), (tokenizerPath, "the run's tokenizer")]
        where !fm.fileExists(atPath: file) {
            throw RunReadError(path: file, message: "missing (\(what)); is \(run) a run directory written by `loom train`?")
        }
        guard fm.fileExists(atPath: weights) else {
            throw RunReadError(path: weights, message: isCheckpoint ? "missing; the checkpoint is incomplete"
                               : "missing: the run has not finished; pass one of its checkpoints (\(run)/checkpoints/step-N)")
        }
        config = try LoomConfig.load(path: configPath)
    }

    /// `precision`, or the run's `training.precision`, checked against this CPU.
    func precision(_ asked: Precision?) throws -> Precision {
        let precision = asked ?? config.training.precision
        if precision == .bf16, let why = Precision.bf16Unsupported(on: .current()) {
            throw RunReadError(path: configPath, message: "training.precision bf16: \(why)")
        }
        return precision
    }
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
        let files = try TrainedRunFiles(path: path), config = files.config
        guard !config.trainsTranslation else {
            throw RunReadError(path: files.configPath, message: "model.kind transformer is an encoder-decoder; score it with `loom translate` and `loom eval bleu`")
        }
        guard config.model.kind != .bert else {
            throw RunReadError(path: files.configPath, message: "model.kind bert is a masked language model; read it with `loom fill-mask` and `loom eval mlm`")
        }
        let tokenizer = try TokenizerFile.load(files.tokenizerPath)
        let model = GPT(config: try config.gptConfig(vocabularySize: tokenizer.vocabularySize), maxBatch: maxBatch,
                        precision: try files.precision(precision))
        try Safetensors.read(files.weights, layout: model.layout, into: model.parameters)
        model.parametersDidChange()
        run = files.run; weights = files.weights; self.config = config
        self.tokenizer = tokenizer; tokenizerPath = files.tokenizerPath; self.model = model
    }
}

/// A file of a run that a reading command cannot use, named with the reason.
public struct RunReadError: Error, CustomStringConvertible {
    public let path: String, message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}
