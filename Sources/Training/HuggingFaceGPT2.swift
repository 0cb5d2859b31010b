// HuggingFaceGPT2: Loom's GPT as transformers' GPT2LMHeadModel — tensor names both ways (Loom's
// `h.0.attn.c_attn.weight` is `transformer.h.0.attn.c_attn.weight`; both store Conv1D's (in, out)),
// config.json both ways, the export writer and the weight import.
import Foundation
import Models
import Data
import Support

/// A Hugging Face file Loom cannot use, naming the file, the key or tensor, and how to fix it.
public struct HuggingFaceError: Error, CustomStringConvertible {
    public let file: String
    /// The config key or tensor name at fault, if there is one.
    public let key: String?
    public let message: String
    public init(file: String, key: String? = nil, message: String) { self.file = file; self.key = key; self.message = message }
    public var description: String { key.map { "\(file): '\($0)': \(message)" } ?? "\(file): \(message)" }
}

public enum HuggingFaceGPT2 {
    /// GPT2LMHeadModel's prefix of the base model's tensors.
    public static let prefix = "transformer."
    /// The LM head: tied to `transformer.wte.weight`, so exports leave it out (transformers ties it
    /// on load) and imports accept it only equal to the embedding.
    public static let headName = "lm_head.weight"

    /// The GPT2LMHeadModel name of a Loom tensor.
    public static func huggingFaceName(loom name: String) -> String { prefix + name }

    /// The Loom name of a GPT2LMHeadModel tensor (or of a GPT2Model's, which has no prefix); nil for
    /// names outside the base model (the head, buffers of other architectures).
    public static func loomName(huggingFace name: String) -> String? {
        if name.hasPrefix(prefix) { return String(name.dropFirst(prefix.count)) }
        for start in ["h.", "wte.", "wpe.", "ln_f."] where name.hasPrefix(start) { return name }
        return nil
    }

    /// The causal-mask buffers older transformers versions saved with the weights (not parameters).
    public static func isMaskBuffer(_ name: String) -> Bool {
        name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias")
    }

    // MARK: config.json

    /// What config.json says of a GPT-2: the shape (its `dropout` is `resid_pdrop`) and the
    /// begin/end token ids.
    public struct ModelConfig: Equatable {
        public var shape: GPTConfig
        public var bosTokenID: Int?
        public var eosTokenID: Int?
        public init(shape: GPTConfig, bosTokenID: Int? = nil, eosTokenID: Int? = nil) {
            self.shape = shape; self.bosTokenID = bosTokenID; self.eosTokenID = eosTokenID
        }
    }

