// GradientBuckets: splits the flat gradient buffer into contiguous buckets and all-reduces each one
// as soon as backward has finished it, keeping MPI progressing while backward goes on (the
// PyTorch-DDP scheme). With a sharded optimizer (ZeRO-1) each bucket is reduce-scattered instead:
// every rank receives the sum of the part of the bucket that falls in its slice.
import Foundation
import Support

public final class GradientBuckets {
    /// The reductions: ranges of the flat buffer, in the order backward finishes them (from the
    /// end of the layer-major buffer towards its start). A bucket is one or more of them.
    public let buckets: [Range<Int>]
    let communicator: Communicator
    let gradients: UnsafeMutablePointer<Float>
    /// Start reductions during backward (true) or only after it (false, for measurement).
    public let overlap: Bool
    /// ZeRO-1: the slices, and this rank's slice of the summed gradients (what every bucket's
    /// reduce-scatter writes into); nil when every rank all-reduces the whole buffer.
    public let sharding: Sharding?
    /// Per bucket, with sharding: how its floats fall into the slices ([world]) and where its part
    /// of this rank's slice begins there.
    private let scatterCounts: [[Int]]
    private let sliceOffsets: [Int]

    /// Where a sharded optimizer's gradients go: `sliceGradients` holds `slices.range(rank)`'s
    /// summed gradients, offset 0 at the slice's first float.
    public struct Sharding {
        public let slices: ParameterSlices
        public let sliceGradients: UnsafeMutablePointer<Float>
        public init(slices: ParameterSlices, sliceGradients: UnsafeMutablePointer<Float>) {
            self.slices = slices; self.sliceGradients = sliceGradients
        }
    }

    /// Backward has finished everything at and above this offset.
    private var readyFrom = Int.max
    private var nextToStart = 0
    private var nextToComplete = 0
    private var armed = false

    /// Time spent in communication calls during backward (starts and tests), and waiting after
    /// it for the reductions to finish (accumulated until `resetStatistics`). Neither overlaps
    /// computation: together they are the exposed communication time.
    public private(set) var progressSeconds = 0.0
    public private(set) var waitSeconds = 0.0
    public var exposedSeconds: Double { progressSeconds + waitSeconds }
    /// Reduction rounds finished (steps with all buckets reduced).
    public private(set) var rounds = 0
    /// Per round (up to `recordCapacity`, then wrapping): when backward ended (monotonic seconds,
    /// comparable between ranks on one node) and how long the wait after it took. A rank that
    /// finished backward last never waits for a peer's computation, so its wait is the
    /// communication left exposed; an earlier rank's wait also holds the skew between ranks.
    public let recordCapacity = 1024
    public private(set) var backwardEnds: [Double]
    public private(set) var waits: [Double]

