// GPTDecoder: incremental decoding for sampling — one new position at a time against a key/value
// cache, so each token costs one position instead of a re-run of the prefix. It keeps no
// gradients and reads the parameters of a GPT through its blocks' cached steps.
import Kernels

public final class GPTDecoder {
    public let model: GPT
    /// Positions already in the cache.
    public private(set) var position = 0
    private let caches: [Slot]              // per layer (1, maxT, 2C): keys then values
    private let logitsBuffer: Slot          // (V)
    private let scratch: StepScratch
    private let storage: FlatBuffer

    public init(model: GPT) {
        self.model = model
        let c = model.config, T = c.contextLength, C = c.width
        var b = ModelBuilder()
        caches = (0..<c.layers).map { _ in b.buffer(T * 2 * C) }
        logitsBuffer = b.buffer(c.vocabularySize)
        scratch = StepScratch(&b, rows: 1, width: C, hidden: 4 * C, heads: c.heads, positions: T)
        storage = FlatBuffer(count: b.activationCount)
    }

    /// Forgets the cached prefix.
    public func reset() { position = 0 }

    /// Feeds `token` at the next position and returns the logits (V) for the position after it.
    public func step(token: Int32) -> UnsafePointer<Float> {
        let c = model.config, C = c.width, plan = model.plan, t = position
        precondition(t < c.contextLength, "GPTDecoder: context of \(c.contextLength) positions is full")
        let s = DecodeStep(p: Weights(base: model.parameters.pointer), a: Buffers(base: storage.pointer), scratch: scratch,
                           rows: 1, position: t, positions: c.contextLength, width: C, heads: c.heads,
                           epsilon: c.layerNormEpsilon)
        let x = s.a[scratch.x], wte = s.p[plan.wte], wpe = s.p[plan.wpe]
        for i in 0..<C { x[i] = wte[Int(token) * C + i] + wpe[t * C + i] }
        for (block, cache) in zip(plan.blocks, caches) { block.step(cache: s.a[cache], s) }
        let y = plan.finalNorm.step(s)
        Gemm.serial(transB: true, m: 1, n: c.vocabularySize, k: C, a: y, lda: C, b: wte, ldb: C,
                    beta: 0, c: s.a[logitsBuffer], ldc: c.vocabularySize)
        position += 1
        return UnsafePointer(s.a[logitsBuffer])
    }
}
