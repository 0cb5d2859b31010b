// Byte-level BPE: pre-tokenisation pieces, byte round trips (invalid UTF-8 included), merges
// applied by rank, training's first merges, and the Hugging Face / GPT-2 file formats.
import Testing
import Foundation
import Data
import TestSupport

/// SplitMix64: a seeded generator so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

func pieces(_ text: String) -> [String] {
    var out: [String] = []
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { b in ByteLevel.split(b) { out.append(String(decoding: bytes[$0 ..< $1], as: UTF8.self)) } }
    return out
}

func temporaryPath(_ name: String) -> String {
    let dir = scratchPath("loom-data-")
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir + "/" + name
}

let englishSample = """
First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak. We're told you'll be there; they've 12 ships and 345 men!
You are all resolved rather to die than to famish?
"""

@Suite struct PreTokenizerTests {
    @Test func gpt2PatternPiecesByHand() {
        // Hello | two spaces then "world": the run keeps its last space for " world" | 's | " 123" |
        // " !!" | "\n\n " before x: the run gives "\n\n" and leaves " x".
        #expect(pieces("Hello  world's 123 !!\n\n x") == ["Hello", " ", " world", "'s", " 123", " !!", "\n\n", " x"])
        // Contractions are case-sensitive and come before letters; a lone tab before a letter is its own piece.
        #expect(pieces("don't I'LL\tgo") == ["don", "'t", " I", "'", "LL", "\t", "go"])
        // Trailing whitespace at the end of the text is one piece; non-ASCII letters and numbers.
        #expect(pieces("née ½x  ") == ["née", " ½", "x", "  "])
    }

    @Test func piecesCoverEveryByteOfRandomInput() {
        var g = SeededGenerator(state: 11)
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0...80, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            var next = 0
            bytes.withUnsafeBytes { b in
                ByteLevel.split(b) { start, end in
                    #expect(start == next && end > start)
                    next = end
                }
            }
            #expect(next == bytes.count)
        }
    }
}

@Suite struct ByteLevelBPETests {
    static func trained(specials: [String] = []) throws -> ByteLevelBPE {
        var t = BPETrainer()
        t.add(Array(String(repeating: englishSample, count: 3).utf8))
        return try t.train(vocabularySize: 400, specials: specials)
    }

    @Test func randomBytesRoundTripIncludingInvalidUTF8() throws {
        let bpe = try Self.trained(specials: ["<|endoftext|>"])
        var g = SeededGenerator(state: 5)
        let alphabet: [UInt8] = Array("aeiou tsrn\n'.,<|>".utf8) + [0x80, 0xC3, 0xA9, 0xFF, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x00]
        var invalid = 0
        for _ in 0..<500 {
            let n = Int.random(in: 0...120, using: &g)
            var bytes = (0..<n).map { _ in Bool.random(using: &g) ? alphabet.randomElement(using: &g)! : UInt8.random(in: 0...255, using: &g) }
            if Bool.random(using: &g) { bytes += Array("<|endoftext|>".utf8) + bytes }
            if String(validating: bytes, as: UTF8.self) == nil { invalid += 1 }
            let ids = try bpe.encode(bytes: bytes)
            #expect(bpe.decodeBytes(ids) == bytes)
            #expect(ids.allSatisfy { $0 >= 0 && Int($0) < bpe.vocabularySize })
        }
        #expect(invalid > 100, "the test must exercise invalid UTF-8")
        // Text round trip, and merges do shorten English.
        let ids = try bpe.encode(englishSample)
        #expect(bpe.decode(ids) == englishSample)
        #expect(ids.count < englishSample.utf8.count / 2)
        // The special token is one id.
        let eot = bpe.specialTokenID("<|endoftext|>")!
        #expect(try bpe.encode("ab<|endoftext|>cd").filter { $0 == eot }.count == 1)
    }

    @Test func aCacheThatStartsAfreshGivesTheSameIDs() throws {
        let bpe = try Self.trained()
        let text = Array(String(repeating: englishSample, count: 2).utf8)
        let encoder = ByteLevelBPE.Encoder(bpe, cacheLimit: 3)
        var ids: [Int32] = []
        text.withUnsafeBytes { encoder.encode($0, into: &ids) }
        let expected = try bpe.encode(bytes: text)
        #expect(ids == expected && ids.count < text.count / 2)
    }

    @Test func mergesApplyByRankNotLeftToRight() throws {
        // Vocabulary: bytes, then ab (256, rank 0), abc (257, rank 1), bc (258, rank 2).
        let bpe = try ByteLevelBPE(mergeBytes: [(Array("a".utf8), Array("b".utf8)), (Array("ab".utf8), Array("c".utf8)),
                                                (Array("b".utf8), Array("c".utf8))], specials: [])
        // a b c b c: lowest rank is (a,b) → [ab c b c]; then (ab,c) rank 1 → [abc b c]; then (b,c) → [abc bc].
        #expect(try bpe.encode("abcbc") == [257, 258])
        // b c a b: (a,b) rank 0 first → [b c ab]; (c,ab) is no merge; (b,c) rank 2 → [bc ab].
        #expect(try bpe.encode("bcab") == [258, 256])
        // a b b c: (a,b) → [ab b c]; (ab,b) none; (b,c) → [ab bc] (not abc: "ab"+"c" never adjacent).
        #expect(try bpe.encode("abbc") == [256, 258])
        // Pieces are merged separately: "ab c" → "ab", " c" (space stays its own byte token).
        #expect(try bpe.encode("ab c") == [256, 32, 99])
    }

