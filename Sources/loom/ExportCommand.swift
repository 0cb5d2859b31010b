// ExportCommand: `loom export RUN|CHECKPOINT --format hf --out DIR` hands the run to
// Training.ModelExport and reports the files; `loom logits` (hidden, for checks outside the test
// suite such as tools/hf-check-gpt.py) writes a GPT's logits on a text.
import ArgumentParser
import Foundation
import Training
import Models
import Data
import Support

extension ExportFormat: ExpressibleByArgument {}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a run or checkpoint in another framework's format (hf: Hugging Face transformers).")

    @Argument(help: "A run directory or one of its checkpoints (RUN/checkpoints/step-N).") var source: String
    @Option(help: "The format: hf (config.json, model.safetensors, tokenizer files for transformers' from_pretrained).")
    var format: ExportFormat = .hf
    @Option(help: "The directory to write (new, empty, or a previous Loom export, which is replaced).") var out: String
    @Flag(name: .long, help: "Print one JSON object instead of prose.") var json = false

    func run() throws {
        try reportingErrors {
            let summary = try ModelExport.export(try ExportSource(source), format: format, to: out)
            if json {
                var fields: [String: Any] = ["event": "export", "directory": summary.directory, "kind": summary.kind.rawValue,
                                             "format": format.rawValue, "files": summary.files, "replaced": summary.replaced]
                if let note = summary.note { fields["note"] = note }
                Progress.printJSON(fields)
                return
            }
            print("loom export: \(summary.kind.rawValue) model of \(source) → \(summary.directory)"
                  + (summary.replaced ? " (replaced the previous export)" : "") + ": " + summary.files.joined(separator: ", "))
            if let note = summary.note { print("note: \(note)") }
        }
    }
}

/// `loom logits SOURCE --text FILE|--token-ids 1,2,… --out FILE`: the GPT's logits on the first
/// tokens of a text (or on given token ids), as raw little-endian F32 (tokens, vocabulary), and on
/// stdout a JSON object with the token ids and the shape. A check of other implementations against
/// Loom's forward pass; not in `loom help`.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits", abstract: "Write a GPT's logits on a text (raw F32) for comparisons.", shouldDisplay: false)

    @Argument(help: "A GPT run directory or one of its checkpoints.") var source: String
    @Option(help: "The text file; its first --max-tokens tokens are read.") var text: String?
    @Option(name: .customLong("token-ids"), help: "Token ids instead of a text, separated by commas.") var tokenIDs: String?
    @Option(name: .customLong("max-tokens"), help: "Tokens to read (default and at most: the context length).") var maxTokens: Int?
    @Option(help: "Where the logits go (raw little-endian F32, tokens × vocabulary).") var out: String

    func run() throws {
        try reportingErrors {
            ThreadPool.configure(threads: 1)
            let source = try ExportSource(source)
            let shape = try source.config.gptConfig(vocabularySize: source.tokenizer.vocabularySize)
            let all: [Int32]
            switch (text, tokenIDs) {
            case let (text?, nil):
                guard let bytes = FileManager.default.contents(atPath: text) else { throw ValidationError("--text \(text): cannot read") }
                all = try bytes.withUnsafeBytes { try source.tokenizer.encode(bytes: $0) }
            case let (nil, list?):
                all = try list.split(separator: ",").map { item in
                    guard let id = Int32(item.trimmingCharacters(in: .whitespaces)), id >= 0, Int(id) < shape.vocabularySize else {
                        throw ValidationError("--token-ids: '\(item)' is not a token id below \(shape.vocabularySize)")
                    }
                    return id
                }
            default: throw ValidationError("give one of --text FILE and --token-ids LIST")
            }
            let count = min(all.count, maxTokens ?? shape.contextLength, shape.contextLength)
            guard count > 0 else { throw ValidationError("no tokens to read") }
            let model = GPT(config: shape, maxBatch: 1)
            try Safetensors.read(source.modelPath, layout: model.layout, into: model.parameters)
            let tokens = Array(all.prefix(count))
            _ = tokens.withUnsafeBufferPointer { model.forward(tokens: $0.baseAddress!, targets: nil, batch: 1, time: count) }
            try AtomicFile.write(out, parts: [UnsafeRawBufferPointer(start: model.logits, count: count * shape.vocabularySize * 4)])
            Progress.printJSON(["tokens": tokens.map(Int.init), "shape": [count, shape.vocabularySize], "out": out])
        }
    }
}