    /// - Parameters:
    ///   - groups: the layout's contiguous groups (embeddings, blocks…), in buffer order.
    ///   - bucketBytes: 0 = one bucket per group; otherwise buckets of at most this many bytes.
    ///   - messageBytes: the largest single reduction; bigger buckets go as several messages
    ///     (OpenMPI's shared-memory all-reduce is fastest at 0.5–4 MiB).
    ///   - sharding: reduce-scatter each bucket into this rank's slice instead of all-reducing it.
    public init(groups: [Range<Int>], bucketBytes: Int, messageBytes: Int = 2 << 20,
                gradients: UnsafeMutablePointer<Float>, communicator: Communicator, overlap: Bool,
                sharding: Sharding? = nil) {
        var ranges: [Range<Int>] = []
        let floats = MemoryLayout<Float>.stride
        if bucketBytes <= 0 {
            ranges = groups.reversed().filter { !$0.isEmpty }
        } else {
            let size = max(bucketBytes / floats, 1)
            let total = groups.map(\.upperBound).max() ?? 0
            var hi = total
            while hi > 0 { let lo = max(hi - size, 0); ranges.append(lo..<hi); hi = lo }
        }
        // Messages: each bucket in pieces of at most messageBytes, from its end (backward order).
        let piece = max(messageBytes / floats, 1)
        ranges = ranges.flatMap { r -> [Range<Int>] in
            var out: [Range<Int>] = [], hi = r.upperBound
            while hi > r.lowerBound { let lo = max(hi - piece, r.lowerBound); out.append(lo..<hi); hi = lo }
            return out
        }
        precondition(ranges.count <= maxPending, "too many gradient buckets (\(ranges.count)); raise distributed.bucket_megabytes")
        buckets = ranges
        self.sharding = sharding
        scatterCounts = sharding.map { s in ranges.map { s.slices.counts(of: $0) } } ?? []
        sliceOffsets = sharding.map { s in ranges.map { s.slices.offsetInSlice(of: $0, rank: communicator.rank) } } ?? []
        self.communicator = communicator
        self.gradients = gradients
        self.overlap = overlap && communicator.worldSize > 1
        backwardEnds = Array(repeating: 0, count: recordCapacity)
        waits = Array(repeating: 0, count: recordCapacity)
    }

    /// Called before the backward whose gradients are final for this step.
    public func arm() {
        armed = true
        readyFrom = Int.max
        nextToStart = 0
        nextToComplete = 0
    }

    /// Backward has finished every gradient at offsets ≥ `offset`: start the buckets that are now
    /// complete and let the ones in flight progress.
    public func ready(from offset: Int) {
        guard armed, overlap else { return }
        let t0 = monotonicSeconds()
        readyFrom = min(readyFrom, offset)
        startReadyBuckets()
        advance()
        progressSeconds += monotonicSeconds() - t0
    }

    /// Lets MPI progress the reductions in flight (call between layers).
    public func progress() {
        guard armed, overlap, nextToComplete < nextToStart else { return }
        let t0 = monotonicSeconds()
        advance()
        progressSeconds += monotonicSeconds() - t0
    }

    /// After backward: reduces what is left and waits for every bucket.
    public func finish() {
        guard armed else { return }
        armed = false
        guard communicator.worldSize > 1 else { return }
        let t0 = monotonicSeconds()
        if overlap {
            readyFrom = 0
            startReadyBuckets()
            while nextToComplete < nextToStart {
                communicator.wait(slot: nextToComplete)
                nextToComplete += 1
            }
        } else if sharding != nil {
            for b in buckets.indices { start(b); communicator.wait(slot: b) }
        } else {
            for range in buckets {
                communicator.allReduceSum(gradients + range.lowerBound, count: range.count)
            }
        }
        let waited = monotonicSeconds() - t0
        waitSeconds += waited
        backwardEnds[rounds % recordCapacity] = t0
        waits[rounds % recordCapacity] = waited
        rounds += 1
    }

    public func resetStatistics() { progressSeconds = 0; waitSeconds = 0; rounds = 0 }

    private func startReadyBuckets() {
        while nextToStart < buckets.count, buckets[nextToStart].lowerBound >= readyFrom {
            start(nextToStart)
            nextToStart += 1
        }
    }

    /// Starts bucket `b`'s reduction in slot `b`.
    private func start(_ b: Int) {
        let range = buckets[b]
        if let sharding {
            communicator.startReduceScatterSum(gradients + range.lowerBound, counts: scatterCounts[b],
                                               into: sharding.sliceGradients + sliceOffsets[b], slot: b)
        } else {
            communicator.startAllReduceSum(gradients + range.lowerBound, count: range.count, slot: b)
        }
    }

    /// Tests the oldest request in flight (and the ones after it while they complete): MPI's
    /// nonblocking collectives only move forward inside MPI calls.
    private func advance() {
        while nextToComplete < nextToStart, communicator.test(slot: nextToComplete) {
            nextToComplete += 1
        }
    }
}
