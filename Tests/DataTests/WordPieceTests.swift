// WordPiece: BERT's normaliser (accents, CJK, control characters, case), pre-tokeniser (punctuation
// runs), greedy longest-match-first pieces, [UNK] for unknown characters and long words, special
// tokens written in the text, the decoder, tokenizer.json round trips (Loom's and Hugging Face's
// layout) and the trainer against a full-recount reference.
import Testing
import Foundation
import Data
import TestSupport

/// A WordPiece over the special tokens plus `words` (ids 5…, in order).
func wordPiece(_ words: [String], lowercase: Bool = true, stripAccents: Bool? = nil) throws -> WordPiece {
    try WordPiece(tokens: WordPiece.defaultSpecials + words, lowercase: lowercase, stripAccents: stripAccents)
}

/// The token texts of `ids`.
func texts(_ tok: WordPiece, _ ids: [Int32]) -> [String] { ids.map { tok.tokens[Int($0)] } }

@Suite struct WordPieceNormalizerTests {
    @Test func uncasedStripsAccentsAndLowercases() throws {
        let tok = try wordPiece(["cafe", "naive", "resume", "angstrom", "strasse", "straße", "i"])
        // Precomposed and combining accents, Å as U+00C5 and as the Ångström sign U+212B.
        #expect(texts(tok, tok.encode("Café NAÏVE re\u{301}sume\u{301} ÅNGSTRÖM \u{212B}ngström")) == ["cafe", "naive", "resume", "angstrom", "angstrom"])
        // ß has no decomposition and lowercases to itself; İ is I + combining dot under NFD.
        #expect(texts(tok, tok.encode("Straße İ")) == ["straße", "i"])
        #expect(tok.lowercase && tok.stripAccents)
    }

    @Test func casedKeepsCaseAndAccentsAndTellsCanonicalFormsApart() throws {
        let tok = try wordPiece(["Café", "cafe", "Cafe", "##\u{301}"], lowercase: false)
        #expect(!tok.stripAccents)
        #expect(texts(tok, tok.encode("Café cafe")) == ["Café", "cafe"])
        // "Cafe" + U+0301 is canonically equivalent to "Café" but a different token sequence, as in `tokenizers`.
        #expect(texts(tok, tok.encode("Cafe\u{301}")) == ["Cafe", "##\u{301}"])
        // strip_accents may be set apart from lowercase.
        let stripped = try wordPiece(["Cafe"], lowercase: false, stripAccents: true)
        #expect(texts(stripped, stripped.encode("Café")) == ["Cafe"])
    }

    @Test func chineseCharactersAreWordsOfTheirOwn() throws {
        let tok = try wordPiece(["你", "好", "world", "##world", "の", "##の", "日本語"])
        #expect(texts(tok, tok.encode("你好world")) == ["你", "好", "world"])
        // Hiragana is not in the CJK ideograph blocks: it stays in its word.
        #expect(texts(tok, tok.encode("worldの")) == ["world", "##の"])
        // 日本語 are ideographs: split apart, and each unknown on its own.
        #expect(texts(tok, tok.encode("日本語")) == ["[UNK]", "[UNK]", "[UNK]"])
    }

