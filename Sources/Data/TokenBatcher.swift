// TokenBatcher: fairseq-style "max tokens" batching of sentence pairs — pairs sorted by length so
// each batch holds similar lengths, batches filled while their padded size (sentences × longest
// side) stays within a token budget, then the batch order shuffled by a seed. It returns pair
// indices; the task gathers the tokens.
import Support

public enum TokenBatcher {
    public struct PairTooLong: Error, CustomStringConvertible {
        public let pair: Int, length: Int, maxTokens: Int
        public var description: String {
            "pair \(pair) has \(length) tokens on its longer side, more than max_tokens \(maxTokens); raise max_tokens or drop long pairs"
        }
    }

    /// Batches of pair indices. A pair's size is max(source, target) length; a batch of n pairs
    /// with largest size m costs n·m ≤ `maxTokens` (and n ≤ `maxSentences` if given). Pairs are
    /// shuffled by `seed` (so equal lengths mix), stably sorted by size, cut into batches in that
    /// order, and the batches shuffled by (`seed`, `epoch`). Deterministic: same inputs, same batches.
    public static func batches(sourceLengths: [Int], targetLengths: [Int], maxTokens: Int, maxSentences: Int? = nil,
                               seed: UInt64, epoch: Int = 0) throws -> [[Int]] {
        let sorted = try sortedBatches(sourceLengths: sourceLengths, targetLengths: targetLengths,
                                       maxTokens: maxTokens, maxSentences: maxSentences, seed: seed)
        var order = [Int](repeating: 0, count: sorted.count)
        epochOrder(&order, seed: seed, epoch: epoch)
        return order.map { sorted[$0] }
    }

    /// The batches before the epoch's shuffle, in length order. Their contents are the same in
    /// every epoch (as fairseq's); only their order changes (`epochOrder`).
    public static func sortedBatches(sourceLengths: [Int], targetLengths: [Int], maxTokens: Int, maxSentences: Int? = nil,
                                     seed: UInt64) throws -> [[Int]] {
        precondition(sourceLengths.count == targetLengths.count, "TokenBatcher: one target length per source length")
        precondition(maxTokens > 0 && (maxSentences ?? 1) > 0, "TokenBatcher: max tokens and sentences must be positive")
        let sizes = zip(sourceLengths, targetLengths).map { max($0, $1) }
        if let i = sizes.firstIndex(where: { $0 > maxTokens }) { throw PairTooLong(pair: i, length: sizes[i], maxTokens: maxTokens) }
        var order = shuffled(Array(sizes.indices), key: CounterRandom.key(seed, 0xBA7C))
        order.sort { sizes[$0] < sizes[$1] }   // Swift's sort is stable: the shuffle breaks ties
        var batches: [[Int]] = [], current: [Int] = [], longest = 0
        for i in order {
            let m = max(longest, sizes[i])
            if !current.isEmpty && ((current.count + 1) * m > maxTokens || current.count == maxSentences) {
                batches.append(current); current = []; longest = 0
            }
            current.append(i); longest = max(longest, sizes[i])
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// Epoch `epoch`'s batch order, written over `order` (one slot per batch): 0..<n shuffled by
    /// (`seed`, `epoch`). Allocates nothing, so the trainer can reorder at an epoch boundary
    /// inside the step loop.
    public static func epochOrder(_ order: inout [Int], seed: UInt64, epoch: Int) {
        let key = CounterRandom.key(seed, 0xBA7C, UInt64(epoch) &+ 1)
        order.withUnsafeMutableBufferPointer { a in
            for i in a.indices { a[i] = i }
            for i in stride(from: a.count - 1, to: 0, by: -1) {
                a.swapAt(i, CounterRandom.below(i + 1, key: key, counter: UInt64(i)))
            }
        }
    }

    /// Fisher–Yates with counter-based draws.
    static func shuffled<T>(_ items: [T], key: UInt64) -> [T] {
        var a = items
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, CounterRandom.below(i + 1, key: key, counter: UInt64(i)))
        }
        return a
    }
}
