// HuggingFaceMarian: writes a post-LN encoder-decoder (a run, a checkpoint or a model directory) as
// a Hugging Face `MarianMTModel` directory — config.json, generation_config.json, model.safetensors
// in Marian's tensor names and nn.Linear layout, tokenizer.json with the source's end token as a
// post-processor, tokenizer_config.json — into a directory the caller gives (a staging directory
// that `loom export` renames into place).
//
// What Marian computes and how Loom's model maps onto it (transformers' modeling_marian.py):
// - Both stacks post-LN, ReLU, LayerNorm ε 1e-5 hard-coded (nn.LayerNorm's default): Loom's
//   pre-LN and any other ε cannot be expressed, and are refused before anything is written.
// - Inputs: embed_tokens(ids) · √d (`scale_embedding`) + embed_positions, for the source and the
//   target alike; one table `model.shared.weight` tied to both inputs and `lm_head`.
// - Positions: `embed_positions.weight` (max_position_embeddings, d) is used as loaded (checked
//   with transformers 5.24), so the export writes Loom's own table (tensor2tensor's frequencies
//   exp(−i·ln 10⁴/(d/2 − 1)), sin in the first half, cos in the second) for both stacks. Marian's
//   `save_pretrained` leaves these tables out and a reload recomputes Marian's 10000^(−2i/d): a
//   re-saved copy no longer computes what Loom's model does (docs/huggingface.md).
// - Attention: Q/K/V are Loom's fused `qkv_proj` (C, 3C) split into three (C, C) nn.Linear
//   weights [out, in]; the heads are consecutive channel blocks in both; padded source keys are
//   masked by the attention mask, the decoder's self-attention is causal in both.
// - Output: logits = x · sharedᵀ + final_logits_bias, the bias written as zeros (1, V).
import Foundation
import Data
import Kernels
import Models
import Support

/// An export that cannot be done or whose input is unreadable; the message names the file or key
/// and says what to do.
public struct MarianExportError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
    public init(path: String, message: String) { self.path = path; self.message = message }
}

/// The encoder-decoder → Hugging Face `MarianMTModel` export.
public enum MarianExport {
    /// Marian's LayerNorm ε (nn.LayerNorm's default; MarianConfig has no key for it).
    public static let layerNormEpsilon: Float = 1e-5

    /// The files an export reads, resolved as `loom translate` resolves them.
    public struct Source: Equatable {
        public var weights: String, config: String, tokenizer: String
        public init(weights: String, config: String, tokenizer: String) {
            self.weights = weights; self.config = config; self.tokenizer = tokenizer
        }
    }

    /// What was written: the token ids the config names, and the tensor count.
    public struct Summary: Equatable {
        public var begin: Int32, end: Int32, tensors: Int, parameters: Int
    }

    /// The files beside `model` (a model.safetensors file, a directory holding it, a run directory
    /// or RUN/checkpoints/step-N): model-config.json and tokenizer.json from the weights' directory,
    /// else from the run two levels up; `config` and `tokenizer` override them.
    public static func resolve(model: String, config: String? = nil, tokenizer: String? = nil) throws -> Source {
        guard let files = EncoderDecoderFile.locate(model: model, config: config, tokenizer: tokenizer) else {
            throw MarianExportError(path: model, message: "no such file or directory (give a run, a checkpoint or a model.safetensors)")
        }
        return Source(weights: files.weights, config: files.config, tokenizer: files.tokenizer)
    }

    /// Reads the model at `model` (see `resolve`) and writes the Marian directory into `directory`
    /// (which must exist; `loom export` gives a staging directory and renames it when this returns).
    /// Checks everything (post-LN, ε, tokens, tokenizer kind) before writing the first file.
    @discardableResult
    public static func write(model: String, config: String? = nil, tokenizer: String? = nil,
                             into directory: String) throws -> Summary {
        let source = try resolve(model: model, config: config, tokenizer: tokenizer)
        let file = try EncoderDecoderFile.load(source.config)
        try check(file.config, configPath: source.config)
        let layout = EncoderDecoder.layout(file.config)
        let parameters = FlatBuffer(count: layout.count)        // (P) Loom's layout
        do { try Safetensors.read(source.weights, layout: layout, into: parameters) } catch let error as SafetensorsError {
            throw MarianExportError(path: error.path, message: error.message)
        }
        return try write(file: file, configPath: source.config, parameters: UnsafePointer(parameters.pointer),
                         tokenizerPath: source.tokenizer, into: directory)
    }

