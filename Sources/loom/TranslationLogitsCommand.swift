// TranslationLogitsCommand: `loom translation-logits MODEL --pairs PAIRS --out PREFIX`, hidden — an
// encoder-decoder's logits on sentence pairs, run as one padded batch, written for checking a
// `loom export --format hf` of it from Python (tools/hf-check-marian.py).
import ArgumentParser
import Foundation
import Training
import Models
import Data
import Support

struct TranslationLogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translation-logits", abstract: "Write an encoder-decoder's logits on sentence pairs (for checking an export).",
        shouldDisplay: false)

    @Argument(help: "A run directory, RUN/checkpoints/step-N, a model directory or a model.safetensors.") var model: String
    @Option(help: "Lines 'source<TAB>target'.") var pairs: String
    @Option(help: "Writes PREFIX.f32 (pairs × positions × vocabulary, little-endian), PREFIX.json (token ids) and PREFIX.pairs.")
    var out: String
    @Option(help: "The model config (default: model-config.json beside the weights, else the run's).") var config: String?
    @Option(help: "The tokenizer (default: tokenizer.json beside the weights, else the run's).") var tokenizer: String?

    func run() throws {
        try reportingErrors {
            try writeLogits(pairs: pairs, prefix: out)
        }
    }

    /// Loom's forward on the pairs of `pairs` as one batch (sources padded and masked): the source
    /// is its tokens + end, the decoder input begin + target tokens (the export's tokens).
    func writeLogits(pairs path: String, prefix: String) throws {
        let source = try MarianExport.resolve(model: model, config: config, tokenizer: tokenizer)
        let file = try EncoderDecoderFile.load(source.config)
        let tok = try TokenizerFile.load(source.tokenizer)
        let (begin, end) = try MarianExport.tokens(file, tokenizer: tok, tokenizerPath: source.tokenizer, configPath: source.config)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let pairs = try lines.map { line -> ([Int32], [Int32]) in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw ValidationError("\(path): line '\(line)' is not 'source<TAB>target'") }
            return (try tok.encode(bytes: Array(parts[0].utf8)) + [end], [begin] + (try tok.encode(bytes: Array(parts[1].utf8))))
        }
        let B = pairs.count, S = pairs.map(\.0.count).max() ?? 1, T = pairs.map(\.1.count).max() ?? 1
        let V = file.config.vocabularySize
        let net = EncoderDecoder(config: file.config, maxBatch: B)
        try Safetensors.read(source.weights, layout: net.layout, into: net.parameters)
        var sources = [Int32](repeating: 0, count: B * S), inputs = [Int32](repeating: 0, count: B * T)   // (B,S), (B,T)
        for (b, (s, t)) in pairs.enumerated() {
            for (i, x) in s.enumerated() { sources[b * S + i] = x }
            for (i, x) in t.enumerated() { inputs[b * T + i] = x }
        }
        let lengths = pairs.map { Int32($0.0.count) }
        net.forward(source: sources, sourceLengths: lengths, targetInput: inputs, targetOutput: nil, batch: B,
                    sourceLength: S, targetLength: T)
        try AtomicFile.write(prefix + ".f32", parts: [UnsafeRawBufferPointer(start: net.logits, count: B * T * V * 4)])
        let ids: [String: Any] = ["pairs": pairs.map { ["input_ids": $0.0.map(Int.init), "decoder_input_ids": $0.1.map(Int.init)] },
                                  "positions": T, "vocabulary": V]
        try AtomicFile.write(prefix + ".json", data: try JSONSerialization.data(withJSONObject: ids, options: [.sortedKeys]))
        try AtomicFile.write(prefix + ".pairs", text: lines.joined(separator: "\n") + "\n")
        print("wrote Loom's logits for \(B) pairs (\(B)×\(T)×\(V)) → \(prefix).f32, ids → \(prefix).json, pairs → \(prefix).pairs")
    }
}
