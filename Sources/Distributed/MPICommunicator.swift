// MPICommunicator: the Communicator over OpenMPI — MPI_Init_thread (funneled: only the main thread
// calls MPI), world and node-local ranks, blocking and nonblocking sums, broadcast, all-gather and
// abort, and ZeRO-1's reduce-scatter, in-place all-gather, gather and scatter of slices. Every wait polls, so that the CollectiveWatchdog can end a job whose peers went silent.
import CMPI
import Foundation
import Support

/// An MPI failure, naming the call and the rank.
public struct MPIError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public let rank: Int
    public var description: String {
        var length: Int32 = 0
        var text = [CChar](repeating: 0, count: 512)
        MPI_Error_string(code, &text, &length)
        return "\(call) failed on rank \(rank) (MPI error \(code): \(String(cString: text)))"
    }
}

public final class MPICommunicator: Communicator {
    public let rank: Int
    public let worldSize: Int
    public let localRank: Int
    public let localSize: Int
    private let world: MPI_Comm
    /// One persistent request per slot, created on the slot's first use and restarted after:
    /// the reduction schedule and its buffers are built once, not at every step.
    private let requests: UnsafeMutablePointer<MPI_Request?>
    /// What each slot's persistent request was built for: an all-reduce of (buffer, count), or a
    /// reduce-scatter of (buffer, counts) into `into`.
    private var prepared: [PreparedRequest]
    /// Each reduce-scatter slot's receive counts (MPI reads them while the request lives): [world]
    /// per slot, allocated when the slot is first built as a reduce-scatter.
    private var sliceCounts: [UnsafeMutablePointer<Int32>?]
    /// The persistent in-place all-gather, and its buffer, counts and displacements ([world] each).
    private var gatherRequest: MPI_Request? = nil
    private var gatherPrepared: (buffer: UnsafeMutablePointer<Float>?, counts: [Int]) = (nil, [])
    private let gatherCounts: UnsafeMutablePointer<Int32>
    private let gatherOffsets: UnsafeMutablePointer<Int32>
    private var finished = false
    /// The request of the collective being waited for by a blocking call.
    private var current: MPI_Request? = nil
    private let watchdog: CollectiveWatchdog

    /// Initialises MPI (funneled) and learns this rank's place in the world and on its node.
    public init() throws {
        var provided: Int32 = 0
        let code = MPI_Init_thread(nil, nil, Int32(loom_mpi_thread_funneled()), &provided)
        guard code == loom_mpi_success() else { throw MPIError(call: "MPI_Init_thread", code: code, rank: -1) }
        world = loom_mpi_comm_world()
        var r: Int32 = 0, w: Int32 = 0
        MPI_Comm_rank(world, &r); MPI_Comm_size(world, &w)
        rank = Int(r); worldSize = Int(w)
        guard provided >= loom_mpi_thread_funneled() else {
            throw MPIError(call: "MPI_Init_thread (MPI_THREAD_FUNNELED not provided, got level \(provided))", code: 0, rank: rank)
        }
        // Ranks sharing this node's memory: sizes the per-rank thread pool.
        var node = loom_mpi_comm_null()
        MPI_Comm_split_type(world, Int32(loom_mpi_comm_type_shared()), r, loom_mpi_info_null(), &node)
        var lr: Int32 = 0, ls: Int32 = 1
        MPI_Comm_rank(node, &lr); MPI_Comm_size(node, &ls)
        MPI_Comm_free(&node)
        localRank = Int(lr); localSize = Int(ls)
        requests = .allocate(capacity: maxPending)
        requests.initialize(repeating: loom_mpi_request_null(), count: maxPending)
        prepared = Array(repeating: PreparedRequest(), count: maxPending)
        sliceCounts = Array(repeating: nil, count: maxPending)
        gatherCounts = .allocate(capacity: worldSize)
        gatherOffsets = .allocate(capacity: worldSize)
        watchdog = CollectiveWatchdog(world: world, rank: rank, worldSize: worldSize)
    }

    deinit {
        requests.deallocate()
        gatherCounts.deallocate(); gatherOffsets.deallocate()
        for counts in sliceCounts { counts?.deallocate() }
    }

    private func check(_ code: Int32, _ call: StaticString) {
        if code != loom_mpi_success() {
            FileHandle.standardError.write(Data("error: \(MPIError(call: "\(call)", code: code, rank: rank))\n".utf8))
            abort(code: 1)
        }
    }

