// BLEU: hand-computed corpus scores (clipping, brevity penalty, each smoothing method, several
// references), sacreBLEU's signature, and the 13a tokeniser's rules one by one.
import Testing
import Foundation
import Data

@Suite struct BLEUTests {
    @Test func tokenizer13aRules() {
        #expect(BLEU.tokenize13a("Hello, world.") == ["Hello", ",", "world", "."])
        #expect(BLEU.tokenize13a("pi is 3.14, not 1,000.") == ["pi", "is", "3.14", ",", "not", "1,000", "."])
        #expect(BLEU.tokenize13a("5-3 and a-b") == ["5", "-", "3", "and", "a-b"])
        #expect(BLEU.tokenize13a("&quot;x&quot; &amp; &lt;y&gt;") == ["\"", "x", "\"", "&", "<", "y", ">"])
        #expect(BLEU.tokenize13a("done<skipped> (a)[b]{c}/d") == ["done", "(", "a", ")", "[", "b", "]", "{", "c", "}", "/", "d"])
        #expect(BLEU.tokenize13a("  Ein Hund läuft.\r") == ["Ein", "Hund", "läuft", "."])
        // Apostrophes and hyphens between letters are not split; "$" and "%" are.
        #expect(BLEU.tokenize13a("it's well-known: 50% $5") == ["it's", "well-known", ":", "50", "%", "$", "5"])
    }

    /// "the cat sat on the mat" vs "the cat is on the mat": 5/6, 3/5, 1/4, 0/3.
    @Test func handComputedScores() {
        let h = ["the cat sat on the mat"], r = [["the cat is on the mat"]]
        let st = BLEU.statistics(hypothesis: BLEU.tokenize13a(h[0]), references: r.map { BLEU.tokenize13a($0[0]) })
        #expect(st.correct == [5, 3, 1, 0] && st.total == [6, 5, 4, 3])
        #expect(BLEU.corpus(hypotheses: h, references: r, smoothing: .none).score == 0)   // no smoothing: a zero precision
        // exp smoothing: p4 = 1/(2·3); BLEU = (5/6 · 3/5 · 1/4 · 1/6)^¼ = (1/48)^¼
        let smoothed = BLEU.corpus(hypotheses: h, references: r, smoothing: .exp)
        #expect(abs(smoothed.score - 100 * pow(1.0 / 48, 0.25)) < 1e-9)
        // Corpus statistics add: with an exact 5-token pair, (10/11 · 7/9 · 4/7 · 2/5)^¼.
        let two = BLEU.corpus(hypotheses: h + ["a b c d e"], references: [r[0] + ["a b c d e"]])
        #expect(abs(two.score - 100 * pow(10.0 / 11 * 7 / 9 * 4 / 7 * 2 / 5, 0.25)) < 1e-9)
        #expect(two.brevityPenalty == 1)
        #expect(two.description.hasPrefix("BLEU = 63.40 90.9/77.8/57.1/40.0 (BP = 1.000 ratio = 1.000 hyp_len = 11 ref_len = 11)"))
    }

    @Test func clippingBrevityAndClosestReference() {
        // "the the the the" against "the cat": unigram matches clipped to 1.
        let st = BLEU.statistics(hypothesis: ["the", "the", "the", "the"], references: [["the", "cat"]])
        #expect(st.correct[0] == 1 && st.total[0] == 4)
        // Short hypothesis: BP = exp(1 − r/c) with r = 8, c = 6.
        let h = "a b c d e f", r = "a b c d e f g h"
        let s = BLEU.corpus(hypotheses: [h], references: [[r]])
        #expect(abs(s.brevityPenalty - exp(1 - 8.0 / 6)) < 1e-12)
        #expect(abs(s.score - 100 * exp(1 - 8.0 / 6)) < 1e-9)     // all precisions are 1
        // Two references: the closest length (ties → shorter) sets r; matches clip at the max count.
        let multi = BLEU.statistics(hypothesis: ["x", "x", "y"], references: [["x", "y", "z", "w"], ["x", "x"]])
        #expect(multi.referenceLength == 2 && multi.correct[0] == 3)
        let tie = BLEU.statistics(hypothesis: ["a", "b", "c"], references: [["a", "b", "c", "d"], ["a", "b"]])
        #expect(tie.referenceLength == 2)
    }

    /// "the cat sat on the mat" vs "the cat is on the mat" (5/6, 3/5, 1/4, 0/3) under each method,
    /// computed by hand from sacreBLEU's `compute_bleu`; the default is exp, as sacreBLEU's.
    @Test func smoothingMethodsAndDefault() {
        let h = ["the cat sat on the mat"], r = [["the cat is on the mat"]]
        func score(_ m: BLEU.Smoothing, _ value: Double? = nil) -> BLEU.Score {
            BLEU.corpus(hypotheses: h, references: r, smoothing: m, value: value)
        }
        #expect(BLEU.corpus(hypotheses: h, references: r).score == score(.exp).score)
        #expect(abs(score(.exp).score - 100 * pow(5.0 / 6 * 3 / 5 * 1 / 4 * 1 / 6, 0.25)) < 1e-9)
        // floor: the zero 4-gram count becomes 0.1/3.
        #expect(abs(score(.floor).score - 100 * pow(5.0 / 6 * 3 / 5 * 1 / 4 * 0.1 / 3, 0.25)) < 1e-9)
        #expect(abs(score(.floor, 0.5).score - 100 * pow(5.0 / 6 * 3 / 5 * 1 / 4 * 0.5 / 3, 0.25)) < 1e-9)
        // add-k (k = 1) from the bigrams on: 5/6 · 4/6 · 2/5 · 1/4, and the precisions show it.
        let addK = score(.addK)
        #expect(abs(addK.score - 100 * pow(5.0 / 6 * 4 / 6 * 2 / 5 * 1 / 4, 0.25)) < 1e-9)
        #expect(addK.formatted(width: 2).contains("83.3/66.7/40.0/25.0"))
        #expect(score(.none).score == 0)
        // No match at all: 0 whatever the method.
        for m in BLEU.Smoothing.allCases {
            #expect(BLEU.corpus(hypotheses: ["x y z"], references: [["a b c"]], smoothing: m).score == 0)
        }
    }

    @Test func signatureNamesTheSettingsLikeSacreBLEU() {
        let v = BLEU.sacreBLEUVersion
        #expect(BLEU.signature(references: 1) == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:\(v)")
        #expect(BLEU.signature(references: 2, smoothing: .none) == "nrefs:2|case:mixed|eff:no|tok:13a|smooth:none|version:\(v)")
        #expect(BLEU.signature(references: 1, smoothing: .floor).contains("|smooth:floor[0.10]|"))
        #expect(BLEU.signature(references: 1, smoothing: .addK, value: 2).contains("|smooth:add-k[2.00]|"))
    }
}
