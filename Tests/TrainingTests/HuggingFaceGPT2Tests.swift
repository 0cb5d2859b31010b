// HuggingFaceGPT2: tensor names and config.json both ways, a Hugging Face GPT-2 directory written
// by hand (F32, F16 and BF16 tensors, mask buffers, a tied head, vocab.json + merges.txt) imported
// through model.init_from, and every bad input refused by name before a run directory exists.
import Testing
import Foundation
import Models
import Training
import Data
import Distributed
import TestSupport
import TrainingTestSupport
import Support

/// GPT2LMHeadModel's state dict of a model with `layers` blocks, as transformers names and shapes
/// it (written out here, not derived from Loom's layout).
func gpt2StateDictShapes(layers: Int, width C: Int, vocabulary V: Int, positions P: Int) -> [String: [Int]] {
    var shapes: [String: [Int]] = ["transformer.wte.weight": [V, C], "transformer.wpe.weight": [P, C],
                                   "transformer.ln_f.weight": [C], "transformer.ln_f.bias": [C]]
    for l in 0..<layers {
        let h = "transformer.h.\(l)."
        for norm in ["ln_1", "ln_2"] { shapes[h + norm + ".weight"] = [C]; shapes[h + norm + ".bias"] = [C] }
        shapes[h + "attn.c_attn.weight"] = [C, 3 * C]; shapes[h + "attn.c_attn.bias"] = [3 * C]
        shapes[h + "attn.c_proj.weight"] = [C, C]; shapes[h + "attn.c_proj.bias"] = [C]
        shapes[h + "mlp.c_fc.weight"] = [C, 4 * C]; shapes[h + "mlp.c_fc.bias"] = [4 * C]
        shapes[h + "mlp.c_proj.weight"] = [4 * C, C]; shapes[h + "mlp.c_proj.bias"] = [C]
    }
    return shapes
}

/// A safetensors file written the way Python's `safetensors` writes one, tensor by tensor, each
/// with its own dtype: (name, dtype, shape, little-endian bytes).
func writeSafetensors(_ path: String, _ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]) throws {
    var header: [String: Any] = ["__metadata__": ["format": "pt"]]
    var offset = 0
    for t in tensors {
        header[t.name] = ["dtype": t.dtype, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count]] as [String: Any]
        offset += t.bytes.count
    }
    var json = try JSONSerialization.data(withJSONObject: header)
    while json.count % 8 != 0 { json.append(0x20) }
    var file = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    for t in tensors { file.append(contentsOf: t.bytes) }
    try file.write(to: URL(fileURLWithPath: path))
}

func f32Bytes(_ values: [Float]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } } }
/// BF16: the top half of each F32 (exact for values with 8 significant bits).
func bf16Bytes(_ values: [Float]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { Array($0) } } }
/// F16 of small multiples of 1/64 (exact): sign, exponent and 10-bit mantissa by hand.
func f16Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        var bits: UInt16 = 0
        if v != 0 {
            let exponent = Int(v.exponent), mantissa = UInt16((abs(v) / Float(sign: .plus, exponent: exponent, significand: 1) - 1) * 1024)
            bits = (v < 0 ? 0x8000 : 0) | UInt16(exponent + 15) << 10 | mantissa
        }
        return withUnsafeBytes(of: bits.littleEndian) { Array($0) }
    }
}

/// A Hugging Face GPT-2 directory of 1 block, width 8, 2 heads, 16 positions and a 258-token
/// byte-level vocabulary (vocab.json + merges.txt), every value a known function of its tensor and
/// index. `edit` changes the config or the tensor list before writing.
struct HandMadeGPT2 {
    static let width = 8, positions = 16, vocabulary = 258
    let directory: String
    /// The value of element i of tensor `name`: exact in F32, BF16 and F16 (multiples of 1/64 below 2).
    static func value(_ name: String, _ i: Int) -> Float {
        if name.hasSuffix("ln_1.weight") || name.hasSuffix("ln_2.weight") || name.hasSuffix("ln_f.weight") { return 1 + Float(i % 4) / 64 }
        let seed = name.unicodeScalars.reduce(0) { ($0 &* 31 &+ Int($1.value)) % 1009 }
        return Float((seed + 7 * i) % 33 - 16) / 64
    }
    static let dtypes = ["transformer.h.0.mlp.c_fc.weight": "F16", "transformer.wte.weight": "BF16"]