    /// Waits for `request` to complete. Without a watchdog limit this is MPI_Wait; with one, the
    /// wait polls (as MPI_Wait itself does inside OpenMPI), takes in heartbeats, and ends the job
    /// once it has waited longer than the limit.
    private func complete(_ request: UnsafeMutablePointer<MPI_Request?>, _ call: Collective) {
        let limit = watchdog.limit
        guard limit > 0, worldSize > 1 else { check(MPI_Wait(request, loom_mpi_status_ignore()), "MPI_Wait"); return }
        var done: Int32 = 0
        let start = monotonicSeconds()
        while true {
            check(MPI_Test(request, &done, loom_mpi_status_ignore()), "MPI_Test")
            if done != 0 { return }
            watchdog.poll()
            let waited = monotonicSeconds() - start
            if waited > limit { stalled(call, waited: waited) }
        }
    }

    /// Prints the watchdog's message and ends the job. MPI_Abort needs the process manager; if it
    /// cannot reach it (the link is down), the process ends itself a few seconds later. A Loom
    /// launcher is told through the file `LOOM_ABORT_MARKER` names, so that it can end an mpirun
    /// left waiting for a host it cannot reach.
    private func stalled(_ call: Collective, waited: Double) -> Never {
        let message = watchdog.stallMessage(call: call.description, waited: waited)
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        if let marker = ProcessInfo.processInfo.environment["LOOM_ABORT_MARKER"] {
            _ = FileManager.default.createFile(atPath: marker, contents: Data((message + "\n").utf8))
        }
        Thread.detachNewThread { sleep(5); _exit(1) }
        abort(code: 1)
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        check(MPI_Iallreduce(loom_mpi_in_place(), buffer, Int32(count), loom_mpi_float(), loom_mpi_sum(), world, &current), "MPI_Iallreduce")
        complete(&current, .allReduce(count: count, of: "floats"))
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        check(MPI_Iallreduce(loom_mpi_in_place(), buffer, Int32(count), loom_mpi_double(), loom_mpi_sum(), world, &current), "MPI_Iallreduce")
        complete(&current, .allReduce(count: count, of: "doubles"))
    }

    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int) {
        let wanted = PreparedRequest(buffer: UnsafeRawPointer(buffer), count: count)
        if prepared[slot] != wanted {
            free(slot: slot)
            check(MPIX_Allreduce_init(loom_mpi_in_place(), buffer, Int32(count), loom_mpi_float(), loom_mpi_sum(), world,
                                      loom_mpi_info_null(), requests + slot), "MPIX_Allreduce_init")
            prepared[slot] = wanted
        }
        check(MPI_Start(requests + slot), "MPI_Start")
    }

    public func startReduceScatterSum(_ buffer: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>, slot: Int) {
        if !prepared[slot].isReduceScatter(buffer, counts, into) {
            free(slot: slot)
            let c = sliceCounts[slot] ?? .allocate(capacity: worldSize)
            sliceCounts[slot] = c
            for r in 0..<worldSize { c[r] = Int32(counts[r]) }
            check(MPIX_Reduce_scatter_init(buffer, into, c, loom_mpi_float(), loom_mpi_sum(), world, loom_mpi_info_null(),
                                           requests + slot), "MPIX_Reduce_scatter_init")
            prepared[slot] = PreparedRequest(buffer: UnsafeRawPointer(buffer), count: counts.reduce(0, +),
                                             into: UnsafeRawPointer(into), counts: counts)
        }
        check(MPI_Start(requests + slot), "MPI_Start")
    }

    /// Frees the persistent request in `slot` (before building another there).
    private func free(slot: Int) {
        if prepared[slot].buffer != nil { check(MPI_Request_free(requests + slot), "MPI_Request_free") }
        prepared[slot] = PreparedRequest()
    }

    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {
        if gatherPrepared.buffer != buffer || gatherPrepared.counts != counts {
            if gatherPrepared.buffer != nil { check(MPI_Request_free(&gatherRequest), "MPI_Request_free") }
            var offset = 0
            for r in 0..<worldSize { gatherCounts[r] = Int32(counts[r]); gatherOffsets[r] = Int32(offset); offset += counts[r] }
            check(MPIX_Allgatherv_init(loom_mpi_in_place(), 0, loom_mpi_float(), buffer, gatherCounts, gatherOffsets, loom_mpi_float(),
                                       world, loom_mpi_info_null(), &gatherRequest), "MPIX_Allgatherv_init")
            gatherPrepared = (buffer, counts)
        }
        check(MPI_Start(&gatherRequest), "MPI_Start")
        complete(&gatherRequest, .parameterGather(count: counts[rank]))
    }

    /// Runs `body` with the counts and displacements of a gather or scatter, valid until it
    /// returns (the nonblocking call reads them until it completes). Outside the step loop: it
    /// allocates.
    private func withCountsAndOffsets(_ counts: [Int], _ body: (UnsafePointer<Int32>, UnsafePointer<Int32>) -> Void) {
        var offsets: [Int32] = [], offset = 0
        for c in counts { offsets.append(Int32(offset)); offset += c }
        let c32 = counts.map { Int32($0) }
        c32.withUnsafeBufferPointer { c in offsets.withUnsafeBufferPointer { d in body(c.baseAddress!, d.baseAddress!) } }
    }

    public func gather(_ send: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>?, root: Int) {
        withCountsAndOffsets(counts) { c, d in
            check(MPI_Igatherv(send, c[rank], loom_mpi_float(), rank == root ? into : nil, c, d, loom_mpi_float(), Int32(root),
                               world, &current), "MPI_Igatherv")
            complete(&current, .gather(count: counts[rank], root: root))
        }
    }

    public func scatter(_ from: UnsafePointer<Float>?, counts: [Int], into: UnsafeMutablePointer<Float>, root: Int) {
        withCountsAndOffsets(counts) { c, d in
            check(MPI_Iscatterv(rank == root ? from : nil, c, d, loom_mpi_float(), into, c[rank], loom_mpi_float(), Int32(root),
                                world, &current), "MPI_Iscatterv")
            complete(&current, .scatter(count: counts[rank], root: root))
        }
    }

    public func test(slot: Int) -> Bool {
        var done: Int32 = 0
        check(MPI_Test(requests + slot, &done, loom_mpi_status_ignore()), "MPI_Test")
        return done != 0
    }

    public func wait(slot: Int) {
        complete(requests + slot, prepared[slot].into == nil ? .gradientReduction(slot: slot) : .gradientReduceScatter(slot: slot))
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        // MPI counts are Int32: send large buffers in pieces.
        var offset = 0
        while offset < bytes {
            let n = min(bytes - offset, 1 << 30)
            check(MPI_Ibcast(buffer + offset, Int32(n), loom_mpi_byte(), Int32(root), world, &current), "MPI_Ibcast")
            complete(&current, .broadcast(bytes: bytes, root: root))
            offset += n
        }
    }

    public func allGather(_ send: UnsafeRawPointer, bytes: Int, into: UnsafeMutableRawPointer) {
        check(MPI_Iallgather(send, Int32(bytes), loom_mpi_byte(), into, Int32(bytes), loom_mpi_byte(), world, &current), "MPI_Iallgather")
        complete(&current, .allGather(bytes: bytes))
    }

    public func barrier() {
        check(MPI_Ibarrier(world, &current), "MPI_Ibarrier")
        complete(&current, .barrier)
    }

    public func setCollectiveTimeout(seconds: Double, firstStepSeconds: Double) {
        watchdog.setLimits(seconds: seconds, firstStepSeconds: firstStepSeconds)
    }

    public func beginStep(_ step: Int) { watchdog.begin(step: step) }

    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func finish() {
        guard !finished else { return }
        finished = true
        for slot in 0..<maxPending where prepared[slot].buffer != nil { MPI_Request_free(requests + slot) }
        if gatherPrepared.buffer != nil { MPI_Request_free(&gatherRequest) }
        watchdog.close()
        MPI_Finalize()
    }
}

