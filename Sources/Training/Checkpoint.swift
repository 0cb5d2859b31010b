// Checkpoint: the coordinator's checkpoints — RUN/checkpoints/step-NNNNNNNN/ with
// model.safetensors, optimizer.safetensors (AdamW moments), state.json and manifest.json (SHA-256
// of each file) — written into a temporary directory, fsynced and renamed into place, the `latest`
// pointer last; verified before anything is loaded; pruned to the newest K plus the best.
import Foundation
import Data
import Models
import Support

/// The Loom version written into checkpoints.
public let loomVersion = "0.4.0"

/// Everything besides tensors that a resumed run needs to continue exactly. Its `Codable` form is
/// the progress part of a checkpoint's state.json (snake_case keys, the plateau counters under
/// `schedule`, a non-finite loss as null) and what rank 0 broadcasts on resume.
public struct TrainingState: Equatable {
    /// Optimizer steps completed (the next step to run).
    public var step = 0
    /// Target tokens trained on so far.
    public var tokensSeen = 0
    /// AdamW's update count (the t of its bias correction; skipped steps don't count).
    public var optimizerUpdates = 0
    /// Steps skipped for a non-finite loss or gradient, in total and in a row.
    public var skippedSteps = 0
    public var nonfiniteInARow = 0
    /// Reduce-on-plateau state (scale 1 for other schedules).
    public var plateau = ReduceOnPlateau(factor: 0.5, patience: 2)
    /// The validation loss at this step (if one was computed) and the best so far.
    public var validationLoss: Double?
    public var bestValidationLoss: Double?

    public init() {}

    /// This state with `saved`'s progress: the counters, losses and plateau position come from
    /// the checkpoint, the plateau's factor, patience and floor stay this run's configured ones.
    public func continuing(from saved: TrainingState) -> TrainingState {
        var next = saved
        next.plateau = plateau
        next.plateau.scale = saved.plateau.scale
        next.plateau.best = saved.plateau.best
        next.plateau.badEvaluations = saved.plateau.badEvaluations
        return next
    }
}

extension TrainingState: Codable {
    enum CodingKeys: String, CodingKey {
        case step, tokensSeen = "tokens_seen", optimizerUpdates = "optimizer_updates", skippedSteps = "skipped_steps"
        case nonfiniteInARow = "nonfinite_in_a_row", schedule, validationLoss = "validation_loss"
        case bestValidationLoss = "best_validation_loss"
    }
    enum PlateauKeys: String, CodingKey {
        case scale = "plateau_scale", best = "plateau_best", badEvaluations = "plateau_bad_evaluations"
    }

    /// Missing keys take a fresh run's values.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        tokensSeen = try c.decodeIfPresent(Int.self, forKey: .tokensSeen) ?? 0
        optimizerUpdates = try c.decodeIfPresent(Int.self, forKey: .optimizerUpdates) ?? 0
        skippedSteps = try c.decodeIfPresent(Int.self, forKey: .skippedSteps) ?? 0
        nonfiniteInARow = try c.decodeIfPresent(Int.self, forKey: .nonfiniteInARow) ?? 0
        validationLoss = try c.decodeIfPresent(Double.self, forKey: .validationLoss)
        bestValidationLoss = try c.decodeIfPresent(Double.self, forKey: .bestValidationLoss)
        if c.contains(.schedule) {
            let p = try c.nestedContainer(keyedBy: PlateauKeys.self, forKey: .schedule)
            plateau.scale = try p.decodeIfPresent(Double.self, forKey: .scale) ?? 1
            plateau.best = try p.decodeIfPresent(Double.self, forKey: .best) ?? .infinity
            plateau.badEvaluations = try p.decodeIfPresent(Int.self, forKey: .badEvaluations) ?? 0
        }
    }

    public func encode(to encoder: Encoder) throws {
        func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encode(tokensSeen, forKey: .tokensSeen)
        try c.encode(optimizerUpdates, forKey: .optimizerUpdates)
        try c.encode(skippedSteps, forKey: .skippedSteps)
        try c.encode(nonfiniteInARow, forKey: .nonfiniteInARow)
        try c.encode(finite(validationLoss), forKey: .validationLoss)
        try c.encode(finite(bestValidationLoss), forKey: .bestValidationLoss)
        var p = c.nestedContainer(keyedBy: PlateauKeys.self, forKey: .schedule)
        try p.encode(plateau.scale, forKey: .scale)
        try p.encode(finite(plateau.best), forKey: .best)
        try p.encode(plateau.badEvaluations, forKey: .badEvaluations)
    }

    /// The state as JSON bytes (sorted keys): what travels between ranks and into state.json.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    public init(encoded data: Data) throws { self = try JSONDecoder().decode(TrainingState.self, from: data) }
}

