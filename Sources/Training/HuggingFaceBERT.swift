// HuggingFaceBERT: a trained BERT as a Hugging Face `BertForMaskedLM` directory — config.json
// (BertConfig), model.safetensors with BERT's tensor names ([out, in] weights, query/key/value
// split from Loom's fused projection, the decoder tied to the word embedding) and the tokenizer
// files — so `BertForMaskedLM.from_pretrained(DIR)` gives Loom's logits.
import Foundation
import Data
import Models
import Support

public enum HuggingFaceBERT {
    /// BertForMaskedLM's tensors for `c`, in its state-dict order, without the tied decoder
    /// (weight = word embeddings, bias = cls.predictions.bias).
    public static func layout(_ c: BERTConfig) -> ParameterLayout {
        let C = c.width, F = c.ffnWidth
        var l = ParameterLayout()
        func linear(_ name: String, _ outputs: Int, _ inputs: Int) {
            l.add(name + ".weight", [outputs, inputs]); l.add(name + ".bias", [outputs])
        }
        func norm(_ name: String) { l.add(name + ".weight", [C]); l.add(name + ".bias", [C]) }
        l.add("bert.embeddings.word_embeddings.weight", [c.vocabularySize, C])
        l.add("bert.embeddings.position_embeddings.weight", [c.contextLength, C])
        l.add("bert.embeddings.token_type_embeddings.weight", [c.typeVocabularySize, C])
        norm("bert.embeddings.LayerNorm")
        for i in 0..<c.layers {
            let h = "bert.encoder.layer.\(i)."
            for p in ["query", "key", "value"] { linear(h + "attention.self." + p, C, C) }
            linear(h + "attention.output.dense", C, C); norm(h + "attention.output.LayerNorm")
            linear(h + "intermediate.dense", F, C)
            linear(h + "output.dense", C, F); norm(h + "output.LayerNorm")
        }
        l.add("cls.predictions.bias", [c.vocabularySize])
        linear("cls.predictions.transform.dense", C, C); norm("cls.predictions.transform.LayerNorm")
        return l
    }

    /// Refuses what BertForMaskedLM cannot express: pre-LN (it has no final LayerNorm).
    static func check(_ c: BERTConfig, configPath: String) throws {
        if c.normPlacement != .post {
            throw ExportError(path: configPath, message: "model.norm_placement is pre, but BertForMaskedLM is post-LN only; train with model.norm_placement: post to export")
        }
    }

    /// Copies Loom's tensors into BERT's layout: (in, out) weights transposed to [out, in], the
    /// fused attention.self.qkv (C, 3C) split by column blocks into query, key and value.
    static func fill(_ out: UnsafeMutablePointer<Float>, hf: ParameterLayout, from p: UnsafePointer<Float>,
                     loom: ParameterLayout, config c: BERTConfig) {
        let C = c.width
        let map = TensorMapping(target: out, layout: hf, source: p, loom: loom, who: "HuggingFaceBERT")
        func copy(_ name: String) { map.copy(name) }
        func norm(_ name: String) { map.copy(name + ".weight"); map.copy(name + ".bias") }
        func linear(_ to: String, _ from: String? = nil, columns first: Int = 0) { map.linear(to, from, columns: first) }
        for name in ["word_embeddings", "position_embeddings", "token_type_embeddings"] {
            copy("bert.embeddings.\(name).weight")
        }
        norm("bert.embeddings.LayerNorm")
        for i in 0..<c.layers {
            let h = "bert.encoder.layer.\(i)."
            for (k, name) in ["query", "key", "value"].enumerated() {
                linear(h + "attention.self." + name, h + "attention.self.qkv", columns: k * C)
            }
            linear(h + "attention.output.dense"); norm(h + "attention.output.LayerNorm")
            linear(h + "intermediate.dense"); linear(h + "output.dense"); norm(h + "output.LayerNorm")
        }
        copy("cls.predictions.bias")
        linear("cls.predictions.transform.dense"); norm("cls.predictions.transform.LayerNorm")
    }

    /// config.json: BertConfig's keys for this shape (exact-erf GELU, absolute positions).
    static func configJSON(_ c: BERTConfig, padding: Int32) -> [String: Any] {
        [
            "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": c.vocabularySize,
            "hidden_size": c.width, "num_hidden_layers": c.layers, "num_attention_heads": c.heads,
            "intermediate_size": c.ffnWidth, "hidden_act": "gelu", "max_position_embeddings": c.contextLength,
            "type_vocab_size": c.typeVocabularySize, "layer_norm_eps": Double("\(c.layerNormEpsilon)") ?? Double(c.layerNormEpsilon),
            "hidden_dropout_prob": Double("\(c.dropout)") ?? 0, "attention_probs_dropout_prob": Double("\(c.attentionDropout)") ?? 0,
            "initializer_range": 0.02, "pad_token_id": Int(padding), "position_embedding_type": "absolute",
            "tie_word_embeddings": true, "is_decoder": false, "dtype": "float32",
        ]
    }

