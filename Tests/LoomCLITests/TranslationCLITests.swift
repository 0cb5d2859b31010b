// End-to-end runs of `loom translate`, `loom average` and `loom eval bleu` on files made here
// (a random encoder-decoder and a byte-level BPE with <s> and </s>), and their error messages.
import Testing
import Foundation
import Data
import Kernels
import Models
import Training
import Support
import TrainingTestSupport

@Suite(.serialized) struct TranslationCLITests {
    func makeModel(in dir: String, seed: UInt64) throws -> (EncoderDecoder, Tokenizer) {
        try writeRandomTranslationModel(in: dir, seed: seed)
    }

    func loomWithInput(_ arguments: [String], input: String, in directory: String) throws -> Run {
        try input.write(toFile: directory + "/input.txt", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: loomBinary())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle(forReadingAtPath: directory + "/input.txt")
        let out = Pipe(), err = Pipe()
        process.standardOutput = out; process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func translateMatchesTheLibraryInInputOrder() throws {
        let dir = try scratchDirectory()
        let (model, tok) = try makeModel(in: dir, seed: 3)
        let lines = ["ab cd", "a", "cd cd ab ab cd", "b"]
        for beam in [1, 3] {
            let run = try loomWithInput(["translate", dir, "--tokenizer", dir + "/tokenizer.json", "--beam", "\(beam)",
                                         "--batch", "3", "--max-extra", "6"], input: lines.joined(separator: "\n") + "\n", in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            let out = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
            #expect(out.count == lines.count)
            // The same search through the library, one sentence at a time.
            let end = tok.specialTokenID("</s>")!, begin = tok.specialTokenID("<s>")!
            let translator = Translator(model: model, maxSentences: 1, maxBeam: beam)
            let options = SearchOptions(beamSize: beam, extraLength: 6, begin: begin, end: end)
            for (i, line) in lines.enumerated() {
                let source = try tok.encode(line) + [end]
                let ids = beam == 1 ? translator.greedy([source], options: options)[0] : translator.beam([source], options: options)[0]
                #expect(out[i] == String(decoding: tok.decodeBytes(ids), as: UTF8.self), "line \(i), beam \(beam)")
            }
        }
        let missing = try loomWithInput(["translate", dir + "/nothing", "--tokenizer", dir + "/tokenizer.json"], input: "", in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("nothing"))
    }

    @Test func averageIsTheMeanAndNamesAMismatchedTensor() throws {
        let dir = try scratchDirectory()
        for (i, seed) in [UInt64(1), 2, 3].enumerated() {
            try FileManager.default.createDirectory(atPath: dir + "/c\(i)", withIntermediateDirectories: true)
            _ = try makeModel(in: dir + "/c\(i)", seed: seed)
        }
        let run = try loom(["average", "c0", "c1/model.safetensors", "c2", "--out", "avg.safetensors"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let config = try EncoderDecoderFile.load(dir + "/c0/model-config.json").config
        let parts = try (0..<3).map { i -> FlatBuffer in
            let m = EncoderDecoder(config: config, maxBatch: 1)
            try Safetensors.read(dir + "/c\(i)/model.safetensors", layout: m.layout, into: m.parameters)
            return m.parameters
        }
        let avg = EncoderDecoder(config: config, maxBatch: 1)
        let metadata = try Safetensors.read(dir + "/avg.safetensors", layout: avg.layout, into: avg.parameters)
        #expect(metadata["averaged_from"]?.contains("c1/model.safetensors") == true)
        var worst: Float = 0
        for i in 0..<avg.parameters.count {
            let mean = (parts[0].pointer[i] + parts[1].pointer[i] + parts[2].pointer[i]) / 3
            worst = max(worst, abs(avg.parameters.pointer[i] - mean))
        }
        #expect(worst < 1e-6)
        // A model of another width: the error names the tensor and the file.
        var other = config
        other.ffnWidth = 8
        let m = EncoderDecoder(config: other, maxBatch: 1)
        try Safetensors.write(dir + "/other.safetensors", layout: m.layout, buffer: m.parameters)
        let bad = try loom(["average", "c0", "other.safetensors", "--out", "bad.safetensors"], in: dir)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("other.safetensors") && bad.stderr.contains("encoder.layers.0.fc1.weight") && bad.stderr.contains("shape"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad.safetensors"))
    }

    @Test func bleuPrintsTheSacreBLEULineAndChecksLineCounts() throws {
        let dir = try scratchDirectory()
        try "the cat sat on the mat\na b c d e\n".write(toFile: dir + "/hyp", atomically: true, encoding: .utf8)
        try "the cat is on the mat\na b c d e\n".write(toFile: dir + "/ref", atomically: true, encoding: .utf8)
        let run = try loom(["eval", "bleu", "--hypotheses", "hyp", "--references", "ref"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "BLEU = 63.40 90.9/77.8/57.1/40.0 (BP = 1.000 ratio = 1.000 hyp_len = 11 ref_len = 11)\n")
        try "one line\n".write(toFile: dir + "/short", atomically: true, encoding: .utf8)
        let bad = try loom(["eval", "bleu", "--hypotheses", "hyp", "--references", "short"], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("short: 1 lines, but hyp has 2"), "\(bad.stderr)")
    }
}
