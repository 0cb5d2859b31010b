// RunDirectory: the files of one run — resolved config, tokenizer, metrics.jsonl, model — written
// by the coordinator only.
import Foundation
import Data
import Support

public final class RunDirectory {
    public let path: String
    private var metrics: FileHandle?
    /// Where each metrics record is also written as a TensorBoard event (`logging.tensorboard`);
    /// nil writes none.
    public var tensorboard: TensorBoardEvents?

    public var configPath: String { path + "/config.yaml" }
    public var tokenizerPath: String { path + "/tokenizer.json" }
    public var metricsPath: String { path + "/metrics.jsonl" }
    public var modelPath: String { path + "/model.safetensors" }
    /// Temporaries a crashed Loom process of this host had left here or in `checkpoints/`
    /// (partial checkpoints, half-written files), removed when the run directory was opened.
    public private(set) var clearedTemporaries: [String] = []

    /// Creates the directory (and parents); refuses a directory that already holds a run unless
    /// `replacing` (a restart that found no checkpoint to continue from).
    public init(creating path: String, replacing: Bool = false) throws {
        self.path = path
        let fm = FileManager.default
        if !replacing, fm.fileExists(atPath: path + "/model.safetensors") || fm.fileExists(atPath: path + "/metrics.jsonl") {
            throw FileWriteError(path: path, reason: "it already holds a run; choose another --run-dir or remove it")
        }
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw FileWriteError(path: path, reason: error.localizedDescription)
        }
        clearStaleTemporaries()
    }

    /// Removes what a crashed Loom process of this host left half-written in the run.
    private func clearStaleTemporaries() {
        clearedTemporaries = Temporaries.clearStale(in: path) + Temporaries.clearStale(in: path + "/checkpoints")
    }

    /// Opens an existing run directory for reading; a missing one is a reader's error
    /// (`RunNotFoundError`), since nothing is written here.
    public init(existing path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RunNotFoundError(path: path)
        }
    }

    /// Reopens a run to continue it after `step`: metrics lines of later steps (written after the
    /// checkpoint by the interrupted run) are dropped so the curve has no duplicates.
    public init(resuming path: String, afterStep step: Int) throws {
        self.path = path
        let fm = FileManager.default
        clearStaleTemporaries()
        if fm.fileExists(atPath: metricsPath) {
            let text = (try? String(contentsOfFile: metricsPath, encoding: .utf8)) ?? ""
            let kept = text.split(separator: "\n").filter { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let s = object["step"] as? Int else { return false }
                return s <= step
            }
            try AtomicFile.write(metricsPath, text: kept.map { $0 + "\n" }.joined())
        } else {
            fm.createFile(atPath: metricsPath, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: metricsPath) else {
            throw FileWriteError(path: metricsPath, reason: "cannot open for appending")
        }
        handle.seekToEndOfFile()
        metrics = handle
    }

    public func writeStart(config: LoomConfig, tokenizer: Tokenizer) throws {
        try writeConfigAndTokenizer(config: config, tokenizer: tokenizer)
        FileManager.default.createFile(atPath: metricsPath, contents: nil)
        metrics = FileHandle(forWritingAtPath: metricsPath)
    }

    /// The resolved config and the tokenizer (what `loom sample` needs besides the model).
    public func writeConfigAndTokenizer(config: LoomConfig, tokenizer: Tokenizer) throws {
        try AtomicFile.write(configPath, text: try config.yaml())
        try AtomicFile.write(tokenizerPath, data: try tokenizer.serialized())
    }

    /// Appends one JSON object as a line of metrics.jsonl (and an event to `tensorboard`; a
    /// failed event write is reported on stderr once and ends the events, not the run). A field
    /// whose value is a nil optional is left out of the line.
    public func log(_ fields: KeyValuePairs<String, Any>) {
        do { try tensorboard?.log(fields) } catch {
            FileHandle.standardError.write(Data("loom train: \(error); no more TensorBoard events are written\n".utf8))
            tensorboard = nil
        }
        guard let metrics else { return }
        var line = "{", first = true
        for (key, field) in fields {
            let mirror = Mirror(reflecting: field)
            let value: Any
            if mirror.displayStyle == .optional {
                guard let wrapped = mirror.children.first?.value else { continue }
                value = wrapped
            } else {
                value = field
            }
            if !first { line += ", " }
            first = false
            line += "\"\(key)\": "
            switch value {
            case let d as Double: line += d.isFinite ? String(format: "%.9g", d) : "null"
            case let f as Float: line += f.isFinite ? String(format: "%.9g", Double(f)) : "null"
            default: line += "\(value)"
            }
        }
        line += "}\n"
        metrics.write(Data(line.utf8))
    }

    public func close() {
        try? metrics?.close(); metrics = nil
        tensorboard?.close(); tensorboard = nil
    }
}