    @Test func controlAndFormatCharactersAreDroppedAndWhitespaceSplits() throws {
        let tok = try wordPiece(["ab", "a", "b"])
        for joined in ["a\u{0}b", "a\u{FFFD}b", "a\u{200B}b", "a\u{AD}b", "a\u{7}b", "a\u{1B}b", "a\u{E000}b", "a\u{FEFF}b", "a\u{85}b"] {
            #expect(texts(tok, tok.encode(joined)) == ["ab"], "\(joined.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        for split in ["a\tb", "a\nb", "a\rb", "a\u{A0}b", "a\u{3000}b", "a\u{2028}b", "  a   b  "] {
            #expect(texts(tok, tok.encode(split)) == ["a", "b"], "\(split.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        #expect(tok.encode("").isEmpty && tok.encode(" \t\u{0} ").isEmpty)
    }

    @Test func everyPunctuationCharacterIsItsOwnWord() throws {
        let tok = try wordPiece(["wait", ".", "!", "?", "-", "$", "+", "“", "”", "—", "hi", "¿"])
        #expect(texts(tok, tok.encode("Wait...!?")) == ["wait", ".", ".", ".", "!", "?"])
        // ASCII symbols count as punctuation ($, +), and so do Unicode P* characters.
        #expect(texts(tok, tok.encode("$+“hi”—¿")) == ["$", "+", "“", "hi", "”", "—", "¿"])
        // A non-ASCII symbol (So, Sc) is not punctuation: it stays inside the word, which is then unknown.
        #expect(texts(tok, tok.encode("hi€ hi")) == ["[UNK]", "hi"])
    }

    @Test func unknownCharactersMakeTheWholeWordUnknown() throws {
        let tok = try wordPiece(["x", "##y", "y"])
        #expect(texts(tok, tok.encode("xy x☃y y")) == ["x", "##y", "[UNK]", "y"])
        #expect(texts(tok, tok.encode("😀")) == ["[UNK]"])
    }

    @Test func wordsLongerThanTheLimitAreUnknown() throws {
        let tok = try wordPiece(["a", "##a", "é", "##é"], lowercase: false)
        #expect(tok.encode(String(repeating: "a", count: 100)).count == 100)
        #expect(texts(tok, tok.encode(String(repeating: "a", count: 101))) == ["[UNK]"])
        // The limit counts Unicode scalars, not bytes.
        #expect(tok.encode(String(repeating: "é", count: 100)).count == 100)
        #expect(texts(tok, tok.encode(String(repeating: "é", count: 101) + " a")) == ["[UNK]", "a"])
    }

    @Test func specialTokensInTheTextAreMatchedBeforeNormalising() throws {
        let tok = try wordPiece(["the", "sat", "x", "y", "[", "]", "mask"])
        let mask = tok.specialTokenID("[MASK]")!
        #expect(mask == 4 && tok.specialTokenID("[CLS]") == 2 && tok.specialTokenID("[mask]") == nil)
        #expect(tok.encode("the [MASK] sat") == [tok.encode("the")[0], mask, tok.encode("sat")[0]])
        // Inside a word too, and several in a row; the lowercase spelling is ordinary text.
        #expect(texts(tok, tok.encode("x[MASK]y[PAD][PAD]")) == ["x", "[MASK]", "y", "[PAD]", "[PAD]"])
        #expect(texts(tok, tok.encode("[mask]")) == ["[", "mask", "]"])
    }
}

@Suite struct WordPieceModelTests {
    @Test func greedyLongestMatchFirst() throws {
        let tok = try wordPiece(["un", "u", "##n", "##aff", "##a", "##ff", "##able", "##abl", "ab", "a", "##bc", "##c"])
        #expect(texts(tok, tok.encode("unaffable")) == ["un", "##aff", "##able"])
        // Greedy, not best: "ab" first leaves "##c", though "a" "##bc" is as short.
        #expect(texts(tok, tok.encode("abc")) == ["ab", "##c"])
        // A word whose rest has no piece is one [UNK], even though a prefix matched.
        #expect(texts(tok, tok.encode("unx")) == ["[UNK]"])
    }

    @Test func decoderJoinsContinuationsAndCleansUp() throws {
        let tok = try wordPiece(["un", "##aff", "##able", ",", "isn", "'", "t", ".", "i", "do", "not", "s", "##s"])
        let ids = ["un", "##aff", "##able", ",", "isn", "'", "t", ".", "i", "do", "not", "[MASK]", "s", "##s"]
            .map { t in Int32(tok.tokens.firstIndex(of: t)!) }
        // What `tokenizers`' WordPiece decoder gives for these ids (cleanup works token by token).
        #expect(tok.decode(ids) == "unaffable, isn ' t. i do not [MASK] ss")
        #expect(tok.decode([]) == "" && tok.decode([-1, 99999]) == "")
    }
}

@Suite struct WordPieceFileTests {
    static let sample = "Café naïve ... the [MASK] sat!? 你好 x☃y " + String(repeating: "z", count: 120) + "\tend\u{0}"

