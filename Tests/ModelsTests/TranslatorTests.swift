// Translator: cached incremental decoding against the full forward (with beam reordering), and
// beam search of size 1 against greedy search.
import Testing
import Kernels
import Models
import TestSupport
import Support

@Suite struct TranslatorTests {
    /// Rows (sentence, history): full-forward logits of each history must equal the cached
    /// decoder's, also after rows swap their caches as beams do.
    @Test(arguments: [false, true])
    func cachedDecodingMatchesFullForward(preNorm: Bool) {
        let V = 13, T = 5
        let config = EncoderDecoderConfig(vocabularySize: V, maxLength: 7, encoderLayers: 2, decoderLayers: 2, width: 8,
                                          heads: 2, ffnWidth: 16, normPlacement: preNorm ? .pre : .post)
        let model = EncoderDecoderTests.noisyModel(config, batch: 4, seed: 11)
        let sources: [[Int32]] = [[3, 4, 5, 6, 7], [8, 9, 3]]
        let key = CounterRandom.key(12)
        // Four histories: rows 0, 1 translate sentence 0; rows 2, 3 sentence 1.
        let histories: [[Int32]] = (0..<4).map { r in [1] + (1..<T).map { Int32(CounterRandom.below(V, key: key, counter: UInt64(r * 10 + $0))) } }
        let S = 5
        var source = [Int32](repeating: 0, count: 4 * S)
        for r in 0..<4 { for (i, t) in sources[r / 2].enumerated() { source[r * S + i] = t } }
        let lengths: [Int32] = [5, 5, 3, 3]
        model.forward(source: source, sourceLengths: lengths, targetInput: histories.flatMap { $0 }, targetOutput: nil,
                      batch: 4, sourceLength: S, targetLength: T)
        let full = Array(UnsafeBufferPointer(start: model.logits, count: 4 * T * V))
        let decoder = IncrementalDecoder(model: model, maxRows: 4)
        decoder.start(sources: sources, rowsPerSentence: 2)
        // Row r follows history owner[r]; after step 2 the rows of each sentence swap.
        var owner = [0, 1, 2, 3]
        var worst: Float = 0
        for t in 0..<T {
            if t == 2 {
                owner = [1, 0, 3, 2]
                decoder.reorder(parents: [1, 0, 3, 2])
            }
            let logits = decoder.step(owner.map { histories[$0][t] })
            for r in 0..<4 {
                for v in 0..<V { worst = max(worst, abs(logits[r * V + v] - full[(owner[r] * T + t) * V + v])) }
            }
        }
        #expect(worst < 1e-4, "largest logit difference \(worst)")
    }

    @Test(arguments: [false, true])
    func beamOfOneIsGreedy(preNorm: Bool) {
        let V = 9
        let config = EncoderDecoderConfig(vocabularySize: V, maxLength: 12, encoderLayers: 1, decoderLayers: 2, width: 16,
                                          heads: 2, ffnWidth: 32, normPlacement: preNorm ? .pre : .post)
        let model = EncoderDecoderTests.noisyModel(config, batch: 4, seed: 21)
        let sources: [[Int32]] = [[3, 4, 5], [6], [7, 8, 3, 4, 5, 6], [5, 5]]
        let translator = Translator(model: model, maxSentences: 4, maxBeam: 4)
        var options = SearchOptions(beamSize: 1, extraLength: 4, begin: 1, end: 2)
        let greedy = translator.greedy(sources, options: options)
        let beam = translator.beam(sources, options: options)
        #expect(greedy == beam)
        #expect(greedy.contains { !$0.isEmpty })
        // Lengths respect source + extraLength (the end token takes the last slot).
        for (s, out) in zip(sources, greedy) { #expect(out.count < s.count + 4) }
        // Wider beams return hypotheses (batched and one sentence at a time agree).
        options.beamSize = 3
        let wide = translator.beam(sources, options: options)
        for (i, s) in sources.enumerated() { #expect(translator.beam([s], options: options) == [wide[i]]) }
    }
}
