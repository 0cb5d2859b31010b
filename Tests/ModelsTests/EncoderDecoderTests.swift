// EncoderDecoder: whole-model gradient checks (post-LN and pre-LN, with and without dropout, with
// source padding and padded targets), loss at initialisation, padding invariance and the layout.
import Testing
import Foundation
import Kernels
import Models
import TestSupport
import MallocCounter
import Support

/// A padded batch: B pairs, sources of `sourceLengths` tokens padded to S, targets padded to T
/// (output ids −1 beyond each target's length). `padding` is the id written into padded slots.
struct PairBatch {
    var source: [Int32], sourceLengths: [Int32], targetInput: [Int32], targetOutput: [Int32]
    let B: Int, S: Int, T: Int

    init(sourceLengths: [Int], targetLengths: [Int], S: Int, T: Int, vocabulary V: Int, seed: UInt64, padding: (Int) -> Int32) {
        B = sourceLengths.count; self.S = S; self.T = T
        let key = CounterRandom.key(seed, 5)
        func draw(_ i: Int) -> Int32 { Int32(CounterRandom.below(V, key: key, counter: UInt64(i))) }
        source = []; targetInput = []; targetOutput = []
        self.sourceLengths = sourceLengths.map(Int32.init)
        for b in 0..<B {
            for s in 0..<S { source.append(s < sourceLengths[b] ? draw(b * 100 + s) : padding(b * 100 + s)) }
            for t in 0..<T {
                let inside = t < targetLengths[b]
                targetInput.append(inside ? draw(10_000 + b * 100 + t) : padding(10_000 + b * 100 + t))
                targetOutput.append(inside ? draw(20_000 + b * 100 + t) : -1)
            }
        }
    }

    @discardableResult
    func forward(_ m: EncoderDecoder, smoothing: Float = 0, dropout: DropoutStream? = nil) -> (sum: Double, count: Int) {
        m.forward(source: source, sourceLengths: sourceLengths, targetInput: targetInput, targetOutput: targetOutput,
                  batch: B, sourceLength: S, targetLength: T, labelSmoothing: smoothing, dropout: dropout)
    }
}

@Suite struct EncoderDecoderTests {
    static func tiny(preNorm: Bool, dropout: Float = 0) -> EncoderDecoderConfig {
        EncoderDecoderConfig(vocabularySize: 11, maxLength: 6, encoderLayers: 2, decoderLayers: 2, width: 8, heads: 2,
                             ffnWidth: 12, dropout: dropout, attentionDropout: dropout / 2, normPlacement: preNorm ? .pre : .post)
    }

