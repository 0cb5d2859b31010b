// GradientBuckets: splits the flat gradient buffer into contiguous buckets and all-reduces each one
// as soon as backward has finished it, keeping MPI progressing while backward goes on (the
// PyTorch-DDP scheme). It is not the communicator: it only decides when to call it.
import Foundation

/// Seconds since an arbitrary origin (monotonic).
@inline(__always) func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

public final class GradientBuckets {
    /// Bucket ranges of the flat buffer, in the order backward finishes them (from the end of the
    /// layer-major buffer towards its start).
    public let buckets: [Range<Int>]
    let communicator: Communicator
    let gradients: UnsafeMutablePointer<Float>
    /// Start reductions during backward (true) or only after it (false, for measurement).
    public let overlap: Bool

    /// Backward has finished everything at and above this offset.
    private var readyFrom = Int.max
    private var nextToStart = 0
    private var nextToComplete = 0
    private var armed = false

    /// Time the caller spent in communication calls that did not overlap computation: starts and
    /// tests during backward plus the final wait (accumulated until `resetStatistics`).
    public private(set) var exposedSeconds = 0.0
    /// Reduction rounds finished (steps with all buckets reduced).
    public private(set) var rounds = 0

    /// - Parameters:
    ///   - groups: the layout's contiguous groups (embeddings, blocks…), in buffer order.
    ///   - bucketBytes: 0 = one bucket per group; otherwise buckets of at most this many bytes.
    public init(groups: [Range<Int>], bucketBytes: Int, gradients: UnsafeMutablePointer<Float>,
                communicator: Communicator, overlap: Bool) {
        var ranges: [Range<Int>] = []
        if bucketBytes <= 0 {
            ranges = groups.reversed().filter { !$0.isEmpty }
        } else {
            let size = max(bucketBytes / MemoryLayout<Float>.stride, 1)
            let total = groups.map(\.upperBound).max() ?? 0
            var hi = total
            while hi > 0 { let lo = max(hi - size, 0); ranges.append(lo..<hi); hi = lo }
        }
        precondition(ranges.count <= maxPending, "too many gradient buckets (\(ranges.count)); raise distributed.bucket_megabytes")
        buckets = ranges
        self.communicator = communicator
        self.gradients = gradients
        self.overlap = overlap && communicator.worldSize > 1
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
        let t0 = now()
        readyFrom = min(readyFrom, offset)
        startReadyBuckets()
        advance()
        exposedSeconds += now() - t0
    }

    /// Lets MPI progress the reductions in flight (call between layers).
    public func progress() {
        guard armed, overlap, nextToComplete < nextToStart else { return }
        let t0 = now()
        advance()
        exposedSeconds += now() - t0
    }

    /// After backward: reduces what is left and waits for every bucket.
    public func finish() {
        guard armed else { return }
        armed = false
        guard communicator.worldSize > 1 else { return }
        let t0 = now()
        if overlap {
            readyFrom = 0
            startReadyBuckets()
            while nextToComplete < nextToStart {
                communicator.wait(slot: nextToComplete)
                nextToComplete += 1
            }
        } else {
            for range in buckets {
                communicator.allReduceSum(gradients + range.lowerBound, count: range.count)
            }
        }
        exposedSeconds += now() - t0
        rounds += 1
    }

    public func resetStatistics() { exposedSeconds = 0; rounds = 0 }

    private func startReadyBuckets() {
        while nextToStart < buckets.count, buckets[nextToStart].lowerBound >= readyFrom {
            let range = buckets[nextToStart]
            communicator.startAllReduceSum(gradients + range.lowerBound, count: range.count, slot: nextToStart)
            nextToStart += 1
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
