// HuggingFaceTokenizerFiles: a run's tokenizer as transformers' AutoTokenizer loads it —
// tokenizer.json, tokenizer_config.json and special_tokens_map.json, plus GPT-2's vocab.json and
// merges.txt for the byte-level BPE, BERT's vocab.txt for WordPiece; the character vocabulary as a
// `tokenizers` WordLevel model.
import Foundation
import Data
import Support

public enum HuggingFaceTokenizerFiles {
    /// Writes `tokenizer`'s files into `directory`; returns their names and a note for the reader.
    /// `modelMaxLength` is the model's context (transformers' `model_max_length`).
    public static func write(_ tokenizer: Tokenizer, modelMaxLength: Int, into directory: String) throws
        -> (files: [String], note: String?) {
        func json(_ object: Any) throws -> Data {
            try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        }
        switch tokenizer {
        case let bpe as ByteLevelBPE:
            try AtomicFile.write(directory + "/tokenizer.json", data: try bpe.serialized())
            try AtomicFile.write(directory + "/vocab.json", data: try json(vocabulary(bpe)))
            try AtomicFile.write(directory + "/merges.txt", text: merges(bpe))
            // GPT-2's settings: no prefix space, no clean-up (decode gives back the exact text).
            var config: [String: Any] = ["tokenizer_class": "GPT2Tokenizer", "model_max_length": modelMaxLength,
                                         "add_prefix_space": false, "add_bos_token": false,
                                         "clean_up_tokenization_spaces": false, "errors": "replace"]
            var specials: [String: Any] = [:]
            if let end = bpe.specials.first(where: { $0.text == "<|endoftext|>" }) {
                for key in ["bos_token", "eos_token", "unk_token"] { config[key] = end.text; specials[key] = end.text }
            }
            try AtomicFile.write(directory + "/tokenizer_config.json", data: try json(config))
            try AtomicFile.write(directory + "/special_tokens_map.json", data: try json(specials))
            return (["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"], nil)
        case let wordPiece as WordPiece:
            try AtomicFile.write(directory + "/tokenizer.json", data: try wordPiece.serialized())
            try AtomicFile.write(directory + "/vocab.txt", text: wordPiece.vocabularyText)
            // BertTokenizer's settings; the slow (Python) tokenizer reads vocab.txt and these.
            var config: [String: Any] = ["tokenizer_class": "BertTokenizer", "model_max_length": modelMaxLength,
                                         "do_lower_case": wordPiece.lowercase, "strip_accents": wordPiece.stripAccents,
                                         "tokenize_chinese_chars": wordPiece.handleChineseChars, "do_basic_tokenize": true,
                                         "clean_up_tokenization_spaces": true]
            var specials: [String: Any] = [:]
            for (key, token) in [("pad_token", "[PAD]"), ("unk_token", wordPiece.unknownToken), ("cls_token", "[CLS]"),
                                 ("sep_token", "[SEP]"), ("mask_token", "[MASK]")] where token == wordPiece.unknownToken || wordPiece.specialTokenID(token) != nil {
                config[key] = token; specials[key] = token
            }
            try AtomicFile.write(directory + "/tokenizer_config.json", data: try json(config))
            try AtomicFile.write(directory + "/special_tokens_map.json", data: try json(specials))
            return (["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"], nil)
        case let characters as CharacterTokenizer:
            try AtomicFile.write(directory + "/tokenizer.json", data: try characterTokenizerJSON(characters))
            let config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": modelMaxLength,
                                         "clean_up_tokenization_spaces": false]
            try AtomicFile.write(directory + "/tokenizer_config.json", data: try json(config))
            return (["tokenizer.json", "tokenizer_config.json"],
                    "the character vocabulary is a tokenizers WordLevel model over single characters (Split on every character, Fuse decoder): it encodes and decodes exactly as Loom's, and has no special tokens")
        default:
            throw ExportError(path: directory, message: "this tokenizer (\(type(of: tokenizer))) has no Hugging Face form")
        }
    }

    /// GPT-2's vocab.json: printable token → id (special tokens as their text).
    static func vocabulary(_ bpe: ByteLevelBPE) -> [String: Int] {
        let specialIDs = Dictionary(bpe.specials.map { ($0.id, $0.text) }, uniquingKeysWith: { a, _ in a })
        var vocab: [String: Int] = [:]
        for (id, bytes) in bpe.tokenBytes.enumerated() { vocab[specialIDs[Int32(id)] ?? ByteLevel.printable(bytes)] = id }
        return vocab
    }

    /// GPT-2's merges.txt: a version line, then "left right" in rank order.
    static func merges(_ bpe: ByteLevelBPE) -> String {
        var text = "#version: 0.2\n"
        for m in bpe.merges {
            text += ByteLevel.printable(bpe.tokenBytes[Int(m.left)]) + " " + ByteLevel.printable(bpe.tokenBytes[Int(m.right)]) + "\n"
        }
        return text
    }

    /// The character vocabulary as a `tokenizers` file: every character is its own piece (Split on
    /// `CharacterTokenizer.huggingFaceSplitPattern`, isolated), a WordLevel model maps it to Loom's
    /// id, and the Fuse decoder joins the pieces without spaces. Loom reads it back
    /// (`TokenizerFile.load`) as the same CharacterTokenizer.
    public static func characterTokenizerJSON(_ t: CharacterTokenizer) throws -> Data {
        var vocab: [String: Int] = [:]
        for (id, c) in t.characters.enumerated() { vocab[String(c)] = id }
        let object: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": [] as [Any],
            "normalizer": NSNull(), "post_processor": NSNull(),
            "pre_tokenizer": ["type": "Split", "pattern": ["Regex": CharacterTokenizer.huggingFaceSplitPattern],
                              "behavior": "Isolated", "invert": false] as [String: Any],
            "decoder": ["type": "Fuse"],
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
