// model-config.json: round trip, and errors that name the file and the key.
import Testing
import Foundation
import Models
import Training
import TestSupport

@Suite struct EncoderDecoderFileTests {
    func write(_ text: String) throws -> String {
        let path = scratchPath("loom-edf-", suffix: ".json")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func roundTripAndErrors() throws {
        let file = EncoderDecoderFile(config: .base(vocabularySize: 8000), beginToken: "<s>", endToken: nil)
        let path = scratchPath("loom-edf-", suffix: ".json")
        try file.write(path)
        #expect(try EncoderDecoderFile.load(path) == file)
        let base = #""vocabulary_size": 10, "max_length": 8, "encoder_layers": 1, "decoder_layers": 1, "width": 8, "heads": 2, "ffn_width": 16"#
        #expect(try EncoderDecoderFile.load(write("{\(base), \"pre_norm\": true}")).config.normPlacement == .pre)
        func message(_ text: String) throws -> String {
            let p = try write(text)
            do { _ = try EncoderDecoderFile.load(p); return "no error" } catch { return "\(error)" }
        }
        #expect(try message("{\(base), \"layers\": 2}").contains("unknown key 'layers'"))
        #expect(try message("{\(base), \"pre_norm\": 1}").contains("key 'pre_norm' must be true or false"))
        #expect(try message(#"{"vocabulary_size": 10}"#).contains("missing key 'max_length'"))
        #expect(try message("{\(base.replacingOccurrences(of: "\"heads\": 2", with: "\"heads\": 3"))}").contains("divisible by heads 3"))
        #expect(try message("{\(base.replacingOccurrences(of: "\"width\": 8", with: "\"width\": 8.5"))}").contains("key 'width' must be an integer, got 8.5"))
    }

    /// A model-config.json exactly as Loom wrote it before the file took the run config's keys
    /// (max_length, decoder_layers, pre_norm) still loads, to the same shape.
    @Test func aFileInTheEarlierSpellingLoads() throws {
        let earlier = """
        {
          "attention_dropout" : 0,
          "decoder_layers" : 3,
          "dropout" : 0.30000001192092896,
          "encoder_layers" : 2,
          "ffn_width" : 1024,
          "heads" : 4,
          "layer_norm_epsilon" : 9.999999747378752e-06,
          "max_length" : 128,
          "pre_norm" : true,
          "vocabulary_size" : 8000,
          "width" : 256
        }
        """
        let file = try EncoderDecoderFile.load(write(earlier))
        let expected = EncoderDecoderConfig(vocabularySize: 8000, maxLength: 128, encoderLayers: 2, decoderLayers: 3, width: 256,
                                            heads: 4, ffnWidth: 1024, dropout: 0.3, normPlacement: .pre)
        #expect(file == EncoderDecoderFile(config: expected))
        // Written again, it takes today's keys and reads back the same.
        let path = try write("")
        try file.write(path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("\"context_length\"") && text.contains("\"norm_placement\" : \"pre\"") && !text.contains("max_length"), "\(text)")
        #expect(try EncoderDecoderFile.load(path) == file)
    }

    /// The `model:` section of a run config and model-config.json are one schema: the shape a
    /// transformer config resolves to is what the file writes and reads, attention dropout included.
    @Test func theRunConfigAndTheFileShareOneShape() throws {
        let yaml = """
        model: {kind: transformer, encoder_layers: 1, layers: 2, heads: 2, width: 16, context_length: 12,
                dropout: 0.1, attention_dropout: 0.05, norm_placement: pre}
        data: {shards: s}
        """
        let shape = try LoomConfig.parse(yaml: yaml, file: "t.yaml").encoderDecoderConfig(vocabularySize: 40)
        #expect(shape.attentionDropout == 0.05 && shape.normPlacement == .pre && shape.encoderLayers == 1 && shape.maxLength == 12)
        let path = try write("")
        try EncoderDecoderFile(config: shape, endToken: "</s>").write(path)
        #expect(try EncoderDecoderFile.load(path) == EncoderDecoderFile(config: shape, endToken: "</s>"))
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        for key in object.keys where key != "end_token" {
            #expect(yaml.contains(key + ":") || ["vocabulary_size", "ffn_width", "layer_norm_epsilon"].contains(key), "\(key)")
        }
        func message(_ text: String) throws -> String {
            do { _ = try EncoderDecoderFile.load(try write(text)); return "no error" } catch { return "\(error)" }
        }
        let today = #""vocabulary_size": 10, "context_length": 8, "layers": 1, "width": 8, "heads": 2"#
        #expect(try message("{\(today)}") == "no error")
        #expect(try message("{\(today), \"norm_placement\": \"middle\"}").contains("key 'norm_placement' must be post or pre, got 'middle'"))
        #expect(try message(#"{"vocabulary_size": 10, "layers": 1}"#).contains("missing key 'context_length'"))
    }
}
