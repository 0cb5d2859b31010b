// GPT: whole-model gradient check (with and without dropout), loss at initialisation, the
// parameter layout, and the KV-cache decoder against the full forward.
import Testing
import Foundation
import Kernels
import Models
import TestSupport
import Support

@Suite struct GPTTests {
    static let tiny = GPTConfig(vocabularySize: 7, contextLength: 5, layers: 2, heads: 2, width: 8)

    func randomTokens(_ n: Int, vocabulary: Int, seed: UInt64) -> [Int32] {
        let key = CounterRandom.key(seed, 3)
        return (0..<n).map { Int32(CounterRandom.below(vocabulary, key: key, counter: UInt64($0))) }
    }

    @Test(arguments: [Float(0), Float(0.2)])
    func wholeModelGradientCheck(dropout: Float) {
        var config = Self.tiny
        config.dropout = dropout
        let B = 2, T = 4
        let model = GPT(config: config, maxBatch: B)
        model.initialize(seed: 1)
        // Larger weights than GPT-2's 0.02 so every path carries signal.
        let noise = randomFloats(model.parameters.count, seed: 2, scale: 0.3)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += noise[i] }
        let tokens = randomTokens(B * T, vocabulary: 7, seed: 3), targets = randomTokens(B * T, vocabulary: 7, seed: 4)
        let stream = dropout > 0 ? DropoutStream(key: 99, firstExample: 3) : nil
        func loss() -> Double { model.forward(tokens: tokens, targets: targets, batch: B, time: T, dropout: stream).sum }
        _ = loss()
        model.backward(tokens: tokens, targets: targets, scale: 1)
        let analytic = Array(model.gradients.buffer)
        // Every tensor: a few entries each.
        var indices: [Int] = []
        for t in model.layout.tensors { indices += sampleIndices(t.count, limit: 6, seed: UInt64(t.offset)).map { $0 + t.offset } }
        let r = gradCheck(values: model.parameters.pointer, analytic: analytic, indices: indices, step: 1e-2, loss: loss)
        print("GPT whole-model gradient check (dropout \(dropout)): \(r)")
        #expect(r.worstRelativeError < 5e-2, "\(r)")
        // Position rows beyond T get no gradient; all else is touched.
        let wpe = model.layout.spec("wpe.weight")!
        #expect(analytic[(wpe.offset + 4 * 8)..<(wpe.offset + 5 * 8)].allSatisfy { $0 == 0 })
    }

    @Test func lossAtInitialisationIsLogVocabulary() {
        let config = GPTConfig(vocabularySize: 65, contextLength: 16, layers: 2, heads: 2, width: 32)
        let model = GPT(config: config, maxBatch: 4)
        model.initialize(seed: 7)
        let tokens = randomTokens(64, vocabulary: 65, seed: 8), targets = randomTokens(64, vocabulary: 65, seed: 9)
        let r = model.forward(tokens: tokens, targets: targets, batch: 4, time: 16)
        let mean = r.sum / Double(r.count)
        print("loss at initialisation \(mean), ln(65) = \(log(65.0))")
        #expect(abs(mean - log(65.0)) < 0.05)
    }

    @Test func layoutIsLayerMajorWithHuggingFaceNames() {
        let layout = GPT.layout(Self.tiny)
        #expect(layout.tensors.first?.name == "wte.weight")
        #expect(layout.spec("h.0.attn.c_attn.weight")?.shape == [8, 24])
        #expect(layout.spec("h.1.mlp.c_proj.weight")?.shape == [32, 8])
        #expect(layout.groups.count == 3)   // embeddings, h.0, h.1+ln_f
        // Groups tile the buffer and every block's tensors sit inside its group.
        #expect(layout.groups.map(\.range.count).reduce(0, +) == layout.count)
        let h0 = layout.groups[1].range
        for t in layout.tensors where t.name.hasPrefix("h.0.") { #expect(h0.contains(t.offset) && t.range.upperBound <= h0.upperBound) }
        // Decay on matrices only: not biases, LayerNorm or the position table.
        #expect(layout.spec("wpe.weight")?.decay == false && layout.spec("wte.weight")?.decay == true)
        #expect(layout.tensors.filter(\.decay).allSatisfy { $0.shape.count == 2 })
        #expect(layout.tensors.filter { $0.name.hasSuffix("bias") || $0.name.contains("ln_") }.allSatisfy { !$0.decay })
    }

    @Test func cachedDecodingMatchesFullForward() {
        let config = GPTConfig(vocabularySize: 11, contextLength: 6, layers: 2, heads: 2, width: 8)
        let model = GPT(config: config, maxBatch: 1)
        model.initialize(seed: 5)
        let noise = randomFloats(model.parameters.count, seed: 6, scale: 0.3)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += noise[i] }
        let tokens = randomTokens(6, vocabulary: 11, seed: 7)
        model.forward(tokens: tokens, targets: nil, batch: 1, time: 6)
        let full = Array(UnsafeBufferPointer(start: model.logits, count: 6 * 11))
        let decoder = GPTDecoder(model: model)
        var worst: Float = 0
        for t in 0..<6 {
            let step = decoder.step(token: tokens[t])
            for v in 0..<11 { worst = max(worst, abs(step[v] - full[t * 11 + v])) }
        }
        #expect(worst < 1e-4, "largest logit difference \(worst)")
    }

    @Test func samplingIsReproducibleBySeed() throws {
        let config = GPTConfig(vocabularySize: 11, contextLength: 8, layers: 1, heads: 2, width: 8)
        let model = GPT(config: config, maxBatch: 1)
        model.initialize(seed: 5)
        let noise = randomFloats(model.parameters.count, seed: 6, scale: 0.5)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += noise[i] }
        func sample(seed: UInt64) throws -> [Int32] {
            var s = Sampler(model: model, temperature: 1, topK: 5, seed: seed)
            var out: [Int32] = []
            try s.generate(prompt: [1, 2], count: 20) { out.append($0) }   // runs past the context
            return out
        }
        #expect(try sample(seed: 1) == sample(seed: 1))
        #expect(try sample(seed: 1) != sample(seed: 2))
    }
}
