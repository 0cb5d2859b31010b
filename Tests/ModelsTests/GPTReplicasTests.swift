// GPTReplicas: thread replicas give what one model gives on the whole micro-batch — loss,
// gradients and dropout masks, to rounding — run the model's hooks only once the gradients are
// summed, leave their own gradients zero for the next micro-batch, and allocate nothing per step.
import Testing
import Kernels
import Models
import TestSupport
import Support

@Suite struct GPTReplicasTests {
    static let config = GPTConfig(vocabularySize: 11, contextLength: 8, layers: 2, heads: 2, width: 16)

    func tokens(_ n: Int, seed: UInt64) -> [Int32] {
        let key = CounterRandom.key(seed, 5)
        return (0..<n).map { Int32(CounterRandom.below(11, key: key, counter: UInt64($0))) }
    }

    @Test(arguments: [(2, Float(0)), (3, Float(0.2)), (2, Float(0.2))])
    func matchOneModelOnTheWholeBatch(replicas R: Int, dropout: Float) {
        ThreadPool.configure(threads: 2)
        var config = Self.config
        config.dropout = dropout
        let b = 2, B = R * b, T = 8
        let whole = GPT(config: config, maxBatch: B)
        whole.initialize(seed: 3)
        let noise = randomFloats(whole.parameters.count, seed: 4, scale: 0.2)
        for i in 0..<whole.parameters.count { whole.parameters.pointer[i] += noise[i] }
        let primary = GPT(config: config, maxBatch: b)
        primary.parameters.copy(from: whole.parameters)
        let replicas = GPTReplicas(primary: primary, count: R)
        #expect(replicas.count == R && replicas.batchPerReplica == b)

        var groupsSeen: [Int] = [], gradientAtHook: [Float] = []
        primary.onGroupReady = { group in
            groupsSeen.append(group)
            if group == 0 { gradientAtHook = Array(primary.gradients.buffer) }
        }
        let x = tokens(B * T, seed: 1), y = tokens(B * T, seed: 2)
        let stream = DropoutStream(key: 77, firstExample: 5)
        let scale = Float(1) / Float(B * T)
        // Two micro-batches accumulate, as the trainer runs them.
        var expected = (sum: 0.0, count: 0), got = (sum: 0.0, count: 0)
        for _ in 0..<2 {
            let w = whole.forward(tokens: x, targets: y, batch: B, time: T, dropout: stream)
            whole.backward(tokens: x, targets: y, scale: scale)
            expected = (expected.sum + w.sum, expected.count + w.count)
            let r = replicas.trainMicroBatch(tokens: x, targets: y, time: T, dropout: stream, scale: scale)
            got = (got.sum + r.sum, got.count + r.count)
        }
        #expect(got.count == expected.count)
        #expect(abs(got.sum - expected.sum) < 1e-4 * abs(expected.sum), "loss \(got.sum) vs \(expected.sum)")
        var worst: Float = 0, largest: Float = 0
        for i in 0..<whole.gradients.count {
            worst = max(worst, abs(primary.gradients.pointer[i] - whole.gradients.pointer[i]))
            largest = max(largest, abs(whole.gradients.pointer[i]))
        }
        print("replicas \(R), dropout \(dropout): worst gradient difference \(worst) (largest gradient \(largest))")
        #expect(largest > 0 && worst <= 1e-5 * largest, "worst \(worst), largest \(largest)")
        // Hooks: every group, last to first, each micro-batch, after the sum.
        let groups = primary.layout.groups.count
        #expect(groupsSeen == Array(stride(from: groups - 1, through: 0, by: -1)) + Array(stride(from: groups - 1, through: 0, by: -1)))
        #expect(gradientAtHook == Array(primary.gradients.buffer))
        // The evaluation forward agrees too.
        let e = replicas.evaluate(tokens: x, targets: y, time: T)
        let f = whole.forward(tokens: x, targets: y, batch: B, time: T)
        #expect(abs(e.sum - f.sum) < 1e-4 * abs(f.sum) && e.count == f.count)
    }

    @Test func noAllocationPerMicroBatch() {
        ThreadPool.configure(threads: 2)
        let primary = GPT(config: Self.config, maxBatch: 2)
        primary.initialize(seed: 1)
        let replicas = GPTReplicas(primary: primary, count: 2)
        primary.onGroupReady = { _ in }
        let x = tokens(32, seed: 1), y = tokens(32, seed: 2)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                let stream = DropoutStream(key: 1, firstExample: 0)
                _ = replicas.trainMicroBatch(tokens: xp.baseAddress!, targets: yp.baseAddress!, time: 8, dropout: stream, scale: 0.01)
                let fewest = fewestAllocations {
                    _ = replicas.trainMicroBatch(tokens: xp.baseAddress!, targets: yp.baseAddress!, time: 8, dropout: stream, scale: 0.01)
                }
                #expect(fewest == 0, "\(fewest) heap allocations in a micro-batch")
            }
        }
    }
}
