// ThreadRanks: the ranks of a job as threads of one process — a Communicator whose collectives meet
// in shared memory — so tests run multi-rank code (sharded tokenization, gathers) without mpirun.
// It is not for speed: every collective is two barriers.
import Foundation
import Distributed

/// `size` ranks as threads; `run` gives each its communicator and collects what each returned.
public final class ThreadRanks: @unchecked Sendable {
    public let size: Int
    /// How long a rank waits at a collective for the others before the test stops with an error:
    /// a rank that skips a collective would hang a real job.
    public let timeoutSeconds: Double
    private let condition = NSCondition()
    private var arrived = 0, generation = 0
    /// Each rank's buffer for the collective in progress: [size].
    fileprivate let posted: UnsafeMutablePointer<UnsafeRawPointer?>

    init(size: Int, timeoutSeconds: Double) {
        self.size = size; self.timeoutSeconds = timeoutSeconds
        posted = .allocate(capacity: size)
        posted.initialize(repeating: nil, count: size)
    }

    deinit { posted.deallocate() }

    /// Runs `body` on `size` threads, rank r on the r-th, and returns their results in rank order.
    public static func run<T>(_ size: Int, timeoutSeconds: Double = 60,
                              _ body: @escaping @Sendable (Communicator) throws -> T) -> [Result<T, Error>] {
        let group = ThreadRanks(size: size, timeoutSeconds: timeoutSeconds)
        let results = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: size)
        results.initialize(repeating: nil, count: size)
        defer { results.deinitialize(count: size); results.deallocate() }
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let slots = results
        for r in 0..<size {
            let thread = Thread {
                slots[r] = Result { try body(ThreadRank(rank: r, group: group)) }
                finished.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for _ in 0..<size { finished.wait() }
        return (0..<size).map { results[$0]! }
    }

    /// Returns once every rank has called it (a barrier).
    fileprivate func meet(rank: Int) {
        condition.lock(); defer { condition.unlock() }
        let seen = generation
        arrived += 1
        if arrived == size { arrived = 0; generation += 1; condition.broadcast(); return }
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        while generation == seen {
            if !condition.wait(until: deadline) {
                fatalError("ThreadRanks: rank \(rank) of \(size) waited \(timeoutSeconds) s at a collective that another rank never reached")
            }
        }
    }
}

/// One rank of a `ThreadRanks` group.
final class ThreadRank: Communicator {
    let rank: Int
    let group: ThreadRanks
    init(rank: Int, group: ThreadRanks) { self.rank = rank; self.group = group }

    var worldSize: Int { group.size }
    var localRank: Int { rank }
    var localSize: Int { group.size }

    /// Posts `buffer`, waits for every rank's, lets `read` see them all (rank order), and waits
    /// again so that no buffer is reused while another rank may still read it.
    private func exchange(_ buffer: UnsafeRawPointer, _ read: ([UnsafeRawPointer]) -> Void) {
        group.posted[rank] = buffer
        group.meet(rank: rank)
        read((0..<group.size).map { group.posted[$0]! })
        group.meet(rank: rank)
    }

    private func sum<T: FloatingPoint>(_ buffer: UnsafeMutablePointer<T>, count: Int) {
        var total = [T](repeating: 0, count: count)
        exchange(buffer) { all in
            for b in all { let p = b.assumingMemoryBound(to: T.self); for i in 0..<count { total[i] += p[i] } }
        }
        for i in 0..<count { buffer[i] = total[i] }
    }

    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { sum(buffer, count: count) }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) { sum(buffer, count: count) }
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int) { sum(buffer, count: count) }
    func test(slot: Int) -> Bool { true }
    func wait(slot: Int) {}
    /// Sums in rank order, like `sum`, and keeps this rank's part.
    func startReduceScatterSum(_ buffer: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>, slot: Int) {
        let offset = counts[..<rank].reduce(0, +), n = counts[rank]
        var total = [Float](repeating: 0, count: n)
        exchange(buffer) { all in
            for b in all { let p = b.assumingMemoryBound(to: Float.self) + offset; for i in 0..<n { total[i] += p[i] } }
        }
        for i in 0..<n { into[i] = total[i] }
    }
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        let total = counts.reduce(0, +)
        var whole = [Float](repeating: 0, count: total)
        exchange(buffer) { all in
            var offset = 0
            for (r, b) in all.enumerated() {
                let p = b.assumingMemoryBound(to: Float.self)
                for i in offset..<(offset + counts[r]) { whole[i] = p[i] }
                offset += counts[r]
            }
        }
        for i in 0..<total { buffer[i] = whole[i] }
    }
    func gather(_ send: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>?, root: Int) {
        exchange(send) { all in
            guard rank == root, let into else { return }
            var offset = 0
            for (r, b) in all.enumerated() {
                (into + offset).update(from: b.assumingMemoryBound(to: Float.self), count: counts[r])
                offset += counts[r]
            }
        }
    }
    func scatter(_ from: UnsafePointer<Float>?, counts: [Int], into: UnsafeMutablePointer<Float>, root: Int) {
        let offset = counts[..<rank].reduce(0, +)
        exchange(UnsafeRawPointer(from ?? UnsafePointer(into))) { all in
            into.update(from: all[root].assumingMemoryBound(to: Float.self) + offset, count: counts[rank])
        }
    }
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        var copy = [UInt8](repeating: 0, count: bytes)
        exchange(buffer) { all in copy.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: all[root], byteCount: bytes) } }
        copy.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes) }
    }
    func allGather(_ send: UnsafeRawPointer, bytes: Int, into: UnsafeMutableRawPointer) {
        exchange(send) { all in for (r, b) in all.enumerated() { (into + r * bytes).copyMemory(from: b, byteCount: bytes) } }
    }
    func barrier() { group.meet(rank: rank) }
    func abort(code: Int32) -> Never { fatalError("ThreadRanks: rank \(rank) of \(group.size) aborted the job (code \(code))") }
    func finish() {}
}
