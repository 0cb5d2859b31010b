// RunDirectory: the files of one run — resolved config, tokenizer, metrics.jsonl, model — written
// by the coordinator only. It is not a checkpoint store (checkpoints come with the coordinator).
import Foundation
import Data

public final class RunDirectory {
    public let path: String
    private var metrics: FileHandle?

    public var configPath: String { path + "/config.yaml" }
    public var tokenizerPath: String { path + "/tokenizer.json" }
    public var metricsPath: String { path + "/metrics.jsonl" }
    public var modelPath: String { path + "/model.safetensors" }

    /// Creates the directory (and parents); refuses a directory that already holds a model.
    public init(creating path: String) throws {
        self.path = path
        let fm = FileManager.default
        if fm.fileExists(atPath: path + "/model.safetensors") || fm.fileExists(atPath: path + "/metrics.jsonl") {
            throw FileWriteError(path: path, reason: "it already holds a run; choose another --run-dir or remove it")
        }
        do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw FileWriteError(path: path, reason: error.localizedDescription)
        }
    }

    /// Opens an existing run directory for reading.
    public init(existing path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw FileWriteError(path: path, reason: "no such run directory")
        }
    }

    public func writeStart(config: LoomConfig, tokenizer: Tokenizer) throws {
        try AtomicFile.write(configPath, text: try config.yaml())
        try AtomicFile.write(tokenizerPath, data: try tokenizer.serialized())
        FileManager.default.createFile(atPath: metricsPath, contents: nil)
        metrics = FileHandle(forWritingAtPath: metricsPath)
    }

    /// Appends one JSON object as a line of metrics.jsonl.
    public func log(_ fields: KeyValuePairs<String, Any>) {
        guard let metrics else { return }
        var line = "{"
        for (i, (key, value)) in fields.enumerated() {
            if i > 0 { line += ", " }
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

    public func close() { try? metrics?.close(); metrics = nil }
}