    static func noisyModel(_ config: EncoderDecoderConfig, batch: Int, seed: UInt64) -> EncoderDecoder {
        let model = EncoderDecoder(config: config, maxBatch: batch)
        model.initialize(seed: seed)
        // Perturb everything (LayerNorm scales and biases too) so every path carries signal.
        let noise = randomFloats(model.parameters.count, seed: seed + 1, scale: 0.3)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += noise[i] }
        return model
    }

    @Test(arguments: [(false, Float(0)), (false, Float(0.2)), (true, Float(0)), (true, Float(0.2))])
    func wholeModelGradientCheck(preNorm: Bool, dropout: Float) {
        let config = Self.tiny(preNorm: preNorm, dropout: dropout)
        let model = Self.noisyModel(config, batch: 3, seed: 1)
        // Different source lengths (one full), padded targets.
        let batch = PairBatch(sourceLengths: [5, 3, 1], targetLengths: [4, 2, 3], S: 5, T: 4, vocabulary: 11, seed: 3) { _ in 0 }
        let stream = dropout > 0 ? DropoutStream(key: 99, firstExample: 2) : nil
        func loss() -> Double { batch.forward(model, smoothing: 0.1, dropout: stream).sum }
        let counted = batch.forward(model, smoothing: 0.1, dropout: stream).count
        #expect(counted == 9)
        model.backward(scale: 1)
        let analytic = Array(model.gradients.buffer)
        var indices: [Int] = []
        for t in model.layout.tensors { indices += sampleIndices(t.count, limit: 5, seed: UInt64(t.offset)).map { $0 + t.offset } }
        let r = kinkTolerantGradCheck(values: model.parameters.pointer, analytic: analytic, indices: indices, loss: loss)
        print("EncoderDecoder gradient check (preNorm \(preNorm), dropout \(dropout)): \(r)")
        #expect(r.worstRelativeError < 5e-2, "\(r)")
        // Every tensor receives gradient (no path is silently cut).
        for t in model.layout.tensors {
            #expect(analytic[t.range].contains { $0 != 0 }, "\(t.name) has no gradient")
        }
    }

    @Test(arguments: [false, true])
    func paddingDoesNotChangeLossOrGradients(preNorm: Bool) {
        let model = Self.noisyModel(Self.tiny(preNorm: preNorm, dropout: 0.1), batch: 3, seed: 4)
        let stream = DropoutStream(key: 7, firstExample: 0)
        func run(padding: @escaping (Int) -> Int32) -> (Double, [Float]) {
            let batch = PairBatch(sourceLengths: [6, 2, 4], targetLengths: [5, 6, 1], S: 6, T: 6, vocabulary: 11, seed: 5,
                                  padding: padding)
            VectorOps.zero(model.gradients.pointer, count: model.gradients.count)
            let loss = batch.forward(model, smoothing: 0.1, dropout: stream).sum
            model.backward(scale: 0.5)
            return (loss, Array(model.gradients.buffer))
        }
        let (l0, g0) = run { _ in 0 }
        let (l1, g1) = run { i in Int32(1 + i % 10) }
        #expect(l0 == l1)
        #expect(g0 == g1)
        // …while a token inside a sequence does change them.
        let batch = PairBatch(sourceLengths: [6, 2, 4], targetLengths: [5, 6, 1], S: 6, T: 6, vocabulary: 11, seed: 5) { _ in 0 }
        var changed = batch
        changed.source[6 + 1] = (changed.source[6 + 1] + 1) % 11
        #expect(batch.forward(model, dropout: stream).sum != changed.forward(model, dropout: stream).sum)
    }

    @Test(arguments: [false, true])
    func lossAtInitialisationIsLogVocabulary(preNorm: Bool) {
        let V = 1000
        let config = EncoderDecoderConfig(vocabularySize: V, maxLength: 12, encoderLayers: 2, decoderLayers: 2, width: 32,
                                          heads: 4, ffnWidth: 64, normPlacement: preNorm ? .pre : .post)
        let model = EncoderDecoder(config: config, maxBatch: 4)
        model.initialize(seed: 7)
        let batch = PairBatch(sourceLengths: [12, 7, 9, 3], targetLengths: [12, 10, 4, 11], S: 12, T: 12, vocabulary: V, seed: 8) { _ in 0 }
        let r = batch.forward(model)
        let mean = r.sum / Double(r.count)
        print("encoder-decoder loss at initialisation \(mean), ln(\(V)) = \(log(Double(V)))")
        #expect(abs(mean - log(Double(V))) < 0.1)
    }

    @Test func layoutGroupsAndNames() {
        for preNorm in [false, true] {
            let c = Self.tiny(preNorm: preNorm)
            let layout = EncoderDecoder.layout(c)
            #expect(layout.tensors.first?.name == "embedding.weight")
            #expect(layout.groups.map(\.name) == ["embedding", "encoder.layers.0", "encoder.layers.1", "decoder.layers.0", "decoder.layers.1"])
            #expect(layout.groups.map(\.range.count).reduce(0, +) == layout.count)
            #expect(layout.spec("decoder.layers.1.encoder_attn.kv_proj.weight")?.shape == [8, 16])
            #expect(layout.spec("encoder.layers.0.fc1.weight")?.shape == [8, 12])
            #expect((layout.spec("encoder.layer_norm.weight") != nil) == preNorm)
            #expect((layout.spec("decoder.layer_norm.bias") != nil) == preNorm)
            // Each block's tensors sit inside its group.
            for (name, range) in layout.groups.dropFirst() {
                for t in layout.tensors where t.name.hasPrefix(name + ".") {
                    #expect(range.contains(t.offset) && t.range.upperBound <= range.upperBound, "\(t.name)")
                }
            }
            #expect(layout.tensors.filter(\.decay).allSatisfy { $0.shape.count == 2 })
        }
    }

    /// Backward reports groups in reverse layout order (decoder, encoder, embedding), each after its
    /// gradient is complete, with progress calls in between.
    @Test func groupsAreReportedDecoderFirstThenEncoderThenEmbedding() {
        let model = Self.noisyModel(Self.tiny(preNorm: true), batch: 2, seed: 9)
        let batch = PairBatch(sourceLengths: [4, 2], targetLengths: [3, 4], S: 4, T: 4, vocabulary: 11, seed: 10) { _ in 0 }
        batch.forward(model)
        var order: [Int] = [], progress = 0
        var snapshots: [Int: [Float]] = [:]
        model.onGroupReady = { g in
            order.append(g)
            snapshots[g] = Array(model.gradients.buffer[model.layout.groups[g].range])
        }
        model.onBackwardProgress = { progress += 1 }
        model.backward(scale: 1)
        #expect(order == [4, 3, 2, 1, 0])
        #expect(progress > 10)
        for (g, values) in snapshots {
            #expect(values == Array(model.gradients.buffer[model.layout.groups[g].range]), "group \(g) changed after it was reported")
        }
    }
}

/// Forward and backward allocate nothing after construction (the counter sees every thread, so a
/// test running alongside may add allocations: the best of several attempts must be zero).
@Suite struct EncoderDecoderAllocationTests {
    @Test(arguments: [false, true])
    func stepsAreAllocationFree(preNorm: Bool) {
        let model = EncoderDecoderTests.noisyModel(EncoderDecoderTests.tiny(preNorm: preNorm, dropout: 0.1), batch: 3, seed: 2)
        let batch = PairBatch(sourceLengths: [5, 3, 1], targetLengths: [4, 2, 3], S: 5, T: 4, vocabulary: 11, seed: 3) { _ in 0 }
        let stream = DropoutStream(key: 1, firstExample: 0)
        var progress = 0, groups = 0
        model.onBackwardProgress = { progress += 1 }
        model.onGroupReady = { _ in groups += 1 }
        batch.source.withUnsafeBufferPointer { source in
            batch.sourceLengths.withUnsafeBufferPointer { lengths in
                batch.targetInput.withUnsafeBufferPointer { input in
                    batch.targetOutput.withUnsafeBufferPointer { output in
                        func step() {
                            model.forward(source: source.baseAddress!, sourceLengths: lengths.baseAddress!, targetInput: input.baseAddress!,
                                          targetOutput: output.baseAddress!, batch: 3, sourceLength: 5, targetLength: 4,
                                          labelSmoothing: 0.1, dropout: stream)
                            model.backward(scale: 0.1)
                        }
                        step()
                        let fewest = fewestAllocations { step(); step() }
                        #expect(fewest == 0, "\(fewest) heap allocations in two training steps")
                    }
                }
            }
        }
        #expect(groups > 0 && progress > 0)
        // The counter works in this process: a fresh array is seen.
        let before = loom_malloc_count()
        let array = [Int](repeating: groups, count: 1000 + progress)
        withExtendedLifetime(array) { #expect(loom_malloc_count() > before) }
    }
}
