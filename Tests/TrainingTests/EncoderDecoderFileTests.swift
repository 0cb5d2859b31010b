// model-config.json: round trip, and errors that name the file and the key.
import Testing
import Foundation
import Models
import Training

@Suite struct EncoderDecoderFileTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "loom-edf-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func roundTripAndErrors() throws {
        let file = EncoderDecoderFile(config: .base(vocabularySize: 8000), beginToken: "<s>", endToken: nil)
        let path = NSTemporaryDirectory() + "loom-edf-\(UUID().uuidString).json"
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
}