    @Test func serializedLoadsBackWithIdenticalIds() throws {
        var trainer = WordPieceTrainer()
        try trainer.add(String(repeating: "the cat sat on the mat. Café naïve résumé! 你好 end zzz ", count: 5))
        let tok = try trainer.train(vocabularySize: 80).tokenizer
        let path = temporaryPath("wordpiece.json")
        try tok.serialized().write(to: URL(fileURLWithPath: path))
        let loaded = try TokenizerFile.load(path)
        let back = try #require(loaded as? WordPiece)
        #expect(back.tokens == tok.tokens && back.vocabularySize == tok.vocabularySize)
        #expect(try back.encode(Self.sample) == tok.encode(Self.sample))
        #expect(back.decode(tok.encode(Self.sample)) == tok.decode(tok.encode(Self.sample)))
        #expect(back.specialTokenID("[MASK]") == 4 && back.lowercase && back.stripAccents)
        // vocab.txt: one token per line in id order.
        #expect(tok.vocabularyText.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) == tok.tokens)
        // The file is JSON that names the pieces Hugging Face expects.
        let object = try JSONSerialization.jsonObject(with: try tok.serialized()) as! [String: Any]
        #expect((object["normalizer"] as? [String: Any])?["type"] as? String == "BertNormalizer")
        #expect((object["pre_tokenizer"] as? [String: Any])?["type"] as? String == "BertPreTokenizer")
        #expect((object["decoder"] as? [String: Any])?["type"] as? String == "WordPiece")
        #expect((object["post_processor"] as? [String: Any])?["type"] as? String == "TemplateProcessing")
        #expect((object["added_tokens"] as? [[String: Any]])?.map { $0["content"] as! String } == WordPiece.defaultSpecials)
    }

    @Test func canonicallyEquivalentTokensSurviveTheFile() throws {
        let tok = try wordPiece(["\u{E9}", "e\u{301}", "\"q\\", "tab"], lowercase: false)
        let path = temporaryPath("canonical.json")
        try tok.serialized().write(to: URL(fileURLWithPath: path))
        let back = try #require(try TokenizerFile.load(path) as? WordPiece)
        #expect(back.tokens.map { Array($0.utf8) } == tok.tokens.map { Array($0.utf8) })
        #expect(back.encode("\u{E9} e\u{301}") == [5, 6])
    }

    /// The layout transformers' BertTokenizerFast / `tokenizers` write (bert-base-uncased's):
    /// strip_accents null, the post-processor, vocab in id order.
    static let huggingFaceLayout = """
        {"version":"1.0","truncation":null,"padding":null,"added_tokens":[\
        {"id":0,"content":"[PAD]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},\
        {"id":100,"content":"[UNK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},\
        {"id":101,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},\
        {"id":102,"content":"[SEP]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},\
        {"id":103,"content":"[MASK]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],\
        "normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},\
        "pre_tokenizer":{"type":"BertPreTokenizer"},\
        "post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},\
        {"SpecialToken":{"id":"[SEP]","type_id":0}}],"pair":[{"SpecialToken":{"id":"[CLS]","type_id":0}},{"Sequence":{"id":"A","type_id":0}},\
        {"SpecialToken":{"id":"[SEP]","type_id":0}},{"Sequence":{"id":"B","type_id":1}},{"SpecialToken":{"id":"[SEP]","type_id":1}}],\
        "special_tokens":{"[CLS]":{"id":"[CLS]","ids":[101],"tokens":["[CLS]"]},"[SEP]":{"id":"[SEP]","ids":[102],"tokens":["[SEP]"]}}},\
        "decoder":{"type":"WordPiece","prefix":"##","cleanup":true},\
        "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{VOCAB}}}
        """

    @Test func readsTheHuggingFaceLayout() throws {
        // bert-base-uncased's ids for its special tokens: [PAD] 0, [unused…] 1–99, [UNK] 100 … [MASK] 103.
        var tokens = ["[PAD]"] + (1...99).map { "[unused\($0)]" } + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tokens += ["the", "cafe", "un", "##aff", "##able", "!"]
        let vocab = tokens.enumerated().map { "\"\($0.element)\":\($0.offset)" }.joined(separator: ",")
        let path = temporaryPath("bert.json")
        try Self.huggingFaceLayout.replacingOccurrences(of: "VOCAB", with: vocab).write(toFile: path, atomically: true, encoding: .utf8)
        let tok = try #require(try TokenizerFile.load(path) as? WordPiece)
        #expect(tok.vocabularySize == 110 && tok.lowercase && tok.stripAccents)
        #expect(tok.specialTokenID("[MASK]") == 103 && tok.specialTokenID("[CLS]") == 101)
        // [unused3] is in the vocabulary but not an added token: its text is "[", "unused3", "]", none of them known.
        #expect(texts(tok, tok.encode("The CAFÉ [MASK] unaffable! [unused3]")) == ["the", "cafe", "[MASK]", "un", "##aff", "##able", "!", "[UNK]", "[UNK]", "[UNK]"])
    }