/// AdamW's two moment buffers for the whole parameter layout: what optimizer.safetensors holds
/// (exp_avg., exp_avg_sq.), whether the run that writes or reads it is sharded or not.
public struct OptimizerMoments {
    public let m: FlatBuffer   // (P) first moment
    public let v: FlatBuffer   // (P) second moment
    public init(m: FlatBuffer, v: FlatBuffer) { self.m = m; self.v = v }
    /// Zeroed full-size buffers for `count` parameters (a sharded run's gather or load target).
    public init(count: Int) { m = FlatBuffer(count: count); v = FlatBuffer(count: count) }
}

/// A checkpoint that must not be loaded, naming the file and what is wrong.
public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
    public init(path: String, message: String) { self.path = path; self.message = message }
}

public final class CheckpointStore {
    /// RUN/checkpoints.
    public let directory: String
    public let keep: Int

    public init(run: String, keep: Int) {
        directory = run + "/checkpoints"
        self.keep = keep
    }

    public static func name(step: Int) -> String { String(format: "step-%08d", step) }

    /// Checkpoint directories, oldest first.
    public func list() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("step-") && Int($0.dropFirst(5)) != nil }.sorted().map { directory + "/" + $0 }
    }

    // MARK: writing

    /// Writes a checkpoint of `model`, `optimizer` and `state` atomically and updates `latest`
    /// (and `best` when this one has the best validation loss). On failure nothing is left
    /// half-written and the previous checkpoints are untouched. `moments`: the whole buffer's
    /// AdamW moments when `optimizer` holds only a slice (ZeRO-1 gathers them); nil = its own.
    @discardableResult
    public func save(model: TrainableModel, optimizer: AdamW, moments: OptimizerMoments? = nil, state: TrainingState,
                     config: LoomConfig, worldSize: Int) throws -> String {
        let moments = moments ?? OptimizerMoments(m: optimizer.m, v: optimizer.v)
        precondition(moments.m.count == model.layout.count, "CheckpointStore.save: a sharded optimizer's moments must be gathered first")
        let fm = FileManager.default
        let name = Self.name(step: state.step)
        let final = directory + "/" + name
        if fm.fileExists(atPath: final), (try? Self.verify(final)) != nil { return final }   // already saved
        let temporary = directory + "/" + Temporaries.name(for: name)
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? fm.removeItem(atPath: temporary)
            try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw FileWriteError(path: temporary, reason: error.localizedDescription)
        }
        do {
            try Safetensors.write(temporary + "/model.safetensors", layout: model.layout, buffer: model.parameters,
                                  metadata: ["format": "pt", "loom": model.kind, "step": "\(state.step)"])
            try Safetensors.write(temporary + "/optimizer.safetensors", layout: model.layout,
                                  buffers: [("exp_avg.", moments.m), ("exp_avg_sq.", moments.v)],
                                  metadata: ["format": "pt", "optimizer": "adamw", "step": "\(optimizer.updates)"])
            let stateJSON = try Self.encode(state: state, config: config, worldSize: worldSize)
            try AtomicFile.write(temporary + "/state.json", data: stateJSON)
            var files: [String: Any] = [:]
            for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
                let path = temporary + "/" + file
                let bytes = (try fm.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
                files[file] = ["sha256": try SHA256.hash(file: path).hex, "bytes": bytes]
            }
            let manifest = try JSONSerialization.data(withJSONObject: ["files": files, "loom_version": loomVersion],
                                                      options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(temporary + "/manifest.json", data: manifest)
            if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }   // an invalid leftover
            guard rename(temporary, final) == 0 else {
                throw FileWriteError(path: final, reason: String(cString: strerror(errno)))
            }
            AtomicFile.syncDirectory(directory)
            try AtomicFile.write(directory + "/latest", text: name + "\n")
            if let loss = state.validationLoss, loss <= (state.bestValidationLoss ?? .infinity) {
                try AtomicFile.write(directory + "/best", text: name + "\n")
            }
        } catch {
            try? fm.removeItem(atPath: temporary)
            if let e = error as? FileWriteError { throw e }
            throw FileWriteError(path: temporary, reason: "\(error)")
        }
        prune()
        return final
    }

    /// Deletes all but the newest `keep` checkpoints and the best one.
    public func prune() {
        let all = list()
        let best = (try? String(contentsOfFile: directory + "/best", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        for path in all.dropLast(keep) where (path as NSString).lastPathComponent != best {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// state.json: the state's own keys, plus what a reader of the checkpoint wants to know about
    /// the run (schedule kind, seed, data position, world size, the resolved config, the version).
    static func encode(state s: TrainingState, config: LoomConfig, worldSize: Int) throws -> Data {
        var object = try JSONSerialization.jsonObject(with: try s.encoded()) as? [String: Any] ?? [:]
        var schedule = object["schedule"] as? [String: Any] ?? [:]
        schedule["kind"] = config.schedule.kind.rawValue
        object["schedule"] = schedule
        object["seed"] = config.training.seed
        object["data_position"] = ["next_step": s.step, "global_batch": config.training.batchSize,
                                   "note": "example e of step s is drawn from (seed, step, e): the position is the step"]
        object["world_size"] = worldSize
        object["config"] = try config.yaml()
        object["loom_version"] = loomVersion
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    // MARK: reading

    /// Checks the manifest (every file present with its size and SHA-256), state.json and both
    /// safetensors headers. Throws a CheckpointError naming the file at fault.
    @discardableResult
    public static func verify(_ path: String) throws -> [String: Any] {
        let fm = FileManager.default
        guard let manifestData = fm.contents(atPath: path + "/manifest.json") else {
            throw CheckpointError(path: path + "/manifest.json", message: "missing: not a complete checkpoint")
        }
        guard let manifest = try? JSONSerialization.jsonObject(with: manifestData) as? [String: Any],
              let files = manifest["files"] as? [String: [String: Any]] else {
            throw CheckpointError(path: path + "/manifest.json", message: "not a valid manifest")
        }
        for required in ["model.safetensors", "optimizer.safetensors", "state.json"] where files[required] == nil {
            throw CheckpointError(path: path + "/manifest.json", message: "does not list \(required)")
        }
        for (file, entry) in files.sorted(by: { $0.key < $1.key }) {
            let filePath = path + "/" + file
            guard fm.fileExists(atPath: filePath) else { throw CheckpointError(path: filePath, message: "missing") }
            let bytes = (try? fm.attributesOfItem(atPath: filePath)[.size] as? NSNumber)?.intValue ?? -1
            if let expected = entry["bytes"] as? Int, expected != bytes {
                throw CheckpointError(path: filePath, message: "is \(bytes) bytes, the manifest says \(expected) (truncated?)")
            }
            let hash = try SHA256.hash(file: filePath).hex
            guard hash == entry["sha256"] as? String else {
                throw CheckpointError(path: filePath, message: "SHA-256 \(hash.prefix(12))… does not match the manifest (corrupted)")
            }
        }
        for file in ["model.safetensors", "optimizer.safetensors"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path + "/" + file), options: .mappedIfSafe)
            _ = try Safetensors.readHeader(data, path: path + "/" + file)
        }
        guard let state = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/state.json"))) as? [String: Any],
              state["step"] is Int else {
            throw CheckpointError(path: path + "/state.json", message: "not a valid state file")
        }
        return state
    }

    /// The newest valid checkpoint of the run, skipping (with a warning each) damaged ones.
    public func newestValid(warn: (String) -> Void) -> String? {
        for path in list().reversed() {
            do { try Self.verify(path); return path } catch {
                warn("warning: skipping checkpoint \(path): \(error)")
            }
        }
        return nil
    }

    /// Loads a verified checkpoint into the model and optimizer; returns its state.
    public static func load(_ path: String, model: TrainableModel, optimizer: AdamW) throws -> TrainingState {
        try load(path, model: model, moments: OptimizerMoments(m: optimizer.m, v: optimizer.v))
    }

    /// Loads a verified checkpoint into the model and into `moments` (the whole buffer's, which
    /// a sharded run then scatters); returns its state.
    public static func load(_ path: String, model: TrainableModel, moments: OptimizerMoments) throws -> TrainingState {
        try verify(path)
        try Safetensors.read(path + "/model.safetensors", layout: model.layout, into: model.parameters)
        try Safetensors.read(path + "/optimizer.safetensors", layout: model.layout,
                             buffers: [("exp_avg.", moments.m), ("exp_avg_sq.", moments.v)])
        do {
            return try TrainingState(encoded: Data(contentsOf: URL(fileURLWithPath: path + "/state.json")))
        } catch {
            throw CheckpointError(path: path + "/state.json", message: "not a valid state file (\(error))")
        }
    }
}
