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
import TrainingTestSupport

@Suite struct SentenceTranslationTests {
    func makeModel(in dir: String) throws -> EncoderDecoder { try writeRandomTranslationModel(in: dir, seed: 3).0 }

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