    init(editConfig: (inout [String: Any]) -> Void = { _ in },
         editTensors: (inout [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]) -> Void = { _ in },
         tokenizer: Bool = true) throws {
        directory = try makeScratchDirectory("hf-gpt2-")
        var config: [String: Any] = ["model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_layer": 1, "n_head": 2,
                                     "n_embd": Self.width, "n_positions": Self.positions, "n_ctx": Self.positions,
                                     "vocab_size": Self.vocabulary, "activation_function": "gelu_new",
                                     "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
                                     "bos_token_id": 256, "eos_token_id": 256, "n_inner": NSNull()]
        editConfig(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: directory + "/config.json"))
        let shapes = gpt2StateDictShapes(layers: 1, width: Self.width, vocabulary: Self.vocabulary, positions: Self.positions)
        var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = shapes.keys.sorted().map { name in
            let values = (0..<shapes[name]!.reduce(1, *)).map { Self.value(name, $0) }
            let dtype = Self.dtypes[name] ?? "F32"
            return (name, dtype, shapes[name]!, dtype == "F16" ? f16Bytes(values) : dtype == "BF16" ? bf16Bytes(values) : f32Bytes(values))
        }
        // What older transformers versions saved besides the parameters: the causal mask buffers and the tied head.
        let mask = (0..<(Self.positions * Self.positions)).map { Float(($0 % Self.positions) <= ($0 / Self.positions) ? 1 : 0) }
        tensors.append(("transformer.h.0.attn.bias", "F32", [1, 1, Self.positions, Self.positions], f32Bytes(mask)))
        tensors.append(("transformer.h.0.attn.masked_bias", "F32", [], f32Bytes([-1e4])))
        let wte = (0..<(Self.vocabulary * Self.width)).map { Self.value("transformer.wte.weight", $0) }
        tensors.append(("lm_head.weight", "F32", [Self.vocabulary, Self.width], f32Bytes(wte)))
        editTensors(&tensors)
        try writeSafetensors(directory + "/model.safetensors", tensors)
        if tokenizer {
            var vocab: [String: Int] = [:]
            for b in 0..<256 { vocab[ByteLevel.printable([UInt8(b)])] = b }
            vocab["<|endoftext|>"] = 256
            vocab["th"] = 257
            try JSONSerialization.data(withJSONObject: vocab).write(to: URL(fileURLWithPath: directory + "/vocab.json"))
            try "#version: 0.2\nt h\n".write(toFile: directory + "/merges.txt", atomically: true, encoding: .utf8)
        }
    }

    /// A run config starting from this directory; `model` adds keys to the model section.
    func config(corpus: String, model: String = "") throws -> LoomConfig {
        try LoomConfig.parse(yaml: """
            model: {init_from: \(directory)\(model)}
            data: {corpus: \(corpus)}
            training: {steps: 2, batch_size: 2, micro_batch_size: 2, threads: 1}
            evaluation: {interval: 0, batches: 1}
            """, file: "init.yaml")
    }
}

@Suite struct HuggingFaceGPT2Tests {
    @Test func tensorNamesMapBothWaysOntoGPT2LMHeadModelsStateDict() {
        let shape = GPTConfig(vocabularySize: 11, contextLength: 6, layers: 2, heads: 2, width: 4)
        let layout = GPT.layout(shape)
        var exported: [String: [Int]] = [:]
        for t in layout.tensors {
            let name = HuggingFaceGPT2.huggingFaceName(loom: t.name)
            exported[name] = t.shape
            #expect(HuggingFaceGPT2.loomName(huggingFace: name) == t.name)
            #expect(HuggingFaceGPT2.loomName(huggingFace: t.name) == t.name, "GPT2Model spelling of \(t.name)")
        }
        #expect(exported == gpt2StateDictShapes(layers: 2, width: 4, vocabulary: 11, positions: 6))
        #expect(HuggingFaceGPT2.loomName(huggingFace: "lm_head.weight") == nil)
        #expect(HuggingFaceGPT2.isMaskBuffer("transformer.h.1.attn.masked_bias") && !HuggingFaceGPT2.isMaskBuffer("transformer.h.1.attn.c_attn.bias"))
    }