/// The collective a rank is waiting in, named only when the watchdog reports it (building the
/// name at every call would allocate in the step loop).
enum Collective: CustomStringConvertible {
    case allReduce(count: Int, of: StaticString)
    case gradientReduction(slot: Int)
    case gradientReduceScatter(slot: Int)
    case parameterGather(count: Int)
    case gather(count: Int, root: Int)
    case scatter(count: Int, root: Int)
    case broadcast(bytes: Int, root: Int)
    case allGather(bytes: Int)
    case barrier

    var description: String {
        switch self {
        case .allReduce(let count, let kind): "an all-reduce of \(count) \(kind)"
        case .gradientReduction(let slot): "the gradient all-reduce in slot \(slot)"
        case .gradientReduceScatter(let slot): "the gradient reduce-scatter in slot \(slot)"
        case .parameterGather(let count): "the parameter all-gather (\(count) floats from this rank)"
        case .gather(let count, let root): "a gather to rank \(root) (\(count) floats from this rank)"
        case .scatter(let count, let root): "a scatter from rank \(root) (\(count) floats to this rank)"
        case .broadcast(let bytes, let root): "a broadcast of \(bytes) bytes from rank \(root)"
        case .allGather(let bytes): "an all-gather of \(bytes) bytes per rank"
        case .barrier: "a barrier"
        }
    }
}

/// What a slot's persistent request was built for (an empty one: nothing yet). A reduce-scatter
/// has a receive buffer and counts; an all-reduce has neither.
struct PreparedRequest: Equatable {
    var buffer: UnsafeRawPointer? = nil
    var count = 0
    var into: UnsafeRawPointer? = nil
    var counts: [Int] = []

    /// Compares without building a value (which would retain `counts` into a new struct).
    func isReduceScatter(_ b: UnsafePointer<Float>, _ c: [Int], _ i: UnsafeMutablePointer<Float>) -> Bool {
        buffer == UnsafeRawPointer(b) && into == UnsafeRawPointer(i) && counts == c
    }
}
