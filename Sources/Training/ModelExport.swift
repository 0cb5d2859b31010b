// ModelExport: `loom export` — what a run or checkpoint holds (ExportSource), the staging
// directory every export is written into and renamed from (so a partial export never looks
// complete), and the dispatch on the run's model kind to its format's writer.
import Foundation
import Data
import Support

/// The formats `loom export --format` writes.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// Hugging Face transformers: config.json, model.safetensors, tokenizer files.
    case hf
}

/// An export that cannot be made, naming the file or directory at fault and what to do.
public struct ExportError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(path: String, message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// A run directory or one of its checkpoints, as an export reads it: the resolved config, the
/// tokenizer and the model file.
public struct ExportSource {
    /// The directory named on the command line.
    public let path: String
    public let config: LoomConfig
    public let tokenizer: Tokenizer
    /// model.safetensors of the run (its final model) or of the checkpoint.
    public let modelPath: String

    /// A run directory (config.yaml, tokenizer.json, model.safetensors) or a checkpoint
    /// (RUN/checkpoints/step-N: verified against its manifest; config from its state.json, the
    /// tokenizer from the run).
    public init(_ path: String) throws {
        self.path = path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ExportError(path: path, message: "no such run or checkpoint directory")
        }
        if fm.fileExists(atPath: path + "/manifest.json") {
            let state = try CheckpointStore.verify(path)
            guard let yaml = state["config"] as? String else {
                throw ExportError(path: path + "/state.json", message: "has no resolved config; export the run directory instead")
            }
            config = try LoomConfig.parse(yaml: yaml, file: path + "/state.json")
            let run = PathName.directory(of: PathName.directory(of: PathName.absolute(path)))
            tokenizer = try TokenizerFile.load(run + "/tokenizer.json")
        } else {
            for file in ["config.yaml", "tokenizer.json", "model.safetensors"] where !fm.fileExists(atPath: path + "/" + file) {
                throw ExportError(path: path + "/" + file, message: "missing: not a finished run directory (export one of its checkpoints, RUN/checkpoints/step-N, instead)")
            }
            config = try LoomConfig.load(path: path + "/config.yaml")
            tokenizer = try TokenizerFile.load(path + "/tokenizer.json")
        }
        modelPath = path + "/model.safetensors"
    }
}

/// What an export wrote.
public struct ExportSummary {
    public let directory: String
    public let kind: ModelKind
    public let files: [String]
    /// A previous Loom export that `directory` held and this one replaced.
    public let replaced: Bool
    /// What the reader should know about the files (e.g. how the tokenizer is expressed).
    public let note: String?
}

public enum ModelExport {
    /// The file that marks a directory as a Loom export (source, format, kind, version): only such
    /// a directory is replaced by a new export.
    public static let markerName = "loom-export.json"

    /// Writes `source` in `format` to `directory`, atomically: see `staged`.
    @discardableResult
    public static func export(_ source: ExportSource, format: ExportFormat, to directory: String) throws -> ExportSummary {
        let kind = source.config.model.kind
        var note: String?
        let (files, replaced) = try staged(directory) { staging in
            let written: (files: [String], note: String?)
            switch (format, kind) {
            case (.hf, .gpt): written = try HuggingFaceGPT2.writeExport(source, into: staging)
            case (.hf, .bert): written = try HuggingFaceBERT.writeExport(source, into: staging)
            case (.hf, .transformer):
                let marian = try MarianExport.write(model: source.path, into: staging)
                let files = ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []).sorted()
                written = (files, "MarianMTModel: decoder start \(marian.begin), end \(marian.end); the sinusoid tables are stored and used as loaded")
            }
            note = written.note
            let marker: [String: Any] = ["format": format.rawValue, "kind": kind.rawValue, "source": PathName.absolute(source.path),
                                         "loom_version": loomVersion, "files": written.files]
            try AtomicFile.write(staging + "/" + markerName,
                                 data: try JSONSerialization.data(withJSONObject: marker, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
            return written.files + [markerName]
        }
        return ExportSummary(directory: directory, kind: kind, files: files, replaced: replaced, note: note)
    }

    /// Runs `write` on a new staging directory beside `directory` (`.NAME.loomtmp-HOST-PID`, which
    /// the next export there removes if this process dies), then renames it to `directory`. An
    /// existing `directory` must be empty or a previous Loom export (it holds `loom-export.json`);
    /// that one is moved aside, replaced, then removed. On any failure the staging directory is
    /// removed and `directory` is as it was. Returns `write`'s result and whether it replaced an export.
    public static func staged<T>(_ directory: String, _ write: (String) throws -> T) throws -> (T, replaced: Bool) {
        let fm = FileManager.default
        let parent = PathName.directory(of: PathName.absolute(directory))
        let name = (PathName.absolute(directory) as NSString).lastPathComponent
        let aside = name + ".previous"
        Temporaries.clearStale(in: parent, of: name)
        Temporaries.clearStale(in: parent, of: aside)
        var isDirectory: ObjCBool = false
        let exists = fm.fileExists(atPath: directory, isDirectory: &isDirectory)
        if exists {
            guard isDirectory.boolValue else { throw ExportError(path: directory, message: "is a file, not a directory; choose another --out") }
            let entries = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
            if !entries.isEmpty && !entries.contains(markerName) {
                throw ExportError(path: directory, message: "is not empty and not a Loom export (it has no \(markerName)); choose another --out or empty it")
            }
        }
        let staging = parent + "/" + Temporaries.name(for: name)
        do {
            try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
            try? fm.removeItem(atPath: staging)
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: false)
        } catch {
            throw FileWriteError(path: staging, reason: error.localizedDescription)
        }
        do {
            let result = try write(staging)
            AtomicFile.syncDirectory(staging)
            let previous = parent + "/" + Temporaries.name(for: aside)
            if exists {
                guard rename(directory, previous) == 0 else { throw FileWriteError(path: directory, reason: String(cString: strerror(errno))) }
            }
            guard rename(staging, directory) == 0 else {
                let reason = String(cString: strerror(errno))
                if exists { rename(previous, directory) }
                throw FileWriteError(path: directory, reason: reason)
            }
            AtomicFile.syncDirectory(parent)
            if exists { try? fm.removeItem(atPath: previous) }
            return (result, exists)
        } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
    }
}