    @Test func configJSONRoundTrips() throws {
        var shape = GPTConfig(vocabularySize: 300, contextLength: 32, layers: 3, heads: 4, width: 48, dropout: 0.1)
        shape.layerNormEpsilon = 1e-6
        for config in [HuggingFaceGPT2.ModelConfig(shape: shape, bosTokenID: 299, eosTokenID: 299),
                       HuggingFaceGPT2.ModelConfig(shape: shape)] {
            let path = scratchPath("hf-config-", suffix: ".json")
            try HuggingFaceGPT2.configJSON(config).write(to: URL(fileURLWithPath: path))
            #expect(try HuggingFaceGPT2.readConfig(path) == config)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
            #expect(object["model_type"] as? String == "gpt2" && object["activation_function"] as? String == "gelu_new")
            #expect(object["architectures"] as? [String] == ["GPT2LMHeadModel"] && object["tie_word_embeddings"] as? Bool == true)
            #expect(object["n_positions"] as? Int == 32 && object["n_embd"] as? Int == 48 && object["layer_norm_epsilon"] as? Double == 1e-6)
        }
    }

    @Test func aHandMadeDirectoryImportsWithItsShapeTensorsAndTokenizer() throws {
        let hf = try HandMadeGPT2()
        let corpus = scratchPath("hf-corpus-", suffix: ".txt")
        try String(repeating: "the theme of the thing\n", count: 40).write(toFile: corpus, atomically: true, encoding: .utf8)
        // The whole shape from config.json; a shorter context keeps the first rows of the positions.
        for (model, context) in [("", HandMadeGPT2.positions), (", context_length: 8", 8)] {
            let config = try hf.config(corpus: corpus, model: model)
            let shape = try config.gptConfig(vocabularySize: HandMadeGPT2.vocabulary)
            #expect(shape.layers == 1 && shape.heads == 2 && shape.width == 8 && shape.contextLength == context)
            #expect(shape.vocabularySize == HandMadeGPT2.vocabulary && shape.initFrom == hf.directory && shape.dropout == 0)
            #expect(config.data.tokenizer == .file(hf.directory + "/vocab.json"))
            let data = try PreparedData(config: config)
            #expect(try data.tokenizer.encode("the") == [257, Int32(UInt8(ascii: "e"))])
            let gpt = GPT(config: shape, maxBatch: 1)
            try HuggingFaceGPT2.loadWeights(directory: hf.directory, into: gpt)
            for t in gpt.layout.tensors {
                let loaded = Array(UnsafeBufferPointer(start: gpt.parameters.pointer + t.offset, count: t.count))
                let expected = (0..<t.count).map { HandMadeGPT2.value(HuggingFaceGPT2.huggingFaceName(loom: t.name), $0) }
                #expect(loaded == expected, "\(t.name)")
            }
        }
    }