    /// GPT2Config as JSON: GPT-2's architecture with Loom's shape. Loom's GELU is the tanh form
    /// (`gelu_new`), the head is tied, every dropout site takes the run's `model.dropout`.
    public static func configJSON(_ c: ModelConfig) throws -> Data {
        let s = c.shape
        func decimal(_ x: Float) -> Double { Double(x.description) ?? Double(x) }
        let object: [String: Any] = [
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
            "n_layer": s.layers, "n_head": s.heads, "n_embd": s.width, "n_positions": s.contextLength,
            "n_ctx": s.contextLength, "n_inner": NSNull(), "vocab_size": s.vocabularySize,
            "layer_norm_epsilon": decimal(s.layerNormEpsilon), "tie_word_embeddings": true,
            "resid_pdrop": decimal(s.dropout), "embd_pdrop": decimal(s.dropout), "attn_pdrop": decimal(s.dropout),
            "scale_attn_weights": true, "scale_attn_by_inverse_layer_idx": false, "reorder_and_upcast_attn": false,
            "initializer_range": 0.02, "use_cache": true, "torch_dtype": "float32",
            "bos_token_id": c.bosTokenID.map { $0 as Any } ?? NSNull(),
            "eos_token_id": c.eosTokenID.map { $0 as Any } ?? NSNull(),
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    /// Reads a GPT-2 config.json. Anything Loom's GPT does not compute — another `model_type`, an
    /// activation other than the tanh GELU, an MLP not 4 × n_embd, an untied head, cross-attention,
    /// attention scaled by layer — is an error naming the file and key.
    public static func readConfig(_ path: String) throws -> ModelConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HuggingFaceError(file: path, message: "cannot read (a Hugging Face model directory has config.json)")
        }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw HuggingFaceError(file: path, message: "not a JSON object")
        }
        func fail(_ key: String, _ message: String) -> HuggingFaceError { HuggingFaceError(file: path, key: key, message: message) }
        guard let type = o["model_type"] as? String else { throw fail("model_type", "missing; Loom imports GPT-2 (model_type gpt2)") }
        guard type == "gpt2" else { throw fail("model_type", "is \(type); Loom imports GPT-2 models only (model_type gpt2)") }
        func integer(_ key: String) throws -> Int {
            guard let n = o[key] as? Int, n > 0 else { throw fail(key, "missing or not a positive integer") }
            return n
        }
        func number(_ key: String, default value: Double) throws -> Double {
            guard let raw = o[key], !(raw is NSNull) else { return value }
            guard let x = raw as? Double else { throw fail(key, "is not a number") }
            return x
        }
        func flag(_ key: String, default value: Bool) -> Bool { o[key] as? Bool ?? value }
        let width = try integer("n_embd"), heads = try integer("n_head")
        guard width % heads == 0 else { throw fail("n_head", "\(heads) does not divide n_embd \(width)") }
        var shape = GPTConfig(vocabularySize: try integer("vocab_size"), contextLength: try integer("n_positions"),
                              layers: try integer("n_layer"), heads: heads, width: width,
                              dropout: Float(try number("resid_pdrop", default: 0.1)))
        shape.layerNormEpsilon = Float(try number("layer_norm_epsilon", default: 1e-5))
        let activation = o["activation_function"] as? String ?? "gelu_new"
        guard ["gelu_new", "gelu_pytorch_tanh"].contains(activation) else {
            throw fail("activation_function", "is \(activation); Loom's GPT computes GELU's tanh form (gelu_new)")
        }
        if let inner = o["n_inner"], !(inner is NSNull), inner as? Int != 4 * width {
            throw fail("n_inner", "is \(inner); Loom's GPT has an MLP of 4 × n_embd = \(4 * width) (or null)")
        }
        guard flag("tie_word_embeddings", default: true) else {
            throw fail("tie_word_embeddings", "is false; Loom's GPT ties its LM head to the token embedding")
        }
        guard !flag("add_cross_attention", default: false) else { throw fail("add_cross_attention", "is true; Loom's GPT has no cross-attention") }
        guard flag("scale_attn_weights", default: true) else { throw fail("scale_attn_weights", "is false; Loom scales attention by 1/√head_width") }
        guard !flag("scale_attn_by_inverse_layer_idx", default: false) else {
            throw fail("scale_attn_by_inverse_layer_idx", "is true; Loom scales attention by 1/√head_width only")
        }
        return ModelConfig(shape: shape, bosTokenID: o["bos_token_id"] as? Int, eosTokenID: o["eos_token_id"] as? Int)
    }

    // MARK: export

    /// Writes a GPT run's model as GPT2LMHeadModel files into `directory` (a staging directory):
    /// config.json, model.safetensors (the base model's tensors under `transformer.`, the tied head
    /// left out) and the tokenizer files. Returns the file names and a note on the tokenizer.
    public static func writeExport(_ source: ExportSource, into directory: String) throws -> (files: [String], note: String?) {
        let shape = try source.config.gptConfig(vocabularySize: source.tokenizer.vocabularySize)
        let layout = GPT.layout(shape)
        let weights = FlatBuffer(count: layout.count)   // (P) the run's parameters, Loom's layout
        try Safetensors.read(source.modelPath, layout: layout, into: weights)
        try Safetensors.write(directory + "/model.safetensors", layout: layout, buffers: [(prefix, weights)],
                              metadata: ["format": "pt"])
        func special(_ names: [String]) -> Int? { names.lazy.compactMap { source.tokenizer.specialTokenID($0) }.first.map(Int.init) }
        let config = ModelConfig(shape: shape, bosTokenID: special(["<|endoftext|>", "<s>"]),
                                 eosTokenID: special(["<|endoftext|>", "</s>"]))
        try AtomicFile.write(directory + "/config.json", data: try configJSON(config))
        let tokenizer = try HuggingFaceTokenizerFiles.write(source.tokenizer, modelMaxLength: shape.contextLength, into: directory)
        return (["config.json", "model.safetensors"] + tokenizer.files, tokenizer.note)
    }

    // MARK: import

    /// Checks that a Hugging Face config agrees with the shape a run builds: the same layers, heads,
    /// width, vocabulary and LayerNorm epsilon, and no more positions than n_positions (a shorter
    /// context keeps the first rows of the position table). Names both values on a mismatch.
    public static func check(_ hf: GPTConfig, file: String, against shape: GPTConfig) throws {
        let pairs: [(String, String, Int, Int)] = [
            ("n_layer", "model.layers", hf.layers, shape.layers), ("n_head", "model.heads", hf.heads, shape.heads),
            ("n_embd", "model.width", hf.width, shape.width), ("vocab_size", "model.vocabulary_size", hf.vocabularySize, shape.vocabularySize),
        ]
        for (key, loomKey, theirs, ours) in pairs where theirs != ours {
            throw HuggingFaceError(file: file, key: key, message: "is \(theirs), but the run's \(loomKey) is \(ours); remove \(loomKey) from the config (model.init_from sets it) or make them agree")
        }
        if shape.contextLength > hf.contextLength {
            throw HuggingFaceError(file: file, key: "n_positions", message: "is \(hf.contextLength), fewer than the run's model.context_length \(shape.contextLength)")
        }
        if hf.layerNormEpsilon != shape.layerNormEpsilon {
            throw HuggingFaceError(file: file, key: "layer_norm_epsilon", message: "is \(hf.layerNormEpsilon), but the run's model.layer_norm_epsilon is \(shape.layerNormEpsilon)")
        }
    }

    /// Fills `model`'s parameters from a Hugging Face GPT-2 directory: config.json must agree with
    /// the model's shape (`check`), and model.safetensors must hold every base-model tensor with
    /// GPT-2's shape (Conv1D (in, out); F32, F16 or BF16, widened to F32). `lm_head.weight` may be
    /// absent or equal to the embedding; mask buffers are skipped; any other tensor is an error.
    /// Nothing is changed in `model` unless everything reads.
    public static func loadWeights(directory: String, into model: GPT) throws {
        let configPath = directory + "/config.json", weightsPath = directory + "/model.safetensors"
        let hf = try readConfig(configPath)
        try check(hf.shape, file: configPath, against: model.config)
        let fm = FileManager.default
        guard fm.fileExists(atPath: weightsPath) else {
            let other = ["model.safetensors.index.json", "pytorch_model.bin"].first { fm.fileExists(atPath: directory + "/" + $0) }
            throw HuggingFaceError(file: weightsPath, message: "missing" + (other.map {
                "; \($0) is there: save one safetensors file with model.save_pretrained(DIR, safe_serialization=True, max_shard_size=\"100GB\")"
            } ?? ""))
        }
        let file = try SafetensorsFile(path: weightsPath)
        var byLoomName: [String: String] = [:]
        for name in file.entries.keys.sorted() {
            if isMaskBuffer(name) || name == headName { continue }
            guard let loom = loomName(huggingFace: name), model.layout.spec(loom) != nil else {
                throw HuggingFaceError(file: weightsPath, key: name, message: "is not a tensor of Loom's GPT-2 (unexpected key)")
            }
            guard byLoomName[loom] == nil else {
                throw HuggingFaceError(file: weightsPath, key: name, message: "appears twice (with and without the 'transformer.' prefix)")
            }
            byLoomName[loom] = name
        }
        let staged = FlatBuffer(count: model.layout.count)   // (P) the imported weights, Loom's layout
        for t in model.layout.tensors {
            guard let name = byLoomName[t.name], let entry = file.entries[name] else {
                throw HuggingFaceError(file: weightsPath, key: prefix + t.name, message: "is missing")
            }
            var expected = t.shape
            if t.name == "wpe.weight" { expected[0] = hf.shape.contextLength }
            guard entry.shape == expected else {
                throw HuggingFaceError(file: weightsPath, key: name, message: "has shape \(entry.shape), config.json's shape needs \(expected)")
            }
            try file.read(name, into: staged.pointer + t.offset, rows: t.shape[0])
        }
        if let head = file.entries[headName] {
            guard let embedding = model.layout.spec("wte.weight"), head.shape == embedding.shape,
                  try file.floats(headName).elementsEqual(UnsafeBufferPointer(start: staged.pointer + embedding.offset, count: embedding.count)) else {
                throw HuggingFaceError(file: weightsPath, key: headName, message: "differs from transformer.wte.weight; Loom's GPT ties its LM head to the token embedding")
            }
        }
        model.parameters.copy(from: staged)
    }
}