    @Test func errorsNameTheFileAndTheKey() throws {
        let good = try wordPiece(["a"]).serialized()
        let object = try JSONSerialization.jsonObject(with: good) as! [String: Any]
        func loadError(_ change: (inout [String: Any]) -> Void) throws -> String {
            var o = object
            change(&o)
            let path = temporaryPath("bad.json")
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
            do { _ = try TokenizerFile.load(path); return "loaded" } catch { return "\(error)" }
        }
        let unk = try loadError { o in var m = o["model"] as! [String: Any]; m["unk_token"] = "<unk>"; o["model"] = m }
        #expect(unk.contains("bad.json") && unk.contains("model.unk_token") && unk.contains("<unk>"), "\(unk)")
        let pre = try loadError { o in o["pre_tokenizer"] = ["type": "Whitespace"] }
        #expect(pre.contains("pre_tokenizer.type") && pre.contains("Whitespace"), "\(pre)")
        let ids = try loadError { o in var m = o["model"] as! [String: Any]; m["vocab"] = ["[UNK]": 0, "a": 7]; o["model"] = m }
        #expect(ids.contains("model.vocab") && ids.contains("\"a\" has id 7"), "\(ids)")
        let strip = try loadError { o in
            var added = o["added_tokens"] as! [[String: Any]]; added[4]["lstrip"] = true; o["added_tokens"] = added
        }
        #expect(strip.contains("added_tokens[4].lstrip"), "\(strip)")
    }
}

@Suite struct WordPieceTrainerTests {
    static let corpus = """
        The cat sat on the mat. The dog sat on the log!
        A cat and a dog met; the cat ran, the dog ran... Ran? Yes: RAN.
        Café au lait, naïve résumé — 你好 world; hugging hugs huggable huggers.
        """

    /// The training rule written out plainly: every pair recounted from scratch at every step.
    static func reference(_ words: [[String]: Int], specialsAndAlphabet: [String], size: Int,
                          score rule: WordPieceTrainer.Score) -> [String] {
        var vocab = specialsAndAlphabet, splits = words
        while vocab.count < size {
            var tokenCount: [[UInt8]: Int] = [:], pairCount: [[[UInt8]]: Int] = [:]
            for (split, c) in splits {
                for t in split { tokenCount[Array(t.utf8), default: 0] += c }
                for (a, b) in zip(split, split.dropFirst()) { pairCount[[Array(a.utf8), Array(b.utf8)], default: 0] += c }
            }
            guard !pairCount.isEmpty else { break }
            let best = pairCount.max { x, y in
                func score(_ p: (key: [[UInt8]], value: Int)) -> Double {
                    rule == .frequency ? Double(p.value) : Double(p.value) / (Double(tokenCount[p.key[0]]!) * Double(tokenCount[p.key[1]]!))
                }
                let sx = score(x), sy = score(y)
                if sx != sy { return sx < sy }
                if x.key[0] != y.key[0] { return !x.key[0].lexicographicallyPrecedes(y.key[0]) }
                return !x.key[1].lexicographicallyPrecedes(y.key[1])
            }!.key
            let a = String(decoding: best[0], as: UTF8.self), b = String(decoding: best[1], as: UTF8.self)
            let new = String(decoding: best[0] + best[1].dropFirst(2), as: UTF8.self)
            if !vocab.contains(where: { Array($0.utf8) == Array(new.utf8) }) { vocab.append(new) }
            var next: [[String]: Int] = [:]
            for (split, c) in splits {
                var out: [String] = [], i = 0
                while i < split.count {
                    if i + 1 < split.count && split[i] == a && split[i + 1] == b { out.append(new); i += 2 }
                    else { out.append(split[i]); i += 1 }
                }
                next[out, default: 0] += c
            }
            splits = next
        }
        return vocab
    }

