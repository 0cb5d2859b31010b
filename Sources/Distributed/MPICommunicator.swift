// MPICommunicator: the Communicator over OpenMPI — MPI_Init_thread (funneled: only the main thread
// calls MPI), world and node-local ranks, blocking and nonblocking sums, broadcast, all-gather and
// abort. It is the only file that imports CMPI; it is not the bucketing (GradientBuckets).
import CMPI
import Foundation

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
    /// The (buffer, count) each slot's persistent request was built for.
    private var prepared: [(UnsafeMutablePointer<Float>?, Int)]
    private var finished = false

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
        prepared = Array(repeating: (nil, 0), count: maxPending)
    }

    deinit { requests.deallocate() }

    private func check(_ code: Int32, _ call: StaticString) {
        if code != loom_mpi_success() {
            FileHandle.standardError.write(Data("error: \(MPIError(call: "\(call)", code: code, rank: rank))\n".utf8))
            abort(code: 1)
        }
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        check(MPI_Allreduce(loom_mpi_in_place(), buffer, Int32(count), loom_mpi_float(), loom_mpi_sum(), world), "MPI_Allreduce")
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        check(MPI_Allreduce(loom_mpi_in_place(), buffer, Int32(count), loom_mpi_double(), loom_mpi_sum(), world), "MPI_Allreduce")
    }

    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int) {
        if prepared[slot].0 != buffer || prepared[slot].1 != count {
            if prepared[slot].0 != nil { check(MPI_Request_free(requests + slot), "MPI_Request_free") }
            check(MPIX_Allreduce_init(loom_mpi_in_place(), buffer, Int32(count), loom_mpi_float(), loom_mpi_sum(), world,
                                      loom_mpi_info_null(), requests + slot), "MPIX_Allreduce_init")
            prepared[slot] = (buffer, count)
        }
        check(MPI_Start(requests + slot), "MPI_Start")
    }

    public func test(slot: Int) -> Bool {
        var done: Int32 = 0
        check(MPI_Test(requests + slot, &done, loom_mpi_status_ignore()), "MPI_Test")
        return done != 0
    }

    public func wait(slot: Int) {
        check(MPI_Wait(requests + slot, loom_mpi_status_ignore()), "MPI_Wait")
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        // MPI counts are Int32: send large buffers in pieces.
        var offset = 0
        while offset < bytes {
            let n = min(bytes - offset, 1 << 30)
            check(MPI_Bcast(buffer + offset, Int32(n), loom_mpi_byte(), Int32(root), world), "MPI_Bcast")
            offset += n
        }
    }

    public func allGather(_ send: UnsafeRawPointer, bytes: Int, into: UnsafeMutableRawPointer) {
        check(MPI_Allgather(send, Int32(bytes), loom_mpi_byte(), into, Int32(bytes), loom_mpi_byte(), world), "MPI_Allgather")
    }

    public func barrier() { check(MPI_Barrier(world), "MPI_Barrier") }

    public func abort(code: Int32) -> Never {
        MPI_Abort(world, code)
        exit(code)
    }

    public func finish() {
        guard !finished else { return }
        finished = true
        for slot in 0..<maxPending where prepared[slot].0 != nil { MPI_Request_free(requests + slot) }
        MPI_Finalize()
    }
}
