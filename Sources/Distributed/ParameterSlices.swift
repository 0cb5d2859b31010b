// ParameterSlices: ZeRO-1's division of the flat parameter buffer among the ranks — which slice
// each rank's optimizer owns, and how a gradient bucket's reduce-scatter splits along them.
import Foundation

/// The slices of a flat buffer of `count` floats over `world` ranks. Rank r owns
/// `r·S ..< min((r+1)·S, count)` where S, the slice size, is ⌈count / world⌉ rounded up to a
/// multiple of `alignment` (16 floats, 64 bytes: one AVX-512 vector, one cache line), so every
/// slice starts on a 64-byte boundary of the buffer. The last slices may be shorter, or empty when
/// the buffer is small.
public struct ParameterSlices: Equatable, Sendable {
    /// Floats in the whole buffer, ranks, and the floats of every full slice.
    public let count: Int
    public let world: Int
    public let sliceSize: Int
    /// Every slice but the last non-empty one has a multiple of this many floats.
    public static let alignment = 16
    /// Floats of each rank's slice: [world].
    public let counts: [Int]

    public init(count: Int, world: Int) {
        precondition(world >= 1 && count >= 0)
        self.count = count
        self.world = world
        let share = (count + world - 1) / world
        sliceSize = (share + Self.alignment - 1) / Self.alignment * Self.alignment
        let size = sliceSize
        counts = (0..<world).map { r in max(0, min((r + 1) * size, count) - min(r * size, count)) }
    }

    /// Rank `rank`'s slice of the buffer.
    public func range(_ rank: Int) -> Range<Int> {
        min(rank * sliceSize, count) ..< min((rank + 1) * sliceSize, count)
    }

    /// How the floats of `part` fall into the slices: [world], in rank order (they tile `part`).
    public func counts(of part: Range<Int>) -> [Int] {
        (0..<world).map { r in
            let s = range(r)
            return max(0, min(part.upperBound, s.upperBound) - max(part.lowerBound, s.lowerBound))
        }
    }

    /// Where the first float of `part` that falls into rank `rank`'s slice sits in that slice.
    public func offsetInSlice(of part: Range<Int>, rank: Int) -> Int {
        let s = range(rank)
        return min(max(part.lowerBound, s.lowerBound), s.upperBound) - s.lowerBound
    }
}