    /// Each bad directory fails with an error naming the file and the key or tensor, and the run
    /// directory is never created.
    @Test func badInputIsRefusedByNameAndWritesNothing() throws {
        let corpus = scratchPath("hf-corpus-", suffix: ".txt")
        try String(repeating: "the theme of the thing\n", count: 40).write(toFile: corpus, atomically: true, encoding: .utf8)
        func attempt(_ hf: HandMadeGPT2, model: String = "", succeeds: Bool = false) -> String {
            let run = scratchPath("hf-run-")
            defer { #expect(FileManager.default.fileExists(atPath: run) == succeeds, "\(run) exists: \(!succeeds)") }
            do {
                let config = try hf.config(corpus: corpus, model: model)
                _ = try TrainingRun(config: config, communicator: SingleProcessCommunicator(), directory: run, resume: nil,
                                    progress: Progress(mode: .off))
                return "no error"
            } catch { return "\(error)" }
        }
        let cases: [(HandMadeGPT2, String, [String])] = [
            (try HandMadeGPT2(editConfig: { $0["model_type"] = "bert" }), "", ["config.json", "'model_type'", "bert"]),
            (try HandMadeGPT2(), ", layers: 3", ["init.yaml", "model.layers", "n_layer: 1"]),
            (try HandMadeGPT2(), ", context_length: 32", ["model.context_length", "n_positions: 16"]),
            (try HandMadeGPT2(editConfig: { $0["activation_function"] = "relu" }), "", ["config.json", "'activation_function'"]),
            (try HandMadeGPT2(editTensors: { $0.removeAll { $0.name == "transformer.h.0.mlp.c_proj.bias" } }), "",
             ["model.safetensors", "'transformer.h.0.mlp.c_proj.bias'", "missing"]),
            (try HandMadeGPT2(editTensors: { ts in
                let i = ts.firstIndex { $0.name == "transformer.h.0.attn.c_proj.weight" }!
                ts[i].shape = [4, 16] }), "", ["model.safetensors", "'transformer.h.0.attn.c_proj.weight'", "[4, 16]", "[8, 8]"]),
            (try HandMadeGPT2(editTensors: { ts in
                let i = ts.firstIndex { $0.name == "transformer.ln_f.bias" }!
                ts[i] = (ts[i].name, "F64", ts[i].shape, [UInt8](repeating: 0, count: 8 * 8)) }), "",
             ["model.safetensors", "'transformer.ln_f.bias'", "F64"]),
            (try HandMadeGPT2(editTensors: { ts in
                let i = ts.firstIndex { $0.name == "lm_head.weight" }!
                ts[i].bytes = f32Bytes([Float](repeating: 0.5, count: HandMadeGPT2.vocabulary * HandMadeGPT2.width)) }), "",
             ["model.safetensors", "'lm_head.weight'", "tie"]),
            (try HandMadeGPT2(editTensors: { $0.append(("transformer.h.0.crossattention.c_attn.weight", "F32", [1], f32Bytes([0]))) }), "",
             ["model.safetensors", "'transformer.h.0.crossattention.c_attn.weight'", "unexpected"]),
            (try HandMadeGPT2(tokenizer: false), "", ["neither tokenizer.json nor vocab.json"]),
        ]
        for (hf, model, needles) in cases {
            let message = attempt(hf, model: model)
            for needle in needles { #expect(message.contains(needle), "\(needles): \(message)") }
        }
        // The good directory trains: the test's cases differ from it by the one fault each.
        #expect(attempt(try HandMadeGPT2(), succeeds: true) == "no error")
    }

    /// The dispatch refuses an encoder-decoder run with its typed error (until its writer exists),
    /// and the refused export leaves neither the directory nor its staging directory.
    /// `loom export` hands an encoder-decoder to the Marian writer, which refuses pre-LN before
    /// writing anything (HuggingFaceMarianTests covers the post-LN export itself).
    @Test func aPreNormEncoderDecoderRunIsRefusedAndNothingIsWritten() throws {
        let run = try makeScratchDirectory("hf-ed-run-")
        _ = try writeRandomTranslationModel(in: run, seed: 2)
        try """
            model: {kind: transformer, layers: 1, encoder_layers: 1, heads: 2, width: 16, ffn_width: 32, context_length: 24, norm_placement: pre}
            data: {shards: train, validation_shards: valid}
            """.write(toFile: run + "/config.yaml", atomically: true, encoding: .utf8)
        let parent = try makeScratchDirectory("hf-ed-out-")
        #expect { try ModelExport.export(try ExportSource(run), format: .hf, to: parent + "/out") } throws: { error in
            (error as? MarianExportError)?.message.contains("Marian has no pre-LN") == true
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
    }
}
