// `loom tokenizer encode` / `decode` end to end, for a byte-level BPE and a character tokenizer: the
// ids equal those `loom tokenize` stores in its shards (per line for a parallel corpus, per file
// for documents), decode inverts encode byte for byte, and bad input names the line and the id;
// `loom tokenizer train --kind wordpiece`, and a WordPiece tokenizer through encode, decode,
// tokenize and export.
import Testing
import Foundation
import Data
import TestSupport

@Suite(.serialized) struct TokenizerCLITests {
    /// Lines with an empty line, a special token, a "\r", non-ASCII text and a final line without "\n".
    static let source = "The cat sat.\n\nA dog <|endoftext|> ran, fast.\r\nZwei Männer  lachen\nend"
    static let target = "Die Katze saß.\n\nEin Hund lief.\r\nTwo men laugh\nEnde"

    /// A directory with a BPE (tok.json, with <|endoftext|>) and a character tokenizer (char.json)
    /// of the texts, and the texts as src.txt and tgt.txt.
    func setUp() throws -> String {
        let dir = try scratchDirectory()
        try Self.source.write(toFile: dir + "/src.txt", atomically: true, encoding: .utf8)
        try Self.target.write(toFile: dir + "/tgt.txt", atomically: true, encoding: .utf8)
        let train = try loom(["tokenizer", "train", "--vocab-size", "300", "--special", "<|endoftext|>", "--out", "tok.json",
                              "src.txt", "tgt.txt"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        try CharacterTokenizer(corpus: Self.source + Self.target).serialized().write(to: URL(fileURLWithPath: dir + "/char.json"))
        return dir
    }

    /// The bytes `loom tokenizer decode …` writes (every text here is UTF-8, so the captured text keeps them).
    func decodedBytes(_ arguments: [String], in dir: String) throws -> Data {
        let run = try loom(arguments, in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        return Data(run.stdout.utf8)
    }

    /// `encode --json` of `file`: one array of ids per line.
    func encodeJSON(_ arguments: [String], in dir: String) throws -> [[Int32]] {
        let run = try loom(["tokenizer", "encode", "--json"] + arguments, in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        return run.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [Int]).map(Int32.init)
        }
    }

    @Test(arguments: ["tok.json", "char.json"])
    func encodeEqualsTheShardsOfTokenize(tokenizer: String) throws {
        let dir = try setUp()
        // Parallel corpus: each stream is the lines' ids, concatenated in order.
        let parallel = try loom(["tokenize", "--tokenizer", tokenizer, "--source", "src.txt", "--target", "tgt.txt", "--out", "pairs"], in: dir)
        #expect(parallel.status == 0, "\(parallel.stderr)")
        let pairs = try ParallelCorpus(directory: dir + "/pairs")
        let sourceLines = try encodeJSON(["--tokenizer", tokenizer, "src.txt"], in: dir)
        let targetLines = try encodeJSON(["--tokenizer", tokenizer, "tgt.txt"], in: dir)
        #expect(sourceLines.count == 5 && sourceLines[1].isEmpty && pairs.count == 5)
        #expect(Array(pairs.source) == sourceLines.flatMap { $0 })
        #expect(Array(pairs.target) == targetLines.flatMap { $0 })
        for i in 0..<pairs.count { #expect(pairs.pair(i).source == sourceLines[i]) }
        // Documents: tokenize concatenates its files, each encoded whole (newlines included).
        let documents = try loom(["tokenize", "--tokenizer", tokenizer, "--out", "docs", "src.txt", "tgt.txt"], in: dir)
        #expect(documents.status == 0, "\(documents.stderr)")
        let stream = try ShardCorpus(directory: dir + "/docs").tokens
        let whole = try encodeJSON(["--tokenizer", tokenizer, "--document", "src.txt"], in: dir)
            + encodeJSON(["--tokenizer", tokenizer, "--document", "tgt.txt"], in: dir)
        #expect(whole.count == 2 && Array(stream) == whole.flatMap { $0 })
        // The special token is one id in both forms.
        if tokenizer == "tok.json" {
            let eot = try TokenizerFile.load(dir + "/tok.json").specialTokenID("<|endoftext|>")!
            #expect(sourceLines[2].filter { $0 == eot }.count == 1 && whole[0].filter { $0 == eot }.count == 1)
        }
        // Plain output: the same ids, space-separated.
        let plain = try loom(["tokenizer", "encode", "--tokenizer", tokenizer, "src.txt"], in: dir)
        #expect(plain.stdout == sourceLines.map { $0.map(String.init).joined(separator: " ") + "\n" }.joined())
    }

    @Test(arguments: ["tok.json", "char.json"])
    func decodeInvertsEncode(tokenizer: String) throws {
        let dir = try setUp()
        let original = try Data(contentsOf: URL(fileURLWithPath: dir + "/src.txt"))
        for (flags, expected) in [([String](), original + Data("\n".utf8)), (["--document"], original)] {
            let ids = try loom(["tokenizer", "encode", "--tokenizer", tokenizer] + flags + ["src.txt"], in: dir)
            try ids.stdout.write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
            let back = try decodedBytes(["tokenizer", "decode", "--tokenizer", tokenizer] + flags + ["ids.txt"], in: dir)
            // Line mode adds the newline the last line lacked; --document gives the bytes back exactly.
            #expect(back == expected, "\(flags)")
        }
        // --json output decodes too.
        let json = try loom(["tokenizer", "encode", "--json", "--tokenizer", tokenizer, "src.txt"], in: dir)
        try json.stdout.write(toFile: dir + "/ids.json", atomically: true, encoding: .utf8)
        let back = try decodedBytes(["tokenizer", "decode", "--tokenizer", tokenizer, "ids.json"], in: dir)
        #expect(back == original + Data("\n".utf8))
    }

    @Test func badInputNamesTheLineAndTheId() throws {
        let dir = try setUp()
        let size = try TokenizerFile.load(dir + "/char.json").vocabularySize
        try "1 2\n\n3 \(size)\n".write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
        let range = try loom(["tokenizer", "decode", "--tokenizer", "char.json", "ids.txt"], in: dir)
        #expect(range.status != 0 && range.stdout.isEmpty)
        #expect(range.stderr.contains("ids.txt: line 3: id \(size) is out of range") && range.stderr.contains("0…\(size - 1)"), "\(range.stderr)")
        try "4 five\n".write(toFile: dir + "/words.txt", atomically: true, encoding: .utf8)
        let word = try loom(["tokenizer", "decode", "--tokenizer", "char.json", "words.txt"], in: dir)
        #expect(word.status != 0 && word.stderr.contains("words.txt: line 1: \"five\" is not a token id"), "\(word.stderr)")
        try "The cat\nsat on a ☃\n".write(toFile: dir + "/snow.txt", atomically: true, encoding: .utf8)
        let unknown = try loom(["tokenizer", "encode", "--tokenizer", "char.json", "snow.txt"], in: dir)
        #expect(unknown.status != 0 && unknown.stderr.contains("snow.txt: line 2: character \"☃\""), "\(unknown.stderr)")
        // The byte-level BPE encodes any bytes, the snowman included, and gives them back.
        let bpe = try loom(["tokenizer", "encode", "--tokenizer", "tok.json", "snow.txt"], in: dir)
        try bpe.stdout.write(toFile: dir + "/snow.ids", atomically: true, encoding: .utf8)
        let back = try decodedBytes(["tokenizer", "decode", "--tokenizer", "tok.json", "snow.ids"], in: dir)
        #expect(back == Data("The cat\nsat on a ☃\n".utf8))
    }

    @Test func wordPieceTrainEncodeDecodeTokenizeAndExport() throws {
        let dir = try scratchDirectory()
        let text = "The [MASK] sat on the mat.\nA cat and a dog met; the cat ran, the dog ran... Ran? Yes!\n\n"
            + "Café au lait, naïve résumé — 你好 world\thugging hugs huggable huggers.\r\nend"
        try text.write(toFile: dir + "/text.txt", atomically: true, encoding: .utf8)
        let train = try loom(["tokenizer", "train", "--kind", "wordpiece", "--vocab-size", "80", "--out", "wp/tokenizer.json", "text.txt"], in: dir)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("vocabulary 80 (WordPiece, uncased, frequency merges)") && train.stdout.contains("unique words"), "\(train.stdout)")
        let tok = try #require(try TokenizerFile.load(dir + "/wp/tokenizer.json") as? WordPiece)
        #expect(tok.vocabularySize == 80 && tok.lowercase)

        // encode --json: each line's ids, as the library gives them; [MASK] is its id; the empty line is [].
        // (Split on the scalar: "\r\n" is one Character.)
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
        let encoded = try encodeJSON(["--tokenizer", "wp/tokenizer.json", "text.txt"], in: dir)
        #expect(encoded == lines.map { tok.encode($0) })
        #expect(lines.count == 5 && encoded[0].filter { $0 == 4 }.count == 1 && encoded[2].isEmpty && !encoded.flatMap { $0 }.contains(1))
        // decode: Hugging Face's WordPiece decoder, line by line.
        let ids = try loom(["tokenizer", "encode", "--tokenizer", "wp/tokenizer.json", "text.txt"], in: dir)
        try ids.stdout.write(toFile: dir + "/ids.txt", atomically: true, encoding: .utf8)
        let decoded = try loom(["tokenizer", "decode", "--tokenizer", "wp/tokenizer.json", "ids.txt"], in: dir)
        #expect(decoded.status == 0 && decoded.stdout == encoded.map { tok.decode($0) + "\n" }.joined(), "\(decoded.stderr)")
        #expect(decoded.stdout.hasPrefix("the [MASK] sat on the mat.\n"), "\(decoded.stdout)")

        // tokenize: the shards hold encode --document's ids, and their tokenizer.json is the WordPiece.
        let shards = try loom(["tokenize", "--tokenizer", "wp/tokenizer.json", "--out", "shards", "text.txt"], in: dir)
        #expect(shards.status == 0, "\(shards.stderr)")
        let corpus = try ShardCorpus(directory: dir + "/shards")
        #expect(try Array(corpus.tokens) == encodeJSON(["--tokenizer", "wp/tokenizer.json", "--document", "text.txt"], in: dir)[0])
        #expect((corpus.tokenizer as? WordPiece)?.tokens == tok.tokens)

        // export: the files transformers' BertTokenizer reads.
        let export = try loom(["tokenizer", "export", "--tokenizer", "wp/tokenizer.json", "--out", "hf"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let vocab = try String(contentsOfFile: dir + "/hf/vocab.txt", encoding: .utf8)
        #expect(vocab == tok.vocabularyText)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/hf/tokenizer_config.json"))) as! [String: Any]
        #expect(config["tokenizer_class"] as? String == "BertTokenizer" && config["do_lower_case"] as? Bool == true
                && config["mask_token"] as? String == "[MASK]" && config["model_max_length"] as? Int == 512)
        #expect(FileManager.default.fileExists(atPath: dir + "/hf/special_tokens_map.json"))

        // --cased keeps case; --special is refused with the reason; a vocabulary below the alphabet says what it needs.
        let cased = try loom(["tokenizer", "train", "--kind", "wordpiece", "--cased", "--vocab-size", "90", "--out", "cased.json", "text.txt"], in: dir)
        #expect(cased.status == 0 && cased.stdout.contains("(WordPiece, cased, frequency merges)"), "\(cased.stderr)")
        #expect(try (TokenizerFile.load(dir + "/cased.json") as? WordPiece)?.lowercase == false)
        // --merge-score likelihood: another vocabulary of the same size; the option is refused for a BPE.
        let likely = try loom(["tokenizer", "train", "--kind", "wordpiece", "--merge-score", "likelihood", "--vocab-size", "80",
                               "--out", "likely.json", "text.txt"], in: dir)
        #expect(likely.status == 0 && likely.stdout.contains("vocabulary 80 (WordPiece, uncased, likelihood merges)"), "\(likely.stderr)")
        let likelyTokens = try #require(try TokenizerFile.load(dir + "/likely.json") as? WordPiece).tokens
        #expect(likelyTokens.count == 80 && likelyTokens != tok.tokens)
        let bpeScore = try loom(["tokenizer", "train", "--merge-score", "likelihood", "--vocab-size", "300", "text.txt"], in: dir)
        #expect(bpeScore.status != 0 && bpeScore.stderr.contains("--merge-score is for --kind wordpiece"), "\(bpeScore.stderr)")
        let special = try loom(["tokenizer", "train", "--kind", "wordpiece", "--special", "<s>", "--vocab-size", "80", "text.txt"], in: dir)
        #expect(special.status != 0 && special.stderr.contains("--special is for --kind bpe") && special.stderr.contains("[PAD] [UNK] [CLS] [SEP] [MASK]"), "\(special.stderr)")
        let small = try loom(["tokenizer", "train", "--kind", "wordpiece", "--vocab-size", "8", "text.txt"], in: dir)
        #expect(small.status != 0 && small.stderr.contains("--vocab-size") && small.stderr.contains("too small"), "\(small.stderr)")
    }
}
