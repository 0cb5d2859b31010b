// HuggingFaceMarian without Python: a tiny random post-LN encoder-decoder, written as a run writes
// one, exports to exactly MarianMTModel's tensor names and shapes, its values read back equal
// Loom's buffers under Marian's layout (transposed, Q/K/V split), config.json and the tokenizer
// files say what Loom's model does, and what Marian cannot express is refused with nothing written.
import Testing
import Foundation
import Data
import Kernels
import Models
import Training
import Support
import TestSupport

@Suite struct HuggingFaceMarianTests {
    /// A random model (V 260 with <s>, </s>; 2 encoder, 1 decoder layers, C 16, H 2, F 24, M 20),
    /// written into a new directory with model-config.json and tokenizer.json.
    func writeModel(placement: NormPlacement = .post, epsilon: Float = 1e-5, seed: UInt64 = 7) throws
        -> (dir: String, model: EncoderDecoder, tokenizer: Tokenizer) {
        let dir = try makeScratchDirectory("loom-marian-")
        var trainer = BPETrainer(specials: ["<s>", "</s>"])
        trainer.add(Array("ab ab ab cd cd".utf8))
        let bpe = try trainer.train(vocabularySize: 260, specials: ["<s>", "</s>"])
        try bpe.serialized().write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let config = EncoderDecoderConfig(vocabularySize: 260, maxLength: 20, encoderLayers: 2, decoderLayers: 1, width: 16,
                                          heads: 2, ffnWidth: 24, dropout: 0.25, attentionDropout: 0.125, normPlacement: placement,
                                          layerNormEpsilon: epsilon)
        let model = EncoderDecoder(config: config, maxBatch: 1)
        model.initialize(seed: seed)
        // Biases and LayerNorms start at 0 and 1; make every value distinct so a swapped copy shows.
        let key = CounterRandom.key(seed, 2)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += CounterRandom.uniform(key: key, counter: UInt64(i)) - 0.5 }
        try Safetensors.write(dir + "/model.safetensors", layout: model.layout, buffer: model.parameters)
        try EncoderDecoderFile(config: config).write(dir + "/" + EncoderDecoderFile.fileName)
        return (dir, model, try TokenizerFile.load(dir + "/tokenizer.json"))
    }

    func export(_ dir: String) throws -> (out: String, summary: MarianExport.Summary) {
        let out = try makeScratchDirectory("loom-marian-out-")
        return (out, try MarianExport.write(model: dir, into: out))
    }

    func json(_ path: String) throws -> [String: Any] {
        let data = try #require(FileManager.default.contents(atPath: path), "\(path) missing")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// MarianMTModel's state dict for this config (modeling_marian.py: MarianMTModel → MarianModel →
    /// Marian{Encoder,Decoder}Layer), less the keys tied to model.shared.weight.
    func marianStateDict(_ c: EncoderDecoderConfig) -> [String: [Int]] {
        let C = c.width, F = c.ffnWidth, V = c.vocabularySize
        var names: [String: [Int]] = ["final_logits_bias": [1, V], "model.shared.weight": [V, C],
                                      "model.encoder.embed_positions.weight": [c.maxLength, C],
                                      "model.decoder.embed_positions.weight": [c.maxLength, C]]
        let attention = ["q_proj", "k_proj", "v_proj", "out_proj"]
        let perLayer: [(String, [Int])] = attention.flatMap { [("self_attn.\($0).weight", [C, C]), ("self_attn.\($0).bias", [C])] }
            + [("self_attn_layer_norm.weight", [C]), ("self_attn_layer_norm.bias", [C]),
               ("fc1.weight", [F, C]), ("fc1.bias", [F]), ("fc2.weight", [C, F]), ("fc2.bias", [C]),
               ("final_layer_norm.weight", [C]), ("final_layer_norm.bias", [C])]
        let crossOnly: [(String, [Int])] = attention.flatMap { [("encoder_attn.\($0).weight", [C, C]), ("encoder_attn.\($0).bias", [C])] }
            + [("encoder_attn_layer_norm.weight", [C]), ("encoder_attn_layer_norm.bias", [C])]
        for l in 0..<c.encoderLayers { for (n, s) in perLayer { names["model.encoder.layers.\(l).\(n)"] = s } }
        for l in 0..<c.decoderLayers { for (n, s) in perLayer + crossOnly { names["model.decoder.layers.\(l).\(n)"] = s } }
        return names
    }

    @Test func tensorNamesAndShapesAreMarians() throws {
        let (dir, model, _) = try writeModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (out, summary) = try export(dir)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
        let header = try Safetensors.readHeader(data, path: out)
        let expected = marianStateDict(model.config)
        #expect(Set(header.tensors.keys) == Set(expected.keys))
        for (name, shape) in expected { #expect(header.tensors[name]?.shape == shape, "\(name)") }
        #expect(header.metadata["format"] == "pt")
        #expect(summary.tensors == expected.count)
        #expect(summary.parameters == expected.values.map { $0.reduce(1, *) }.reduce(0, +))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out))
                == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
    }

    @Test func valuesMapBackToLoomsBuffersExactly() throws {
        let (dir, model, _) = try writeModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (out, _) = try export(dir)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let c = model.config, C = c.width
        let marian = MarianExport.layout(c), values = FlatBuffer(count: marian.count)
        try Safetensors.read(out + "/model.safetensors", layout: marian, into: values)
        func m(_ name: String) throws -> (spec: TensorSpec, p: UnsafeMutablePointer<Float>) {
            let s = try #require(marian.spec(name), "\(name)"); return (s, values.pointer + s.offset)
        }
        func loom(_ name: String) throws -> (spec: TensorSpec, p: UnsafeMutablePointer<Float>) {
            let s = try #require(model.layout.spec(name), "\(name)"); return (s, model.parameters.pointer + s.offset)
        }
        /// Marian's [out, in] `to` against columns first… of Loom's (in, width) `from`, bias too.
        func linear(_ to: String, _ from: String, first: Int = 0) throws {
            let (w, wp) = try m(to + ".weight"), (b, bp) = try m(to + ".bias")
            let (lw, lwp) = try loom(from + ".weight"), (_, lbp) = try loom(from + ".bias")
            let outputs = w.shape[0], inputs = w.shape[1], width = lw.shape[1]
            var mismatches = 0
            for o in 0..<outputs {
                for i in 0..<inputs where wp[o * inputs + i] != lwp[i * width + first + o] { mismatches += 1 }
                if bp[o] != lbp[first + o] { mismatches += 1 }
            }
            #expect(mismatches == 0 && b.count == outputs, "\(to) ← \(from)[\(first)…]")
        }
        func same(_ to: String, _ from: String) throws {
            let (t, tp) = try m(to), (f, fp) = try loom(from)
            #expect(t.count == f.count && (0..<t.count).allSatisfy { tp[$0] == fp[$0] }, "\(to) ← \(from)")
        }
        try same("model.shared.weight", "embedding.weight")
        let bias = try m("final_logits_bias")
        #expect((0..<bias.spec.count).allSatisfy { bias.p[$0] == 0 })
        for stack in ["encoder", "decoder"] {
            // The table Loom adds to its inputs, in both stacks.
            let (_, table) = try m("model.\(stack).embed_positions.weight")
            #expect((0..<(c.maxLength * C)).allSatisfy { table[$0] == model.positionSignal.pointer[$0] }, "\(stack) positions")
            for l in 0..<(stack == "encoder" ? c.encoderLayers : c.decoderLayers) {
                let h = "model.\(stack).layers.\(l).", g = "\(stack).layers.\(l)."
                try linear(h + "self_attn.q_proj", g + "self_attn.qkv_proj", first: 0)
                try linear(h + "self_attn.k_proj", g + "self_attn.qkv_proj", first: C)
                try linear(h + "self_attn.v_proj", g + "self_attn.qkv_proj", first: 2 * C)
                try linear(h + "self_attn.out_proj", g + "self_attn.out_proj")
                try linear(h + "fc1", g + "fc1"); try linear(h + "fc2", g + "fc2")
                for n in ["weight", "bias"] {
                    try same(h + "self_attn_layer_norm." + n, g + "self_attn_layer_norm." + n)
                    try same(h + "final_layer_norm." + n, g + "ffn_layer_norm." + n)
                }
                if stack == "decoder" {
                    try linear(h + "encoder_attn.q_proj", g + "encoder_attn.q_proj")
                    try linear(h + "encoder_attn.k_proj", g + "encoder_attn.kv_proj", first: 0)
                    try linear(h + "encoder_attn.v_proj", g + "encoder_attn.kv_proj", first: C)
                    try linear(h + "encoder_attn.out_proj", g + "encoder_attn.out_proj")
                    for n in ["weight", "bias"] { try same(h + "encoder_attn_layer_norm." + n, g + "encoder_attn_layer_norm." + n) }
                }
            }
        }
        // Every value of Loom's buffer is in the export (the split copies cover qkv/kv exactly once).
        let loomValues = Set((0..<model.parameters.count).map { model.parameters.pointer[$0].bitPattern })
        let exported = Set((0..<values.count).map { values.pointer[$0].bitPattern })
        #expect(loomValues.isSubset(of: exported))
    }

    @Test func configAndTokenizerFilesDescribeTheModel() throws {
        let (dir, model, tokenizer) = try writeModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (out, summary) = try export(dir)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let c = model.config
        let begin = try #require(tokenizer.specialTokenID("<s>")), end = try #require(tokenizer.specialTokenID("</s>"))
        #expect(summary.begin == begin && summary.end == end)
        let config = try json(out + "/config.json")
        #expect(config["model_type"] as? String == "marian")
        #expect(config["architectures"] as? [String] == ["MarianMTModel"])
        let ints: [String: Int] = ["d_model": c.width, "encoder_layers": c.encoderLayers, "decoder_layers": c.decoderLayers,
                                   "encoder_attention_heads": c.heads, "decoder_attention_heads": c.heads,
                                   "encoder_ffn_dim": c.ffnWidth, "decoder_ffn_dim": c.ffnWidth, "vocab_size": c.vocabularySize,
                                   "max_position_embeddings": c.maxLength, "decoder_start_token_id": Int(begin),
                                   "eos_token_id": Int(end), "pad_token_id": Int(end), "forced_eos_token_id": Int(end)]
        for (key, value) in ints { #expect(config[key] as? Int == value, "\(key)") }
        #expect(config["activation_function"] as? String == "relu")
        for key in ["scale_embedding", "share_encoder_decoder_embeddings", "tie_word_embeddings", "static_position_embeddings"] {
            #expect(config[key] as? Bool == true, "\(key)")
        }
        #expect(config["normalize_embedding"] as? Bool == false)
        #expect(config["dropout"] as? Double == Double("\(c.dropout)"))
        #expect(config["attention_dropout"] as? Double == Double("\(c.attentionDropout)"))
        let generation = try json(out + "/generation_config.json")
        #expect(generation["num_beams"] as? Int == 1 && generation["do_sample"] as? Bool == false)
        #expect(generation["decoder_start_token_id"] as? Int == Int(begin) && generation["max_length"] as? Int == c.maxLength + 1)

        // tokenizer.json: the run's, plus a post-processor that appends the end token to a source.
        let original = try json(dir + "/tokenizer.json"), exported = try json(out + "/tokenizer.json")
        for key in original.keys where key != "post_processor" {
            #expect(NSDictionary(dictionary: original).object(forKey: key) as? NSObject
                    == NSDictionary(dictionary: exported).object(forKey: key) as? NSObject, "\(key)")
        }
        let post = try #require(exported["post_processor"] as? [String: Any])
        #expect(post["type"] as? String == "TemplateProcessing")
        let single = try #require(post["single"] as? [[String: Any]])
        #expect(single.count == 2 && (single[1]["SpecialToken"] as? [String: Any])?["id"] as? String == "</s>")
        let specials = try #require(post["special_tokens"] as? [String: Any])
        #expect((specials["</s>"] as? [String: Any])?["ids"] as? [Int] == [Int(end)])
        let tokenizerConfig = try json(out + "/tokenizer_config.json")
        #expect(tokenizerConfig["tokenizer_class"] as? String == "PreTrainedTokenizerFast")
        #expect(tokenizerConfig["eos_token"] as? String == "</s>" && tokenizerConfig["bos_token"] as? String == "<s>")
        #expect(tokenizerConfig["model_max_length"] as? Int == c.maxLength)
    }

    @Test func aCheckpointDirectoryFindsTheRunsConfigAndTokenizer() throws {
        let (dir, _, _) = try writeModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checkpoint = dir + "/checkpoints/step-5"
        try FileManager.default.createDirectory(atPath: checkpoint, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: dir + "/model.safetensors", toPath: checkpoint + "/model.safetensors")
        let source = try MarianExport.resolve(model: checkpoint)
        #expect(source == MarianExport.Source(weights: checkpoint + "/model.safetensors",
                                              config: PathName.absolute(dir) + "/" + EncoderDecoderFile.fileName,
                                              tokenizer: PathName.absolute(dir) + "/tokenizer.json"))
        let (out, _) = try export(checkpoint)
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
    }

    @Test func whatMarianCannotExpressIsRefusedAndNothingIsWritten() throws {
        for (placement, epsilon, words) in [(NormPlacement.pre, Float(1e-5), "Marian has no pre-LN; train with model.norm_placement: post"),
                                            (.post, 1e-6, "Marian's LayerNorm has ε 1e-5 fixed")] {
            let (dir, _, _) = try writeModel(placement: placement, epsilon: epsilon)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let out = try makeScratchDirectory("loom-marian-out-")
            defer { try? FileManager.default.removeItem(atPath: out) }
            do {
                try MarianExport.write(model: dir, into: out)
                Issue.record("\(placement) ε \(epsilon) was exported")
            } catch let error as MarianExportError {
                #expect(error.path.hasSuffix(EncoderDecoderFile.fileName), "\(error)")
                #expect(error.message.contains(words), "\(error)")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: out).isEmpty)
        }
    }

    @Test func aTokenizerThatIsNotTokenizerJSONIsRefusedBeforeWriting() throws {
        let (dir, _, _) = try writeModel()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let characters = CharacterTokenizer(corpus: "ab cd")
        try characters.serialized().write(to: URL(fileURLWithPath: dir + "/characters.json"))
        let out = try makeScratchDirectory("loom-marian-out-")
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(throws: MarianExportError.self) { try MarianExport.write(model: dir, tokenizer: dir + "/characters.json", into: out) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).isEmpty)
    }
}
