// TranslationCommands: `loom translate` (beam search with an encoder-decoder model) and
// `loom average` (checkpoint averaging). Thin shells over Training (SentenceTranslation,
// CheckpointAverage).
import ArgumentParser
import Foundation
import Training
import Models
import Data
import Kernels
import Support

struct AverageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "average", abstract: "Average the tensors of several checkpoints (or safetensors files) into one file.")

    @Argument(help: "Checkpoint directories (their model.safetensors) or safetensors files.") var inputs: [String]
    @Option(help: "The averaged safetensors file (written atomically).") var out: String

    func run() throws {
        try reportingErrors {
            guard inputs.count >= 1 else { throw ValidationError("give at least one checkpoint") }
            let r = try CheckpointAverage.average(inputs, out: out)
            print("averaged \(inputs.count) file(s): \(r.tensors) tensors, \(r.parameters) parameters → \(out)")
        }
    }
}

struct TranslateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate",
        abstract: "Translate standard input line by line with an encoder-decoder model (beam search).",
        discussion: """
            MODEL is a model.safetensors file (its model-config.json beside it), a directory holding both, \
            a run directory of `loom train` (model.kind transformer) or one of its checkpoints \
            (RUN/checkpoints/step-N: the config and tokenizer are taken from the run). Every source line is tokenized and ends with the end token; the output is one line per input line, \
            in order.
            """)

    @Argument(help: "model.safetensors, or a directory with model.safetensors and model-config.json.") var model: String
    @Option(help: "The model config (default: model-config.json next to the weights).") var config: String?
    @Option(help: "The tokenizer (shared source/target vocabulary; default: tokenizer.json of the model's directory or run).")
    var tokenizer: String?
    @Option(help: "Beam size; 1 = greedy.") var beam: Int = 4
    @Option(help: "Length penalty exponent α of ((5 + |Y|)/6)^α.") var alpha: Double = 0.6
    @Option(help: "Sentences decoded together.") var batch: Int = 16
    @Option(name: .customLong("max-extra"), help: "Output length limit: source length + this.") var maxExtra: Int = 50
    @Option(help: "Compute threads.") var threads: Int = 1

    func run() throws {
        try reportingErrors {
            guard beam >= 1, batch >= 1, maxExtra >= 0, threads >= 1 else {
                throw ValidationError("--beam, --batch and --threads must be ≥ 1 and --max-extra ≥ 0")
            }
            ThreadPool.configure(threads: threads)
            let translation = try SentenceTranslation(model: model, config: config, tokenizer: tokenizer, batch: batch,
                                                      beamSize: beam, lengthPenalty: Float(alpha), extraLength: maxExtra)
            var lines: [String] = []
            while let line = readLine(strippingNewline: true) { lines.append(line) }
            let t0 = monotonicSeconds()
            let (outputs, truncated) = try translation.translate(lines)
            let seconds = monotonicSeconds() - t0
            for var bytes in outputs {
                bytes.append(0x0A)
                bytes.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 1, $0.count, stdout) }
            }
            fflush(stdout)
            let cut = truncated > 0 ? ", \(truncated) source(s) truncated to \(translation.maxSourceTokens) tokens" : ""
            FileHandle.standardError.write(Data(String(format: "translated %d sentences in %.1f s (%.1f sentences/s), beam %d\(cut)\n",
                                                       lines.count, seconds, Double(lines.count) / max(seconds, 1e-9), beam).utf8))
        }
    }
}