    @Test(arguments: [(WordPieceTrainer.Score.likelihood, 400), (.likelihood, 90), (.frequency, 400), (.frequency, 90)])
    func incrementalCountsEqualAFullRecount(score: WordPieceTrainer.Score, size: Int) throws {
        var trainer = WordPieceTrainer(score: score)
        try trainer.add(Self.corpus)
        let trained = try trainer.train(vocabularySize: size)
        let tokens = trained.tokenizer.tokens
        // 400: until every word is one token (the text has fewer merges than that); 90: stopped early.
        #expect(tokens.count == min(size, tokens.count) && Array(tokens.prefix(5)) == WordPiece.defaultSpecials)
        #expect(size == 400 ? tokens.count < size : tokens.count == size)
        let base = Array(tokens.prefix(5 + trained.alphabetSize))
        // The reference's words: each word's pieces over the bare alphabet are its characters.
        let alphabetOnly = try WordPiece(tokens: base)
        var words: [[String]: Int] = [:], current: [String] = []
        for t in texts(alphabetOnly, alphabetOnly.encode(Self.corpus)) {
            if t.hasPrefix("##") { current.append(t); continue }
            if !current.isEmpty { words[current, default: 0] += 1 }
            current = [t]
        }
        if !current.isEmpty { words[current, default: 0] += 1 }
        #expect(!words.keys.contains { $0.contains("[UNK]") })
        // Trained to exhaustion, every word is one token.
        if size == 400 { #expect(trained.tokenizer.encode(Self.corpus).count == words.values.reduce(0, +)) }
        #expect(Self.reference(words, specialsAndAlphabet: base, size: size, score: score) == tokens)
    }

    @Test func deterministicSizedAndCoversItsText() throws {
        func train(_ size: Int) throws -> WordPieceTrainer.Trained {
            var trainer = WordPieceTrainer()
            try trainer.add(Self.corpus)
            return try trainer.train(vocabularySize: size)
        }
        let a = try train(80), b = try train(80)
        #expect(a.tokenizer.tokens == b.tokenizer.tokens && a.tokenizer.vocabularySize == 80)
        #expect(a.merges == 80 - 5 - a.alphabetSize && a.merges > 0)
        // Characters: word-initial and ## forms, but no ## form for punctuation or CJK ideographs.
        let alphabet = Set(a.tokenizer.tokens[5 ..< 5 + a.alphabetSize])
        #expect(alphabet.isSuperset(of: ["c", "##c", "e", "##e", ".", "你"]) && !alphabet.contains("##.") && !alphabet.contains("##你"))
        // Uncased: no capitals, and accents stripped.
        #expect(!alphabet.contains("C") && !alphabet.contains { $0.unicodeScalars.contains { $0.value == 0x301 || $0.value == 0xE9 } })
        // A larger vocabulary starts with the smaller one (merges are chosen in the same order).
        let larger = try train(100)
        #expect(Array(larger.tokenizer.tokens.prefix(80)) == a.tokenizer.tokens)
        // The training text encodes without [UNK] (the special token written in it included).
        let ids = a.tokenizer.encode(Self.corpus)
        #expect(!ids.contains(1) && a.tokenizer.encode("x [MASK]").last == 4)
        // Too small for the alphabet: an error saying how many are needed.
        #expect(throws: WordPieceTrainingError.self) { try train(10) }
    }

    @Test func frequencyMergesTheCommonWordsFirst() throws {
        var likely = WordPieceTrainer(score: .likelihood), frequent = WordPieceTrainer()
        let text = String(repeating: "the the the cat ", count: 20) + "zyx qvw"
        try likely.add(text); try frequent.add(text)
        let alphabet = try likely.train(vocabularySize: 1000).alphabetSize
        // One merge past the alphabet. Frequency: t+##h and ##h+##e (60 each) tie, and "##h" sorts
        // before "t". Likelihood: the pairs of zyx and qvw score 1/(1·1), the most there is; of
        // those, "##v" sorts first.
        let oneLikely = try likely.train(vocabularySize: 5 + alphabet + 1).tokenizer.tokens.last
        let oneFrequent = try frequent.train(vocabularySize: 5 + alphabet + 1).tokenizer.tokens.last
        #expect(oneFrequent == "##he" && oneLikely == "##vw", "\(String(describing: oneLikely)) \(String(describing: oneFrequent))")
    }

    @Test func casedKeepsCaseAndAccents() throws {
        var trainer = WordPieceTrainer(lowercase: false)
        try trainer.add(Self.corpus)
        let tok = try trainer.train(vocabularySize: 100).tokenizer
        #expect(!tok.lowercase && !tok.stripAccents)
        #expect(tok.tokens.contains("C") && tok.tokens.contains("é") && tok.tokens.contains("##ï"))
        #expect(tok.decode(tok.encode("Café RAN")) == "Café RAN")
    }
}
