// Mixed precision: GPT and the encoder-decoder in bf16 track their fp32 selves (loss to ~1 %,
// gradients pointing the same way), actually round (results differ from fp32), read the weights'
// bf16 copy only as refreshed, and thread replicas in bf16 match one bf16 model.
import Testing
import Kernels
import Models
import TestSupport
import Support

@Suite struct MixedPrecisionTests {
    static let gpt = GPTConfig(vocabularySize: 13, contextLength: 8, layers: 2, heads: 2, width: 32)

    func tokens(_ n: Int, vocabulary: Int, seed: UInt64) -> [Int32] {
        let key = CounterRandom.key(seed, 5)
        return (0..<n).map { Int32(CounterRandom.below(vocabulary, key: key, counter: UInt64($0))) }
    }

    /// cos(a, b) in double precision.
    func cosine(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in a.indices { ab += Double(a[i]) * Double(b[i]); aa += Double(a[i]) * Double(a[i]); bb += Double(b[i]) * Double(b[i]) }
        return ab / (aa * bb).squareRoot()
    }

    func noisy(_ model: TrainableModel, seed: UInt64) {
        model.initialize(seed: seed)
        let noise = randomFloats(model.parameters.count, seed: seed + 1, scale: 0.1)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += noise[i] }
        model.parametersDidChange()
    }

    @Test func gptInBF16TracksFP32() {
        ThreadPool.configure(threads: 2)
        let B = 4, T = 8
        let fp32 = GPT(config: Self.gpt, maxBatch: B), bf16 = GPT(config: Self.gpt, maxBatch: B, precision: .bf16)
        #expect(bf16.precision == .bf16 && fp32.precision == .fp32)
        noisy(fp32, seed: 3); noisy(bf16, seed: 3)
        let x = tokens(B * T, vocabulary: 13, seed: 1), y = tokens(B * T, vocabulary: 13, seed: 2)
        let a = fp32.forward(tokens: x, targets: y, batch: B, time: T)
        fp32.backward(tokens: x, targets: y, scale: 1 / Float(B * T))
        let b = bf16.forward(tokens: x, targets: y, batch: B, time: T)
        bf16.backward(tokens: x, targets: y, scale: 1 / Float(B * T))
        #expect(a.count == b.count)
        #expect(a.sum != b.sum, "bf16 products must round")
        #expect(abs(a.sum - b.sum) / a.sum < 0.01, "loss fp32 \(a.sum) bf16 \(b.sum)")
        let c = cosine(UnsafeBufferPointer(fp32.gradients.buffer), UnsafeBufferPointer(bf16.gradients.buffer))
        #expect(c > 0.999, "gradient cosine \(c)")
        #expect(bf16.activationBytes > fp32.activationBytes + 2 * bf16.parameters.count - 1)
    }

    @Test func bf16ReadsTheWeightsAsLastRefreshed() {
        ThreadPool.configure(threads: 2)
        let B = 2, T = 8
        let model = GPT(config: Self.gpt, maxBatch: B, precision: .bf16)
        noisy(model, seed: 5)
        let x = tokens(B * T, vocabulary: 13, seed: 1), y = tokens(B * T, vocabulary: 13, seed: 2)
        let before = model.forward(tokens: x, targets: y, batch: B, time: T).sum
        let qkv = model.layout.spec("h.0.attn.c_attn.weight")!
        for i in 0..<qkv.count { model.parameters.pointer[qkv.offset + i] *= 1.5 }
        #expect(model.forward(tokens: x, targets: y, batch: B, time: T).sum == before, "stale until refreshed")
        model.parametersDidChange()
        #expect(model.forward(tokens: x, targets: y, batch: B, time: T).sum != before)
    }

    @Test func replicasInBF16MatchOneBF16Model() {
        ThreadPool.configure(threads: 2)
        let b = 2, B = 2 * b, T = 8
        let whole = GPT(config: Self.gpt, maxBatch: B, precision: .bf16)
        noisy(whole, seed: 7)
        let primary = GPT(config: Self.gpt, maxBatch: b, precision: .bf16)
        primary.parameters.copy(from: whole.parameters)
        primary.parametersDidChange()
        let replicas = GPTReplicas(primary: primary, count: 2)
        let x = tokens(B * T, vocabulary: 13, seed: 1), y = tokens(B * T, vocabulary: 13, seed: 2)
        let scale = 1 / Float(B * T)
        let w = whole.forward(tokens: x, targets: y, batch: B, time: T)
        whole.backward(tokens: x, targets: y, scale: scale)
        let r = replicas.trainMicroBatch(tokens: x, targets: y, time: T, dropout: DropoutStream(key: 1, firstExample: 0),
                                         scale: scale)
        #expect(abs(w.sum - r.sum) <= 1e-5 * abs(w.sum), "\(w.sum) vs \(r.sum)")
        let c = cosine(UnsafeBufferPointer(whole.gradients.buffer), UnsafeBufferPointer(primary.gradients.buffer))
        #expect(c > 0.999_999, "gradient cosine \(c)")
    }

    @Test(arguments: [false, true])
    func encoderDecoderInBF16TracksFP32(preNorm: Bool) {
        ThreadPool.configure(threads: 2)
        let config = EncoderDecoderConfig(vocabularySize: 17, maxLength: 6, encoderLayers: 2, decoderLayers: 2, width: 16,
                                          heads: 2, ffnWidth: 24, normPlacement: preNorm ? .pre : .post)
        let fp32 = EncoderDecoder(config: config, maxBatch: 3), bf16 = EncoderDecoder(config: config, maxBatch: 3, precision: .bf16)
        noisy(fp32, seed: 11); noisy(bf16, seed: 11)
        let batch = PairBatch(sourceLengths: [5, 3, 1], targetLengths: [4, 2, 3], S: 5, T: 4, vocabulary: 17, seed: 3) { _ in 0 }
        let a = batch.forward(fp32, smoothing: 0.1)
        fp32.backward(scale: 0.1)
        let b = batch.forward(bf16, smoothing: 0.1)
        bf16.backward(scale: 0.1)
        #expect(a.sum != b.sum, "bf16 products must round")
        #expect(abs(a.sum - b.sum) / a.sum < 0.01, "loss fp32 \(a.sum) bf16 \(b.sum)")
        let c = cosine(UnsafeBufferPointer(fp32.gradients.buffer), UnsafeBufferPointer(bf16.gradients.buffer))
        #expect(c > 0.999, "gradient cosine \(c)")
    }
}
