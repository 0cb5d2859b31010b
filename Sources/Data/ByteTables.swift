// ByteTables: open-addressing hash tables for the tokenizer's hot paths — byte strings → dense
// index (word cache, word counts) and packed id pairs → merge rank. They are not general
// containers: no removal, keys are copied into one arena.
import Foundation

/// FNV-1a 64 over a byte range (also the shard checksum; see `Checksum`).
@inline(__always) func fnv1a(_ p: UnsafePointer<UInt8>, _ count: Int, _ seed: UInt64 = 0xcbf29ce484222325) -> UInt64 {
    var h = seed
    for i in 0..<count { h = (h ^ UInt64(p[i])) &* 0x100000001b3 }
    return h
}

/// Byte strings → 0, 1, 2… in insertion order, without allocating per lookup.
final class ByteKeyTable {
    private var slots: [Int32]          // entry index, −1 = empty
    private var hashes: [UInt64] = []
    private(set) var starts: [Int] = []
    private(set) var lengths: [Int32] = []
    private(set) var arena: [UInt8] = []
    private var mask: Int

    init(capacity: Int = 1 << 12) {
        var n = 16
        while n < capacity * 2 { n <<= 1 }
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
    }

    var count: Int { starts.count }

    /// The key of entry `i`.
    func key(_ i: Int) -> ArraySlice<UInt8> { arena[starts[i] ..< starts[i] + Int(lengths[i])] }

    /// Index of the key, or −1.
    @inline(__always) func find(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        let h = fnv1a(p, n)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[s])
            if e < 0 { return -1 }
            if hashes[e] == h && Int(lengths[e]) == n && arena.withUnsafeBufferPointer({ memcmp($0.baseAddress! + starts[e], p, n) == 0 }) {
                return e
            }
            s = (s + 1) & mask
        }
    }

    /// Index of the key, inserting it if new (`inserted` says which).
    @inline(__always) func findOrInsert(_ p: UnsafePointer<UInt8>, _ n: Int) -> (index: Int, inserted: Bool) {
        let h = fnv1a(p, n)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[s])
            if e < 0 { break }
            if hashes[e] == h && Int(lengths[e]) == n && arena.withUnsafeBufferPointer({ memcmp($0.baseAddress! + starts[e], p, n) == 0 }) {
                return (e, false)
            }
            s = (s + 1) & mask
        }
        let e = starts.count
        slots[s] = Int32(e)
        hashes.append(h); starts.append(arena.count); lengths.append(Int32(n))
        arena.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        if starts.count * 2 > slots.count { grow() }
        return (e, true)
    }

    private func grow() {
        let n = slots.count * 2
        slots = [Int32](repeating: -1, count: n)
        mask = n - 1
        for e in 0..<starts.count {
            var s = Int(truncatingIfNeeded: hashes[e]) & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(e)
        }
    }
}

/// (left id, right id) → (rank, merged id), open addressing on the packed 64-bit pair.
struct PairTable {
    private var keys: [UInt64]
    private var values: [UInt64]      // rank << 32 | merged id
    private let mask: Int
    private static let empty = UInt64.max

    init(pairs: [(left: Int32, right: Int32, merged: Int32)]) {
        var n = 16
        while n < pairs.count * 3 { n <<= 1 }
        keys = [UInt64](repeating: PairTable.empty, count: n)
        values = [UInt64](repeating: 0, count: n)
        mask = n - 1
        for (rank, p) in pairs.enumerated() {
            let k = PairTable.key(p.left, p.right)
            var s = PairTable.slot(k) & mask
            while keys[s] != PairTable.empty && keys[s] != k { s = (s + 1) & mask }
            if keys[s] == k { continue }    // a repeated merge keeps its first (lowest) rank
            keys[s] = k
            values[s] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: p.merged))
        }
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }
    @inline(__always) static func slot(_ k: UInt64) -> Int { Int(truncatingIfNeeded: (k &* 0x9E3779B97F4A7C15) >> 20) }

    /// (rank, merged id) of the pair, or nil.
    @inline(__always) func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, merged: Int32)? {
        let k = PairTable.key(a, b)
        var s = PairTable.slot(k) & mask
        return keys.withUnsafeBufferPointer { kp in
            while true {
                let found = kp[s]
                if found == k { let v = values[s]; return (Int32(v >> 32), Int32(truncatingIfNeeded: v)) }
                if found == PairTable.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }
}
