// Masked language modelling inputs: [CLS] … [SEP] framing, document ends as [SEP], how many
// positions are chosen, the 80/10/10 split, specials never chosen nor drawn, the same sequence and
// mask however a batch is split (ranks, micro-batches), predictionCount agreeing with fill, and
// the error for a tokenizer without BERT's tokens.
import Testing
import Foundation
import Data
import Support

/// A tokenizer of `size` ids whose first five are BERT's specials and id 5 is `<|endoftext|>`.
struct SpecialsTokenizer: Tokenizer {
    var size = 50
    var names = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<|endoftext|>"]
    var vocabularySize: Int { size }
    func encode(_ text: String) throws -> [Int32] { [] }
    func decode(_ tokens: [Int32]) -> String { "" }
    func specialTokenID(_ token: String) -> Int32? { names.firstIndex(of: token).map(Int32.init) }
    func serialized() throws -> Data { Data() }
}

@Suite struct MaskedLanguageModelingTests {
    static let T = 32
    /// A stream of ordinary tokens (6 ..< 50) with a document end every 37 tokens.
    static let stream: [Int32] = (0..<5000).map { (i: Int) -> Int32 in
        if i % 37 == 36 { return 5 }
        return Int32(6 + (i * 7919) % 44)
    }

    func sampler(policy: MaskingPolicy = MaskingPolicy(), seed: UInt64 = 1) throws -> MaskedSequenceSampler {
        try MaskedSequenceSampler(tokens: TokenStream(Self.stream), time: Self.T, seed: seed, purpose: 1, policy: policy,
                                  specials: MaskedLanguageModelTokens(tokenizer: SpecialsTokenizer()), path: "test",
                                  split: "training")
    }

    func fill(_ s: MaskedSequenceSampler, batch: Int, step: Int, first: Int) -> (x: [Int32], y: [Int32], n: [Int32], chosen: Int) {
        var x = [Int32](repeating: 0, count: batch * Self.T), y = x, n = [Int32](repeating: 0, count: batch)
        let chosen = s.fill(inputs: &x, targets: &y, lengths: &n, batch: batch, step: step, firstExample: first)
        return (x, y, n, chosen)
    }

    @Test func chosenCountIsBERTs() {
        let p = MaskingPolicy()
        #expect(p.chosenCount(candidates: 0) == 0)
        #expect(p.chosenCount(candidates: 3) == 1)       // at least one
        #expect(p.chosenCount(candidates: 126) == 19)    // round(18.9)
        #expect(p.chosenCount(candidates: 100) == 15)
        #expect(p.maximumChosen(time: 128) == 19)
        #expect(MaskingPolicy(probability: 1).chosenCount(candidates: 7) == 7)
        #expect(MaskingPolicy(probability: 0).problem != nil)
        #expect(MaskingPolicy(replaceWithMask: 0.8, replaceWithRandom: 0.3).problem != nil)
    }

    @Test func sequencesAreFramedAndMasked() throws {
        let s = try sampler(), T = Self.T, B = 64
        let (x, y, n, chosen) = fill(s, batch: B, step: 3, first: 0)
        var counted = 0
        for b in 0..<B {
            let row = b * T
            #expect(x[row] == 2 && x[row + T - 1] == 3, "[CLS] first, [SEP] last")
            #expect(n[b] == Int32(T))
            #expect(y[row] == -1 && y[row + T - 1] == -1)
            let targets = (0..<T).filter { y[row + $0] >= 0 }
            counted += targets.count
            // The unmasked window has T − 2 candidates but for the document ends inside it.
            let ends = (1..<(T - 1)).filter { x[row + $0] == 3 }.count
            #expect(targets.count == MaskingPolicy().chosenCount(candidates: T - 2 - ends))
            for i in targets {
                #expect(y[row + i] >= 6, "only ordinary tokens are chosen")
                #expect(x[row + i] == 4 || x[row + i] >= 6, "a chosen position holds [MASK], a random or its own token")
            }
            #expect((1..<(T - 1)).allSatisfy { x[row + $0] != 5 }, "document ends become [SEP]")
            #expect((1..<(T - 1)).allSatisfy { x[row + $0] != 0 && x[row + $0] != 1 && x[row + $0] != 2 })
        }
        #expect(counted == chosen)
        #expect((0..<B).map { s.predictionCount(step: 3, example: $0) }.reduce(0, +) == chosen)
    }

    @Test func replacementSharesAreEightyTenTen() throws {
        let s = try sampler(), T = Self.T
        var masked = 0, random = 0, kept = 0
        for step in 0..<40 {
            let (x, y, _, _) = fill(s, batch: 64, step: step, first: 0)
            for i in 0..<(64 * T) where y[i] >= 0 {
                if x[i] == 4 { masked += 1 } else if x[i] == y[i] { kept += 1 } else { random += 1 }
            }
        }
        let total = Double(masked + random + kept)
        // A random token equal to the original counts as kept: 1/44 of the random share.
        #expect(abs(Double(masked) / total - 0.8) < 0.02, "masked \(Double(masked) / total)")
        #expect(abs(Double(random) / total - 0.1 * 43 / 44) < 0.015, "random \(Double(random) / total)")
        #expect(abs(Double(kept) / total - (0.1 + 0.1 / 44)) < 0.015, "kept \(Double(kept) / total)")
        // Another policy moves the shares.
        let all = try sampler(policy: MaskingPolicy(replaceWithMask: 1, replaceWithRandom: 0))
        let (x, y, _, _) = fill(all, batch: 16, step: 0, first: 0)
        #expect((0..<(16 * T)).filter { y[$0] >= 0 }.allSatisfy { x[$0] == 4 })
    }

    @Test func anySplitOfTheBatchGivesTheSameExamples() throws {
        let s = try sampler(), T = Self.T
        let whole = fill(s, batch: 8, step: 11, first: 0)
        for (first, count) in [(0, 2), (2, 2), (4, 4), (7, 1)] {
            let part = fill(s, batch: count, step: 11, first: first)
            #expect(part.x == Array(whole.x[(first * T)..<((first + count) * T)]))
            #expect(part.y == Array(whole.y[(first * T)..<((first + count) * T)]))
        }
        #expect(fill(s, batch: 8, step: 12, first: 0).x != whole.x, "another step, other sequences")
        #expect(fill(try sampler(seed: 2), batch: 8, step: 11, first: 0).x != whole.x, "another seed, other sequences")
    }

    @Test func aTokenizerWithoutBERTsTokensIsAnError() {
        #expect {
            _ = try MaskedLanguageModelTokens(tokenizer: SpecialsTokenizer(names: ["<|endoftext|>"]))
        } throws: { error in
            "\(error)".contains("[CLS], [SEP], [MASK]") && "\(error)".contains("--kind wordpiece")
        }
        let noPad = SpecialsTokenizer(names: ["<|endoftext|>", "[CLS]", "[SEP]", "[MASK]"])
        #expect((try? MaskedLanguageModelTokens(tokenizer: noPad))?.padding == 0)
    }
}