    @Test func trainingFindsTheExpectedFirstMerges() throws {
        // Pieces of "aaab aab ab": "aaab", " aab", " ab" (once each). Pair counts:
        //   (a,a) 2 + 1 = 3, (a,b) 1 + 1 + 1 = 3, (" ",a) 2. Tie → smaller ids: (97,97) "aa" first.
        // Then [aa a b], [" " aa b], [" " a b]: (a,b) 2 is the only pair counted twice → "ab".
        // Then [aa ab], [" " aa b], [" " ab]: every pair once; smallest ids (32, 256) → " aa".
        var t = BPETrainer()
        t.add(Array("aaab aab ab".utf8))
        let bpe = try t.train(vocabularySize: 259)
        let merges = bpe.merges.map { String(decoding: bpe.tokenBytes[Int($0.left)], as: UTF8.self) + "|" + String(decoding: bpe.tokenBytes[Int($0.right)], as: UTF8.self) }
        #expect(merges == ["a|a", "a|b", " |aa"])
        #expect(try bpe.encode("aaab") == [256, 257])
        // Special tokens are cut out before counting. "<s><s><s> ab" without them pre-tokenises to
        // "<" "s" "><" "s" "><" "s" ">" " ab": (">","<") is the only pair seen twice → first merge.
        // With "<s>" declared only " ab" is counted: (" ","a") and ("a","b") once, smaller ids win.
        let corpus = Array("<s><s><s> ab".utf8)
        var plain = BPETrainer()
        plain.add(corpus)
        #expect(try plain.train(vocabularySize: 257).tokenBytes[256] == Array("><".utf8))
        var withSpecial = BPETrainer(specials: ["<s>"])
        withSpecial.add(corpus)
        let s = try withSpecial.train(vocabularySize: 258, specials: ["<s>"])
        #expect(s.tokenBytes[256] == Array(" a".utf8))
        #expect(s.specialTokenID("<s>") == 257 && s.vocabularySize == 258)
    }

    @Test func huggingFaceFileRoundTrip() throws {
        let bpe = try Self.trained(specials: ["<|endoftext|>"])
        let path = temporaryPath("tokenizer.json")
        try bpe.serialized().write(to: URL(fileURLWithPath: path))
        let loaded = try TokenizerFile.load(path)
        #expect(loaded.vocabularySize == bpe.vocabularySize)
        for text in [englishSample, "Zebra<|endoftext|>quux 99 ünï", " \n\t  x"] {
            #expect(try loaded.encode(text) == bpe.encode(text))
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        #expect((json["pre_tokenizer"] as! [String: Any])["type"] as? String == "ByteLevel")
        #expect(((json["model"] as! [String: Any])["merges"] as! [Any]).first is [String])
    }

    @Test func loadsAHandWrittenHuggingFaceFileWithStringMerges() throws {
        // Byte tokens 0–255 in GPT-2's printable spelling, then "Ġt" (256), "he" (257),
        // "Ġthe" (258), and the special "<|endoftext|>" (259). Merges in the old "a b" form.
        let bytes = (0..<256).map { "\"\(ByteLevel.printable([UInt8($0)]).replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\": \($0)" }
        let text = """
        {"version": "1.0", "added_tokens": [{"id": 259, "content": "<|endoftext|>", "special": true}],
         "normalizer": null,
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
         "decoder": {"type": "ByteLevel"},
         "model": {"type": "BPE", "vocab": {\(bytes.joined(separator: ", ")), "Ġt": 256, "he": 257, "Ġthe": 258, "<|endoftext|>": 259},
                   "merges": ["Ġ t", "h e", "Ġt he"]}}
        """
        let path = temporaryPath("tokenizer.json")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let t = try TokenizerFile.load(path)
        #expect(t.vocabularySize == 260)
        // " the" → Ġ t h e → (Ġ,t) rank 0 → [Ġt h e] → (h,e) rank 1 → [Ġt he] → rank 2 → [Ġthe].
        // "the" → t h e → (h,e) → [t he]: 116, 257.
        #expect(try t.encode("the the<|endoftext|>") == [116, 257, 258, 259])
        #expect(t.decode([116, 257, 258, 259]) == "the the<|endoftext|>")
    }

    @Test func loadsGPT2VocabAndMerges() throws {
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[ByteLevel.printable([UInt8(b)])] = b }
        vocab["Ġt"] = 256; vocab["Ġto"] = 257; vocab["<|endoftext|>"] = 258
        let path = temporaryPath("vocab.json")
        try JSONSerialization.data(withJSONObject: vocab).write(to: URL(fileURLWithPath: path))
        try "#version: 0.2\nĠ t\nĠt o\n".write(toFile: (path as NSString).deletingLastPathComponent + "/merges.txt", atomically: true, encoding: .utf8)
        let t = try TokenizerFile.load(path)
        #expect(try t.encode("go to<|endoftext|>") == [103, 111, 257, 258])
        try "#version: 0.2\nĠ t\nĠtoo\n".write(toFile: (path as NSString).deletingLastPathComponent + "/merges.txt", atomically: true, encoding: .utf8)
        #expect { try TokenizerFile.load(path) } throws: { "\($0)".contains("merges.txt") && "\($0)".contains("line 3") }
    }

    @Test func characterTokenizerRejectsInvalidUTF8WithTheOffset() {
        let t = CharacterTokenizer(corpus: "abc")
        #expect { try t.encode(bytes: [0x61, 0x62, 0xFF, 0x63]) } throws: { "\($0)".contains("byte offset 2") }
    }
}
