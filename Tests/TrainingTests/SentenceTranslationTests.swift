// SentenceTranslation in process: a random encoder-decoder written to a directory translates in
// input order exactly as the Translator does on the sources one at a time, finds its files from a
// checkpoint directory, and names the file at fault when something is missing.
import Testing
import Foundation
import Data
import Models
import Training
import Support
import TestSupport

@Suite struct SentenceTranslationTests {
    /// A random pre-LN model (V = 260: bytes, <s>, </s>, two merges) with its config and tokenizer in `dir`.
    func makeModel(in dir: String) throws -> EncoderDecoder {
        var trainer = BPETrainer(specials: ["<s>", "</s>"])
        trainer.add(Array("ab ab ab cd cd".utf8))
        let bpe = try trainer.train(vocabularySize: 260, specials: ["<s>", "</s>"])
        try bpe.serialized().write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let config = EncoderDecoderConfig(vocabularySize: 260, maxLength: 24, encoderLayers: 1, decoderLayers: 1, width: 16,
                                          heads: 2, ffnWidth: 32, normPlacement: .pre)
        let model = EncoderDecoder(config: config, maxBatch: 4)
        model.initialize(seed: 3)
        let key = CounterRandom.key(3, 1)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += 0.5 * (CounterRandom.uniform(key: key, counter: UInt64(i)) - 0.5) }
        try Safetensors.write(dir + "/model.safetensors", layout: model.layout, buffer: model.parameters)
        try EncoderDecoderFile(config: config).write(dir + "/" + EncoderDecoderFile.fileName)
        return model
    }

    func temporaryDirectory() throws -> String {
        let dir = scratchPath("loom-translation-")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(arguments: [1, 3])
    func batchedTranslationKeepsInputOrderAndMatchesOneSentenceAtATime(beam: Int) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let model = try makeModel(in: dir)
        let lines = ["ab", "cd cd ab ab", "", "abcd", "ab ab ab ab ab cd"]
        let translation = try SentenceTranslation(model: dir, config: nil, tokenizer: nil, batch: 2, beamSize: beam,
                                                  lengthPenalty: 0.6, extraLength: 10)
        let (outputs, truncated) = try translation.translate(lines)
        #expect(truncated == 0)
        #expect(outputs.count == lines.count)
        // The reference: each sentence alone through the Translator of the same weights.
        let tokenizer = try TokenizerFile.load(dir + "/tokenizer.json")
        let single = Translator(model: model, maxSentences: 1, maxBeam: beam)
        for (line, output) in zip(lines, outputs) {
            let source = try tokenizer.encode(bytes: Array(line.utf8)) + [translation.options.end]
            let reference = beam == 1 ? single.greedy([source], options: translation.options)[0]
                : single.beam([source], options: translation.options)[0]
            #expect(output == tokenizer.decodeBytes(reference), "line '\(line)'")
        }
    }

    @Test func aCheckpointFindsTheRunsConfigAndTokenizer() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try makeModel(in: dir)
        let step = dir + "/checkpoints/step-00000010"
        try FileManager.default.createDirectory(atPath: step, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/model.safetensors", toPath: step + "/model.safetensors")
        let fromRun = try SentenceTranslation(model: dir, config: nil, tokenizer: nil, batch: 2, beamSize: 2,
                                              lengthPenalty: 0.6, extraLength: 5)
        let fromCheckpoint = try SentenceTranslation(model: step, config: nil, tokenizer: nil, batch: 2, beamSize: 2,
                                                     lengthPenalty: 0.6, extraLength: 5)
        #expect(try fromCheckpoint.translate(["ab cd"]).outputs == fromRun.translate(["ab cd"]).outputs)
    }

    @Test func missingFilesAreNamed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TranslationSetupError.self) {
            try SentenceTranslation(model: dir + "/absent", config: nil, tokenizer: nil, batch: 1, beamSize: 1,
                                    lengthPenalty: 0.6, extraLength: 5)
        }
        _ = try makeModel(in: dir)
        try FileManager.default.removeItem(atPath: dir + "/tokenizer.json")
        do {
            _ = try SentenceTranslation(model: dir, config: nil, tokenizer: nil, batch: 1, beamSize: 1,
                                        lengthPenalty: 0.6, extraLength: 5)
            Issue.record("a missing tokenizer must fail")
        } catch {
            #expect("\(error)".contains(dir + "/tokenizer.json"), "\(error)")
        }
    }
}
