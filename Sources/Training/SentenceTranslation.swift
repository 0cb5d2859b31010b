// SentenceTranslation: a trained encoder-decoder ready to translate lines of text — found from a
// weights file, a model directory, a run or one of its checkpoints, with its model-config.json,
// tokenizer and begin/end tokens resolved — and the batched search over many sentences that
// `loom translate` runs (longest sources first, outputs back in input order).
import Foundation
import Data
import Models
import Support

/// A problem with the files a translation reads; the message names the file.
public struct TranslationSetupError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

public final class SentenceTranslation {
    public let file: EncoderDecoderFile
    public let tokenizer: Tokenizer
    public let translator: Translator
    /// The search settings, with the resolved begin and end tokens.
    public let options: SearchOptions
    /// Sentences decoded together.
    public let batch: Int
    /// Longest source kept, in tokens (the end token is added after it).
    public var maxSourceTokens: Int { file.config.maxLength - 1 }

    /// Loads the model at `model` (a model.safetensors file, a directory holding it, a run
    /// directory or RUN/checkpoints/step-N); `config` and `tokenizer` default to the files beside
    /// the weights, then to the run's.
    public init(model: String, config: String?, tokenizer tokenizerPath: String?, batch: Int, beamSize: Int,
                lengthPenalty: Float, extraLength: Int) throws {
        guard let files = EncoderDecoderFile.locate(model: model, config: config, tokenizer: tokenizerPath) else {
            throw TranslationSetupError(path: model, message: "no such file or directory")
        }
        let weights = files.weights, configPath = files.config
        file = try EncoderDecoderFile.load(configPath)
        let tokenizerPath = files.tokenizer
        tokenizer = try TokenizerFile.load(tokenizerPath)
        guard tokenizer.vocabularySize <= file.config.vocabularySize else {
            throw TranslationSetupError(path: tokenizerPath, message: "\(tokenizer.vocabularySize) tokens, but \(configPath) has vocabulary_size \(file.config.vocabularySize)")
        }
        let begin = try SentenceTranslation.token(file.beginToken, ["<s>", "<|endoftext|>"], key: "begin_token",
                                                  tokenizer: tokenizer, tokenizerPath: tokenizerPath, configPath: configPath)
        let end = try SentenceTranslation.token(file.endToken, ["</s>", "<|endoftext|>"], key: "end_token",
                                                tokenizer: tokenizer, tokenizerPath: tokenizerPath, configPath: configPath)
        let net = EncoderDecoder(config: file.config, maxBatch: batch)
        try Safetensors.read(weights, layout: net.layout, into: net.parameters)
        translator = Translator(model: net, maxSentences: batch, maxBeam: beamSize)
        options = SearchOptions(beamSize: beamSize, lengthPenalty: lengthPenalty, extraLength: extraLength,
                                begin: begin, end: end)
        self.batch = batch
    }

    /// The id of a begin or end token: the one model-config.json names, else the first fallback
    /// the tokenizer has.
    static func token(_ text: String?, _ fallbacks: [String], key: String, tokenizer: Tokenizer,
                      tokenizerPath: String, configPath: String) throws -> Int32 {
        if let text {
            guard let id = tokenizer.specialTokenID(text) else {
                throw TranslationSetupError(path: configPath, message: "\(key) '\(text)' is not a special token of \(tokenizerPath)")
            }
            return id
        }
        for f in fallbacks { if let id = tokenizer.specialTokenID(f) { return id } }
        throw TranslationSetupError(path: tokenizerPath, message: "has none of \(fallbacks.joined(separator: ", ")); set \(key) in \(configPath)")
    }

    /// Translates `lines` (greedy for beam 1, else beam search), returning one output per line in
    /// input order, as bytes, and how many sources were cut to `maxSourceTokens`.
    public func translate(_ lines: [String]) throws -> (outputs: [[UInt8]], truncated: Int) {
        var truncated = 0
        let sources: [[Int32]] = try lines.map { line in
            var ids = try tokenizer.encode(bytes: Array(line.utf8))
            if ids.count > maxSourceTokens { ids.removeLast(ids.count - maxSourceTokens); truncated += 1 }
            return ids + [options.end]
        }
        // Longest first, so each batch pads little; outputs go back to input order.
        let order = sources.indices.sorted { sources[$0].count > sources[$1].count }
        var outputs = [[UInt8]](repeating: [], count: sources.count)
        for start in stride(from: 0, to: order.count, by: batch) {
            let chunk = Array(order[start..<min(start + batch, order.count)])
            let batchSources = chunk.map { sources[$0] }
            let result = options.beamSize == 1 ? translator.greedy(batchSources, options: options)
                : translator.beam(batchSources, options: options)
            for (i, r) in zip(chunk, result) { outputs[i] = tokenizer.decodeBytes(r) }
        }
        return (outputs, truncated)
    }
}
