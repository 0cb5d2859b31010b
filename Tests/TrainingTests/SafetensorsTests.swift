// Safetensors: round trip, the header's layout, and refusal of damaged or mismatched files.
import Testing
import Foundation
import Models
import Training
import Data
import TestSupport
import Support

@Suite struct SafetensorsTests {
    func tempPath() -> String { scratchPath("loom-st-", suffix: ".safetensors") }

    @Test func roundTripAndHeader() throws {
        let config = GPTConfig(vocabularySize: 5, contextLength: 4, layers: 1, heads: 2, width: 4)
        let model = GPT(config: config, maxBatch: 1)
        model.initialize(seed: 3)
        let path = tempPath()
        try Safetensors.write(path, layout: model.layout, buffer: model.parameters, metadata: ["format": "pt"])
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = try Safetensors.readHeader(data, path: path)
        #expect(header.dataOffset % 8 == 0)
        #expect(header.tensors["h.0.attn.c_attn.weight"]?.shape == [4, 12])
        #expect(header.metadata["format"] == "pt")
        #expect(data.count == header.dataOffset + model.parameters.bytes)
        let other = GPT(config: config, maxBatch: 1)
        try Safetensors.read(path, layout: other.layout, into: other.parameters)
        #expect(Array(other.parameters.buffer) == Array(model.parameters.buffer))
        // No temporary file is left beside it.
        let dir = (path as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("tmp-") && $0.contains((path as NSString).lastPathComponent) }.isEmpty)
    }

    @Test func damagedOrMismatchedFilesAreRefusedByName() throws {
        let config = GPTConfig(vocabularySize: 5, contextLength: 4, layers: 1, heads: 2, width: 4)
        let model = GPT(config: config, maxBatch: 1)
        let path = tempPath()
        try Safetensors.write(path, layout: model.layout, buffer: model.parameters)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        // Truncated data section.
        try good.prefix(good.count - 4).write(to: URL(fileURLWithPath: path))
        #expect { try Safetensors.read(path, layout: model.layout, into: model.parameters) } throws: { "\($0)".contains(path) }
        // Header length pointing past the end.
        var bad = good
        bad[3] = 0x7F
        try bad.write(to: URL(fileURLWithPath: path))
        #expect { try Safetensors.read(path, layout: model.layout, into: model.parameters) } throws: { "\($0)".contains("header length") }
        // Shapes from another config name the tensor.
        try good.write(to: URL(fileURLWithPath: path))
        let wider = GPT(config: GPTConfig(vocabularySize: 5, contextLength: 4, layers: 1, heads: 2, width: 8), maxBatch: 1)
        #expect { try Safetensors.read(path, layout: wider.layout, into: wider.parameters) } throws: { "\($0)".contains("wte.weight") }
    }

    @Test func failedWriteLeavesNoPartialFileAndKeepsTheOldOne() throws {
        let dir = scratchPath("loom-fail-")
        try FileManager.default.createDirectory(atPath: dir + "/model.safetensors/occupied", withIntermediateDirectories: true)
        // The destination is a non-empty directory: the final rename fails after the data was written.
        #expect(throws: FileWriteError.self) { try AtomicFile.write(dir + "/model.safetensors", text: "new") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.safetensors"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/model.safetensors") == ["occupied"])
        // A missing directory fails before anything is written.
        #expect(throws: FileWriteError.self) { try AtomicFile.write(dir + "/absent/file", text: "x") }
    }
}
