// BPETrainer: learns byte-level BPE merges from text — counts pre-tokenised words once, then merges
// the most frequent adjacent pair, updating pair counts only in the words that hold it.
import Foundation

public struct BPETrainer {
    /// Unique pre-tokenised words and their counts.
    private let table = ByteKeyTable(capacity: 1 << 16)
    private var counts: [Int] = []
    public private(set) var bytesRead = 0
    /// Special tokens: their occurrences in the text are cut out before counting, as the encoder
    /// matches them before pre-tokenising.
    public let specials: [[UInt8]]

    public init(specials: [String] = []) { self.specials = specials.map { Array($0.utf8) }.filter { !$0.isEmpty } }

    /// Counts the words of `bytes` (any bytes; pieces as ByteLevel.split cuts them).
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        bytesRead += bytes.count
        guard let base = bytes.baseAddress else { return }
        var position = 0
        while position < bytes.count {
            var best = bytes.count, length = 0
            for s in specials {
                let found = s.withUnsafeBytes { findBytes(base, from: position, to: bytes.count, $0.baseAddress!, $0.count) }
                if found >= 0 && (found < best || (found == best && s.count > length)) { best = found; length = s.count }
            }
            count(UnsafeRawBufferPointer(rebasing: bytes[position ..< best]))
            position = best + length
        }
    }

    private mutating func count(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        let table = self.table
        ByteLevel.split(bytes) { start, end in
            let (i, inserted) = table.findOrInsert(base + start, end - start)
            if inserted { counts.append(1) } else { counts[i] += 1 }
        }
    }

    public mutating func add(_ bytes: [UInt8]) { bytes.withUnsafeBytes { add($0) } }

    public var uniqueWords: Int { counts.count }

    /// Learns merges until the vocabulary (256 bytes + merges + specials) reaches `vocabularySize`
    /// or no adjacent pair is left. Ties go to the pair with the smaller (left, right) ids.
    public func train(vocabularySize: Int, specials: [String] = []) throws -> ByteLevelBPE {
        let mergeCount = max(0, vocabularySize - 256 - specials.count)
        var words: [[Int32]] = (0..<counts.count).map { i in table.key(i).map { Int32($0) } }
        let wordCounts = counts
        var pairCount: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        for (w, symbols) in words.enumerated() where symbols.count > 1 {
            for i in 0 ..< symbols.count - 1 {
                let k = PairTable.key(symbols[i], symbols[i + 1])
                pairCount[k, default: 0] += wordCounts[w]
                pairWords[k, default: []].append(Int32(w))
            }
        }
        var heap = PairHeap()
        for (k, c) in pairCount { heap.push(count: c, pair: k) }

        var tokenBytes = (0..<256).map { [UInt8($0)] }
        var mergeBytes: [([UInt8], [UInt8])] = []
        var lastSeen = [Int32](repeating: -1, count: words.count)
        var touched: [UInt64: Int] = [:]
        while mergeBytes.count < mergeCount, let top = heap.pop() {
            let current = pairCount[top.pair] ?? 0
            if current != top.count {
                if current > 0 { heap.push(count: current, pair: top.pair) }
                continue
            }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair)
            let new = Int32(tokenBytes.count)
            tokenBytes.append(tokenBytes[Int(a)] + tokenBytes[Int(b)])
            mergeBytes.append((tokenBytes[Int(a)], tokenBytes[Int(b)]))
            touched.removeAll(keepingCapacity: true)
            for w32 in pairWords[top.pair] ?? [] {
                let w = Int(w32)
                if lastSeen[w] == new { continue }
                lastSeen[w] = new
                let old = words[w], c = wordCounts[w]
                var merged: [Int32] = []
                merged.reserveCapacity(old.count)
                var i = 0, changed = false
                while i < old.count {
                    if i + 1 < old.count && old[i] == a && old[i + 1] == b { merged.append(new); i += 2; changed = true }
                    else { merged.append(old[i]); i += 1 }
                }
                guard changed else { continue }
                for j in 0 ..< old.count - 1 { pairCount[PairTable.key(old[j], old[j + 1])]! -= c }
                for j in 0 ..< max(0, merged.count - 1) {
                    let k = PairTable.key(merged[j], merged[j + 1])
                    pairCount[k, default: 0] += c
                    if merged[j] == new || merged[j + 1] == new {
                        touched[k] = 1
                        pairWords[k, default: []].append(w32)
                    }
                }
                words[w] = merged
            }
            pairCount[top.pair] = nil
            pairWords[top.pair] = nil
            for k in touched.keys { if let c = pairCount[k], c > 0 { heap.push(count: c, pair: k) } }
        }
        return try ByteLevelBPE(mergeBytes: mergeBytes, specials: specials)
    }
}

/// Max-heap of (count, pair); ties pop the smaller pair first.
struct PairHeap {
    private var items: [(count: Int, pair: UInt64)] = []

    @inline(__always) private static func above(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64)) -> Bool {
        x.count > y.count || (x.count == y.count && x.pair < y.pair)
    }

    mutating func push(count: Int, pair: UInt64) {
        items.append((count, pair))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard PairHeap.above(items[i], items[parent]) else { break }
            items.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() -> (count: Int, pair: UInt64)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && PairHeap.above(items[l], items[best]) { best = l }
                if r < items.count && PairHeap.above(items[r], items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best); i = best
            }
        }
        return top
    }
}
