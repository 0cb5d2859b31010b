// CharacterTokenizer round trips and errors; WindowSampler's rank-independent example order.
import Testing
import Foundation
import Data
import TestSupport

@Suite struct CharacterTokenizerTests {
    @Test func vocabularyIsSortedSetOfCharacters() throws {
        let t = CharacterTokenizer(corpus: "hello, world\n")
        #expect(t.characters.map { String($0) } == ["\n", " ", ",", "d", "e", "h", "l", "o", "r", "w"])
        let ids = try t.encode("hello")
        #expect(ids == [5, 4, 6, 6, 7])
        #expect(t.decode(ids) == "hello")
    }

    @Test func unknownCharacterIsAnErrorNamingIt() {
        let t = CharacterTokenizer(corpus: "abc")
        #expect {
            try t.encode("abz")
        } throws: { error in
            "\(error)".contains("'z'") || "\(error)".contains("\"z\"") && "\(error)".contains("offset 2")
        }
    }

    @Test func savesAndLoads() throws {
        let t = CharacterTokenizer(corpus: "Thé quick\n\"fox\"\t🦊")
        let path = scratchPath("loom-tok-", suffix: ".json")
        try t.serialized().write(to: URL(fileURLWithPath: path))
        let loaded = try TokenizerFile.load(path)
        #expect(loaded.vocabularySize == t.vocabularySize)
        #expect(try loaded.encode("quick 🦊") == t.encode("quick 🦊"))
        try "{\"nope\": 1}".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TokenizerError.self) { try TokenizerFile.load(path) }
    }
}

@Suite struct WindowSamplerTests {
    @Test func examplesDependOnStepAndIndexNotOnHowTheBatchIsSplit() throws {
        let tokens = (0..<1000).map { Int32($0 % 97) }
        let s = try WindowSampler(tokens: tokens, time: 8, seed: 3, purpose: 1, path: "x", split: "training")
        var whole = [Int32](repeating: 0, count: 4 * 8), wholeTargets = whole
        s.fill(inputs: &whole, targets: &wholeTargets, batch: 4, step: 5, firstExample: 0)
        var parts: [Int32] = [], partTargets: [Int32] = []
        for first in [0, 2] {
            var i = [Int32](repeating: 0, count: 2 * 8), t = i
            s.fill(inputs: &i, targets: &t, batch: 2, step: 5, firstExample: first)
            parts += i; partTargets += t
        }
        #expect(parts == whole && partTargets == wholeTargets)
        // Targets are inputs shifted by one.
        for b in 0..<4 { for t in 0..<7 { #expect(wholeTargets[b * 8 + t] == whole[b * 8 + t + 1]) } }
        // Another step draws other windows.
        var other = [Int32](repeating: 0, count: 4 * 8), otherTargets = other
        s.fill(inputs: &other, targets: &otherTargets, batch: 4, step: 6, firstExample: 0)
        #expect(other != whole)
    }

    @Test func corpusSmallerThanAWindowIsAClearError() {
        #expect {
            try WindowSampler(tokens: [1, 2, 3], time: 8, seed: 1, purpose: 1, path: "tiny.txt", split: "validation")
        } throws: { error in
            "\(error)".contains("tiny.txt") && "\(error)".contains("validation")
        }
    }

    @Test func splitIsNinetyTen() {
        let c = TextCorpus(path: "x", tokens: (0..<100).map(Int32.init), validationFraction: 0.1)
        #expect(c.train.count == 90 && c.validation.first == 90)
    }
}
