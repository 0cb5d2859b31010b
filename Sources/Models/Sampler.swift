// Sampler: turns next-token distributions into text — temperature, top-k, counter-based draws so
// the same seed gives the same tokens — on top of GPTDecoder's cache.
import Kernels
import Support

public struct Sampler {
    public let decoder: GPTDecoder
    public var temperature: Float
    public var topK: Int
    public var seed: UInt64
    private var history: [Int32] = []
    private var scratch: [Float]

    public init(model: GPT, temperature: Float, topK: Int, seed: UInt64) {
        decoder = GPTDecoder(model: model)
        self.temperature = temperature; self.topK = topK; self.seed = seed
        scratch = [Float](repeating: 0, count: model.config.vocabularySize)
    }

    /// Feeds `prompt`, then generates `count` tokens, passing each to `emit` as soon as it is drawn.
    /// When the context is full the cache is rebuilt from the most recent half of the context.
    public mutating func generate(prompt: [Int32], count: Int, emit: (Int32) -> Void) throws {
        let T = decoder.model.config.contextLength
        history = prompt.isEmpty ? [0] : prompt
        decoder.reset()
        var logits: UnsafePointer<Float>?
        for token in history.suffix(T) { logits = decoder.step(token: token) }
        let key = CounterRandom.key(seed, 0x5A)
        for i in 0..<count {
            let next = choose(logits!, draw: CounterRandom.uniform(key: key, counter: UInt64(i)))
            emit(next)
            history.append(next)
            if decoder.position == T {
                decoder.reset()
                for token in history.suffix(T / 2) { logits = decoder.step(token: token) }
            } else {
                logits = decoder.step(token: next)
            }
        }
    }

    /// The token for one distribution: argmax at temperature 0, else a draw from the tempered,
    /// top-k-truncated softmax at the uniform `draw`.
    public mutating func choose(_ logits: UnsafePointer<Float>, draw: Float) -> Int32 {
        let V = scratch.count
        if temperature == 0 {
            var best = 0
            for v in 1..<V where logits[v] > logits[best] { best = v }
            return Int32(best)
        }
        for v in 0..<V { scratch[v] = logits[v] / temperature }
        if topK > 0 && topK < V {
            let threshold = scratch.sorted(by: >)[topK - 1]
            for v in 0..<V where scratch[v] < threshold { scratch[v] = -.infinity }
        }
        scratch.withUnsafeMutableBufferPointer { Softmax.row($0.baseAddress!, count: V) }
        var cumulative: Float = 0
        for v in 0..<V {
            cumulative += scratch[v]
            if draw < cumulative { return Int32(v) }
        }
        return Int32(scratch.lastIndex { $0 > 0 } ?? V - 1)
    }
}