    /// Writes the model whose weights are `parameters` (Loom's layout for `file.config`) with the
    /// tokenizer at `tokenizerPath` into `directory`. `configPath` names the config in errors.
    @discardableResult
    public static func write(file: EncoderDecoderFile, configPath: String, parameters: UnsafePointer<Float>,
                             tokenizerPath: String, into directory: String) throws -> Summary {
        let c = file.config
        try check(c, configPath: configPath)
        let tokenizer: Tokenizer
        do { tokenizer = try TokenizerFile.load(tokenizerPath) } catch {
            throw MarianExportError(path: tokenizerPath, message: "cannot load the tokenizer (\(error))")
        }
        let tokenizerJSON = try huggingFaceTokenizer(tokenizerPath)
        guard tokenizer.vocabularySize <= c.vocabularySize else {
            throw MarianExportError(path: tokenizerPath, message: "\(tokenizer.vocabularySize) tokens, but \(configPath) has vocabulary_size \(c.vocabularySize)")
        }
        let (begin, end) = try tokens(file, tokenizer: tokenizer, tokenizerPath: tokenizerPath, configPath: configPath)
        let beginText = text(of: begin, in: tokenizerJSON), endText = text(of: end, in: tokenizerJSON)
        guard let beginText, let endText else {
            throw MarianExportError(path: tokenizerPath, message: "the begin/end tokens \(begin)/\(end) are not in added_tokens")
        }

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw MarianExportError(path: directory, message: "no such directory to export into")
        }
        let marian = layout(c)
        let values = FlatBuffer(count: marian.count)                      // (P′) Marian's layout
        fill(values.pointer, marian: marian, from: parameters, loom: EncoderDecoder.layout(c), config: c)
        try Safetensors.write(directory + "/model.safetensors", layout: marian, buffer: values, metadata: ["format": "pt"])
        try writeJSON(configJSON(c, begin: begin, end: end), to: directory + "/config.json")
        try writeJSON(generationJSON(c, begin: begin, end: end), to: directory + "/generation_config.json")
        try writeJSON(withEndToken(tokenizerJSON, endText: endText, end: end), to: directory + "/tokenizer.json")
        try writeJSON(tokenizerConfigJSON(c, beginText: beginText, endText: endText), to: directory + "/tokenizer_config.json")
        return Summary(begin: begin, end: end, tensors: marian.tensors.count, parameters: marian.count)
    }

    /// The begin (decoder start) and end tokens, chosen as `loom translate` chooses them.
    public static func tokens(_ file: EncoderDecoderFile, tokenizer: Tokenizer, tokenizerPath: String,
                              configPath: String) throws -> (begin: Int32, end: Int32) {
        do {
            let begin = try SentenceTranslation.token(file.beginToken, ["<s>", "<|endoftext|>"], key: "begin_token", tokenizer: tokenizer,
                                                      tokenizerPath: tokenizerPath, configPath: configPath)
            let end = try SentenceTranslation.token(file.endToken, ["</s>", "<|endoftext|>"], key: "end_token", tokenizer: tokenizer,
                                                    tokenizerPath: tokenizerPath, configPath: configPath)
            return (begin, end)
        } catch let error as TranslationSetupError {
            throw MarianExportError(path: error.path, message: error.message)
        }
    }

    /// Refuses what Marian cannot express: pre-LN and a LayerNorm ε other than 1e-5.
    public static func check(_ c: EncoderDecoderConfig, configPath: String) throws {
        if c.normPlacement != .post {
            throw MarianExportError(path: configPath, message: "norm_placement is \(c.normPlacement.rawValue), but Marian has no pre-LN; train with model.norm_placement: post")
        }
        if c.layerNormEpsilon != layerNormEpsilon {
            throw MarianExportError(path: configPath, message: "layer_norm_epsilon is \(c.layerNormEpsilon), but Marian's LayerNorm has ε 1e-5 fixed; train with model.layer_norm_epsilon: 1.0e-5")
        }
    }

    // MARK: Tensors

    /// Marian's tensors for `c`, in MarianMTModel's state-dict order, without the tied aliases
    /// (encoder/decoder embed_tokens and lm_head are model.shared.weight).
    public static func layout(_ c: EncoderDecoderConfig) -> ParameterLayout {
        let C = c.width, F = c.ffnWidth, V = c.vocabularySize, M = c.maxLength
        var l = ParameterLayout()
        l.add("final_logits_bias", [1, V])
        l.add("model.shared.weight", [V, C])
        func linear(_ name: String, _ outputs: Int, _ inputs: Int) {
            l.add(name + ".weight", [outputs, inputs]); l.add(name + ".bias", [outputs])
        }
        func norm(_ name: String) { l.add(name + ".weight", [C]); l.add(name + ".bias", [C]) }
        func attention(_ name: String) { for p in ["q_proj", "k_proj", "v_proj", "out_proj"] { linear(name + "." + p, C, C) } }
        for stack in ["encoder", "decoder"] {
            l.add("model.\(stack).embed_positions.weight", [M, C])
            for i in 0..<(stack == "encoder" ? c.encoderLayers : c.decoderLayers) {
                let h = "model.\(stack).layers.\(i)."
                attention(h + "self_attn"); norm(h + "self_attn_layer_norm")
                if stack == "decoder" { attention(h + "encoder_attn"); norm(h + "encoder_attn_layer_norm") }
                linear(h + "fc1", F, C); linear(h + "fc2", C, F); norm(h + "final_layer_norm")
            }
        }
        return l
    }

    /// Copies Loom's tensors into Marian's layout: (in, out) weights transposed to [out, in], the
    /// fused qkv_proj (C, 3C) and kv_proj (C, 2C) split by column blocks, Loom's position table for
    /// both stacks, zero final_logits_bias.
    static func fill(_ out: UnsafeMutablePointer<Float>, marian: ParameterLayout, from p: UnsafePointer<Float>,
                     loom: ParameterLayout, config c: EncoderDecoderConfig) {
        let C = c.width
        let map = TensorMapping(target: out, layout: marian, source: p, loom: loom, who: "MarianExport")
        func copy(_ to: String, _ from: String) { map.copy(to, from) }
        func linear(_ to: String, _ from: String, columns first: Int = 0) { map.linear(to, from, columns: first) }
        (out + map.spec(marian, "final_logits_bias").offset).update(repeating: 0, count: c.vocabularySize)
        copy("model.shared.weight", "embedding.weight")
        for stack in ["encoder", "decoder"] {
            SinusoidalEmbedding.signal(into: out + map.spec(marian, "model.\(stack).embed_positions.weight").offset,
                                       positions: c.maxLength, channels: C)
            for i in 0..<(stack == "encoder" ? c.encoderLayers : c.decoderLayers) {
                let h = "model.\(stack).layers.\(i).", g = "\(stack).layers.\(i)."
                linear(h + "self_attn.q_proj", g + "self_attn.qkv_proj", columns: 0)
                linear(h + "self_attn.k_proj", g + "self_attn.qkv_proj", columns: C)
                linear(h + "self_attn.v_proj", g + "self_attn.qkv_proj", columns: 2 * C)
                linear(h + "self_attn.out_proj", g + "self_attn.out_proj")
                for n in ["weight", "bias"] { copy(h + "self_attn_layer_norm." + n, g + "self_attn_layer_norm." + n) }
                if stack == "decoder" {
                    linear(h + "encoder_attn.q_proj", g + "encoder_attn.q_proj")
                    linear(h + "encoder_attn.k_proj", g + "encoder_attn.kv_proj", columns: 0)
                    linear(h + "encoder_attn.v_proj", g + "encoder_attn.kv_proj", columns: C)
                    linear(h + "encoder_attn.out_proj", g + "encoder_attn.out_proj")
                    for n in ["weight", "bias"] { copy(h + "encoder_attn_layer_norm." + n, g + "encoder_attn_layer_norm." + n) }
                }
                linear(h + "fc1", g + "fc1"); linear(h + "fc2", g + "fc2")
                for n in ["weight", "bias"] { copy(h + "final_layer_norm." + n, g + "ffn_layer_norm." + n) }
            }
        }
    }

    // MARK: JSON files

    /// config.json: MarianConfig's keys for this shape and these tokens.
    public static func configJSON(_ c: EncoderDecoderConfig, begin: Int32, end: Int32) -> [String: Any] {
        [
            "architectures": ["MarianMTModel"], "model_type": "marian", "is_encoder_decoder": true,
            "vocab_size": c.vocabularySize, "decoder_vocab_size": c.vocabularySize, "d_model": c.width,
            "encoder_layers": c.encoderLayers, "decoder_layers": c.decoderLayers,
            "encoder_attention_heads": c.heads, "decoder_attention_heads": c.heads,
            "encoder_ffn_dim": c.ffnWidth, "decoder_ffn_dim": c.ffnWidth, "activation_function": "relu",
            "max_position_embeddings": c.maxLength, "scale_embedding": true,
            "share_encoder_decoder_embeddings": true, "tie_word_embeddings": true,
            "normalize_embedding": false, "static_position_embeddings": true,
            "dropout": decimal(c.dropout), "attention_dropout": decimal(c.attentionDropout), "activation_dropout": 0.0,
            "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0, "init_std": 0.02, "use_cache": true,
            "pad_token_id": Int(end), "eos_token_id": Int(end), "bos_token_id": Int(begin),
            "decoder_start_token_id": Int(begin), "forced_eos_token_id": Int(end), "dtype": "float32",
        ]
    }

    /// generation_config.json: greedy search as `loom translate --beam 1` runs it. `max_length`
    /// counts the start token, so max_length = context_length + 1 allows context_length generated
    /// tokens, the last forced to the end token (Loom's limit). Loom's per-sentence limit
    /// (source tokens + 50) is a `max_length` per call.
    public static func generationJSON(_ c: EncoderDecoderConfig, begin: Int32, end: Int32) -> [String: Any] {
        [
            "decoder_start_token_id": Int(begin), "bos_token_id": Int(begin), "eos_token_id": Int(end), "pad_token_id": Int(end),
            "forced_eos_token_id": Int(end), "max_length": c.maxLength + 1, "num_beams": 1, "do_sample": false,
            "length_penalty": 1.0, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
        ]
    }

    /// tokenizer_config.json for `AutoTokenizer`: the fast tokenizer of tokenizer.json, its special
    /// tokens, no clean-up of spaces on decoding (Loom decodes bytes as they are).
    public static func tokenizerConfigJSON(_ c: EncoderDecoderConfig, beginText: String, endText: String) -> [String: Any] {
        [
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": beginText, "eos_token": endText,
            "pad_token": endText, "model_max_length": c.maxLength, "clean_up_tokenization_spaces": false,
            "padding_side": "right", "truncation_side": "right",
        ]
    }

    /// The run's tokenizer as a Hugging Face tokenizer.json object; Loom's character tokenizer and
    /// GPT-2 vocab.json files are refused (the export ships tokenizer.json only).
    static func huggingFaceTokenizer(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw MarianExportError(path: path, message: "cannot read the tokenizer as JSON")
        }
        guard object["model"] is [String: Any], object["added_tokens"] is [[String: Any]] else {
            throw MarianExportError(path: path, message: "not a Hugging Face tokenizer.json (a BPE tokenizer from `loom tokenizer train`); the export cannot express this tokenizer")
        }
        return object
    }

    /// The text of added token `id`.
    static func text(of id: Int32, in tokenizer: [String: Any]) -> String? {
        let added = tokenizer["added_tokens"] as? [[String: Any]] ?? []
        return added.first { ($0["id"] as? Int) == Int(id) }?["content"] as? String
    }

    /// tokenizer.json with a TemplateProcessing post-processor that appends the end token, as
    /// `loom translate` does to every source (and training to every target): "$A END" (pairs "$A $B END").
    static func withEndToken(_ tokenizer: [String: Any], endText: String, end: Int32) -> [String: Any] {
        var t = tokenizer
        func sequence(_ id: String) -> [String: Any] { ["Sequence": ["id": id, "type_id": 0]] }
        let special: [String: Any] = ["SpecialToken": ["id": endText, "type_id": 0]]
        t["post_processor"] = [
            "type": "TemplateProcessing",
            "single": [sequence("A"), special],
            "pair": [sequence("A"), sequence("B"), special],
            "special_tokens": [endText: ["id": endText, "ids": [Int(end)], "tokens": [endText]]],
        ] as [String: Any]
        return t
    }

    /// A Float as the decimal it was written as (0.3, not 0.30000001192092896).
    static func decimal(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }

    static func writeJSON(_ object: [String: Any], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(path, data: data + Data("\n".utf8))
    }
}
