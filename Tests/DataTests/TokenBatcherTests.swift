// TokenBatcher: every pair exactly once, padded size within the budget, length-homogeneous
// batches, determinism by seed and epoch, and the error for a pair longer than the budget.
import Testing
import Data
import Support

@Suite struct TokenBatcherTests {
    func lengths(_ n: Int, seed: UInt64) -> ([Int], [Int]) {
        let key = CounterRandom.key(seed)
        let s = (0..<n).map { 1 + CounterRandom.below(60, key: key, counter: UInt64(2 * $0)) }
        let t = s.enumerated().map { max(1, $1 + CounterRandom.below(11, key: key, counter: UInt64(2 * $0 + 1)) - 5) }
        return (s, t)
    }

    @Test func coversEveryPairOnceWithinTheBudget() throws {
        let (s, t) = lengths(2000, seed: 1)
        let batches = try TokenBatcher.batches(sourceLengths: s, targetLengths: t, maxTokens: 500, seed: 7)
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<2000))
        for b in batches {
            let m = b.map { max(s[$0], t[$0]) }.max()!
            #expect(b.count * m <= 500)
        }
        // Sorted by length, batches are nearly full and homogeneous: little padding overall.
        let real = batches.flatMap { $0 }.map { max(s[$0], t[$0]) }.reduce(0, +)
        let padded = batches.map { b in b.count * b.map { max(s[$0], t[$0]) }.max()! }.reduce(0, +)
        #expect(Double(real) / Double(padded) > 0.9, "padding efficiency \(Double(real) / Double(padded))")
        #expect(Double(padded) / Double(batches.count) > 400)
        // maxSentences caps the count.
        let capped = try TokenBatcher.batches(sourceLengths: s, targetLengths: t, maxTokens: 500, maxSentences: 8, seed: 7)
        #expect(capped.allSatisfy { $0.count <= 8 } && capped.flatMap { $0 }.count == 2000)
    }

    @Test func deterministicBySeedAndEpoch() throws {
        let (s, t) = lengths(300, seed: 2)
        func run(_ seed: UInt64, _ epoch: Int) throws -> [[Int]] {
            try TokenBatcher.batches(sourceLengths: s, targetLengths: t, maxTokens: 256, seed: seed, epoch: epoch)
        }
        #expect(try run(3, 0) == run(3, 0))
        #expect(try run(3, 0) != run(3, 1))
        #expect(try run(3, 0) != run(4, 0))
        // The order of batches changes between epochs, their number does not.
        #expect(try run(3, 0).count == run(3, 1).count)
    }

    @Test func epochsReorderTheSameBatchesInPlace() throws {
        let (s, t) = lengths(500, seed: 5)
        let sorted = try TokenBatcher.sortedBatches(sourceLengths: s, targetLengths: t, maxTokens: 300, seed: 9)
        var order = Array(sorted.indices)           // one buffer reused across epochs, as the trainer does
        for epoch in [0, 1, 2, 7] {
            TokenBatcher.epochOrder(&order, seed: 9, epoch: epoch)
            #expect(order.sorted() == Array(sorted.indices), "a permutation of the batches")
            let expected = try TokenBatcher.batches(sourceLengths: s, targetLengths: t, maxTokens: 300, seed: 9, epoch: epoch)
            #expect(order.map { sorted[$0] } == expected, "epoch \(epoch)")
        }
    }

    @Test func pairLongerThanTheBudgetIsAnError() {
        #expect(throws: TokenBatcher.PairTooLong.self) {
            try TokenBatcher.batches(sourceLengths: [3, 90, 4], targetLengths: [3, 2, 4], maxTokens: 64, seed: 1)
        }
        do { _ = try TokenBatcher.batches(sourceLengths: [3, 90], targetLengths: [3, 2], maxTokens: 64, seed: 1) } catch {
            #expect("\(error)".contains("pair 1 has 90 tokens"))
        }
    }
}