    /// A byte-level BPE with BERT's special tokens, framed as BERT frames its input: tokenizer.json
    /// gets a TemplateProcessing post-processor ([CLS] $A [SEP]; pairs [CLS] $A [SEP] $B:1 [SEP]:1)
    /// and tokenizer_config.json names the fast tokenizer and the special tokens, so the fill-mask
    /// pipeline and `tokenizer(text)` give the ids Loom runs.
    static func frameWithClassificationTokens(_ directory: String, specials s: MaskedLanguageModelTokens,
                                              hasPadding: Bool) throws {
        func read(_ name: String) -> [String: Any] {
            (FileManager.default.contents(atPath: directory + "/" + name).flatMap { try? JSONSerialization.jsonObject(with: $0) }
             as? [String: Any]) ?? [:]
        }
        var tokenizer = read("tokenizer.json")
        func special(_ text: String, _ type: Int = 0) -> [String: Any] { ["SpecialToken": ["id": text, "type_id": type]] }
        func sequence(_ id: String, _ type: Int = 0) -> [String: Any] { ["Sequence": ["id": id, "type_id": type]] }
        tokenizer["post_processor"] = [
            "type": "TemplateProcessing",
            "single": [special("[CLS]"), sequence("A"), special("[SEP]")],
            "pair": [special("[CLS]"), sequence("A"), special("[SEP]"), sequence("B", 1), special("[SEP]", 1)],
            "special_tokens": ["[CLS]": ["id": "[CLS]", "ids": [Int(s.classification)], "tokens": ["[CLS]"]],
                               "[SEP]": ["id": "[SEP]", "ids": [Int(s.separator)], "tokens": ["[SEP]"]]],
        ] as [String: Any]
        try MarianExport.writeJSON(tokenizer, to: directory + "/tokenizer.json")
        var config = read("tokenizer_config.json")
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        for key in ["bos_token", "eos_token", "unk_token"] { config[key] = nil }
        config["cls_token"] = "[CLS]"; config["sep_token"] = "[SEP]"; config["mask_token"] = "[MASK]"
        if hasPadding { config["pad_token"] = "[PAD]" }
        try MarianExport.writeJSON(config, to: directory + "/tokenizer_config.json")
        var map = read("special_tokens_map.json")
        for key in ["bos_token", "eos_token", "unk_token"] { map[key] = nil }
        map["cls_token"] = "[CLS]"; map["sep_token"] = "[SEP]"; map["mask_token"] = "[MASK]"
        if hasPadding { map["pad_token"] = "[PAD]" }
        try MarianExport.writeJSON(map, to: directory + "/special_tokens_map.json")
    }

    /// Writes the BertForMaskedLM directory of `source` into `directory` (a staging directory).
    public static func writeExport(_ source: ExportSource, into directory: String) throws -> (files: [String], note: String?) {
        let (shape, _) = try source.config.bertConfig(vocabularySize: source.tokenizer.vocabularySize)
        try check(shape, configPath: source.path + "/config.yaml")
        let specials: MaskedLanguageModelTokens
        do { specials = try MaskedLanguageModelTokens(tokenizer: source.tokenizer) } catch let error as MaskedLanguageModelError {
            throw ExportError(path: source.path, message: error.message)
        }
        let loom = BERT.layout(shape), hf = layout(shape)
        let weights = FlatBuffer(count: loom.count)    // (P) the run's parameters, Loom's layout
        try Safetensors.read(source.modelPath, layout: loom, into: weights)
        let values = FlatBuffer(count: hf.count)       // (P) BERT's layout
        fill(values.pointer, hf: hf, from: UnsafePointer(weights.pointer), loom: loom, config: shape)
        try Safetensors.write(directory + "/model.safetensors", layout: hf, buffer: values, metadata: ["format": "pt"])
        try MarianExport.writeJSON(configJSON(shape, padding: specials.padding), to: directory + "/config.json")
        let tokenizer = try HuggingFaceTokenizerFiles.write(source.tokenizer, modelMaxLength: shape.contextLength, into: directory)
        if !(source.tokenizer is WordPiece) {
            try frameWithClassificationTokens(directory, specials: specials, hasPadding: source.tokenizer.specialTokenID("[PAD]") != nil)
        }
        return (["config.json", "model.safetensors"] + tokenizer.files, tokenizer.note)
    }
}
