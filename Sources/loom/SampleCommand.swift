// SampleCommand: `loom sample RUN_DIR --prompt TEXT …` — autoregressive sampling with a key/value
// cache.
import ArgumentParser
import Foundation
import Training
import Models
import Data
import Kernels
import Support

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sample", abstract: "Generate text from a trained run.")

    @Argument(help: "A run directory written by `loom train`.") var runDirectory: String
    @Option(help: "Text to continue (default: a newline).") var prompt: String = "\n"
    @Option(name: .customLong("max-tokens"), help: "Tokens to generate.") var maxTokens: Int = 500
    @Option(help: "Softmax temperature; 0 = greedy.") var temperature: Double = 0.8
    @Option(name: .customLong("top-k"), help: "Sample among the k most likely tokens; 0 = all.") var topK: Int = 200
    @Option(help: "Random seed: same seed, same text.") var seed: UInt64 = 1337

    func run() throws {
        try reportingErrors {
            guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
            guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
            guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
            ThreadPool.configure(threads: 1)
            let run = try RunDirectory(existing: runDirectory)
            let config = try LoomConfig.load(path: run.configPath)
            let tokenizer = try TokenizerFile.load(run.tokenizerPath)
            let model = GPT(config: try config.gptConfig(vocabularySize: tokenizer.vocabularySize), maxBatch: 1)
            try Safetensors.read(run.modelPath, layout: model.layout, into: model.parameters)
            var sampler = Sampler(model: model, temperature: Float(temperature), topK: topK, seed: seed)
            let promptTokens = try tokenizer.encode(prompt)
            print(prompt, terminator: "")
            try sampler.generate(prompt: promptTokens, count: maxTokens) { token in
                // Bytes, not text: a byte-level token may hold part of a character.
                let bytes = tokenizer.decodeBytes([token])
                bytes.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 1, $0.count, stdout) }
                fflush(stdout)
            }
            print("")
        }
    }
}
