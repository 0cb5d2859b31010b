// Communicator: the narrow interface through which the trainer talks to its peers, the
// single-process implementation used in dev mode, and `Launch`, which picks one from how the
// process was started.
import Foundation

/// What the trainer needs from the other ranks, and nothing more.
public protocol Communicator: AnyObject {
    /// This process's index among all ranks, and their number.
    var rank: Int { get }
    var worldSize: Int { get }
    /// This process's index among the ranks on its node, and their number (sizes thread pools).
    var localRank: Int { get }
    var localSize: Int { get }
    /// In-place sum over all ranks (blocking).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Starts an in-place sum over all ranks without waiting for it. `slot` (0 ..< `maxPending`)
    /// names the request for `test`/`wait`; the buffer must not be touched until it completes.
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int)
    /// Advances the request in `slot`; true when it has completed (then the slot is free again).
    func test(slot: Int) -> Bool
    /// Blocks until the request in `slot` has completed.
    func wait(slot: Int)
    /// Starts a sum over all ranks of `buffer[0 ..< counts.sum]` of which each rank receives only
    /// its part (ZeRO-1's gradient reduce-scatter): rank r's is the `counts[r]` floats from offset
    /// `counts[..<r].sum`, written to `into`, which must not overlap `buffer`. Shares the slots of
    /// `startAllReduceSum` (`test`/`wait`); the request is built once per slot, buffers and counts.
    func startReduceScatterSum(_ buffer: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>, slot: Int)
    /// In place: rank r's part of `buffer` (the `counts[r]` floats from offset `counts[..<r].sum`)
    /// copied to every rank (ZeRO-1's parameter all-gather). Blocking; the request is built once
    /// per buffer and counts.
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int])
    /// Rank `root` receives every rank's `counts[rank]` floats from `send`, concatenated in rank
    /// order into `into` (`counts.sum` floats; only `root`'s is used, the others may pass nil).
    func gather(_ send: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>?, root: Int)
    /// The reverse: rank `root`'s `from` (`counts.sum` floats; nil elsewhere) split in rank order,
    /// each rank receiving its `counts[rank]` floats into `into`.
    func scatter(_ from: UnsafePointer<Float>?, counts: [Int], into: UnsafeMutablePointer<Float>, root: Int)
    /// Copies rank `root`'s buffer to every rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
    /// Every rank's `bytes` bytes, concatenated in rank order into `into` (worldSize × bytes).
    func allGather(_ send: UnsafeRawPointer, bytes: Int, into: UnsafeMutableRawPointer)
    func barrier()
    /// Ends every rank of the job (after this one has printed its error). Never returns.
    func abort(code: Int32) -> Never
    /// The watchdog's limits: a collective that waits longer than `seconds` for its peers ends the
    /// job with a message naming the ranks it waited for (`firstStepSeconds` until the first
    /// training step has finished: start-up work such as tokenizing runs between collectives on
    /// one rank while the others wait). 0 waits forever.
    func setCollectiveTimeout(seconds: Double, firstStepSeconds: Double)
    /// Marks the start of training step `step`, so that peers know how far this rank has come
    /// (what the watchdog's message reports).
    func beginStep(_ step: Int)
    /// Leaves the job cleanly (all ranks call it at the end).
    func finish()
}

/// How many nonblocking requests may be in flight at once.
public let maxPending = 1024

extension Communicator {
    public var isCoordinator: Bool { rank == 0 }

    /// Communicators whose collectives cannot hang on a peer (one process, threads of one
    /// process) have no watchdog.
    public func setCollectiveTimeout(seconds: Double, firstStepSeconds: Double) {}
    public func beginStep(_ step: Int) {}

    /// Every rank's value of a fixed-size byte string, in rank order.
    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] {
        var out = [UInt8](repeating: 0, count: bytes.count * worldSize)
        bytes.withUnsafeBytes { send in
            out.withUnsafeMutableBytes { allGather(send.baseAddress!, bytes: bytes.count, into: $0.baseAddress!) }
        }
        return (0..<worldSize).map { Array(out[($0 * bytes.count)..<(($0 + 1) * bytes.count)]) }
    }

    /// Every rank's byte string, of any length, in rank order: one all-gather of the lengths, then
    /// one of the strings padded to the longest. For small messages (a rank's outcome, a list of
    /// files); each must stay below 2 GiB, MPI's count limit.
    public func allGatherVariable(_ bytes: [UInt8]) -> [[UInt8]] {
        var length = UInt64(bytes.count).littleEndian
        let lengths = withUnsafeBytes(of: &length) { allGather(Array($0)) }
            .map { Int(UInt64(littleEndian: $0.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })) }
        let longest = lengths.max() ?? 0
        if longest == 0 { return lengths.map { _ in [] } }
        precondition(longest < Int(Int32.max), "allGatherVariable: \(longest) bytes exceed MPI's count limit")
        let padded = allGather(bytes + [UInt8](repeating: 0, count: longest - bytes.count))
        return zip(padded, lengths).map { Array($0.prefix($1)) }
    }

    /// "rank r of W" — how messages name the process at fault.
    public var rankDescription: String { "rank \(rank) of \(worldSize)" }
}

/// One process, no peers: every collective is the identity. Dev mode and tests use it.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int) {}
    public func test(slot: Int) -> Bool { true }
    public func wait(slot: Int) {}
    public func startReduceScatterSum(_ buffer: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>, slot: Int) {
        into.update(from: buffer, count: counts[0])
    }
    public func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {}
    public func gather(_ send: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>?, root: Int) {
        into?.update(from: send, count: counts[0])
    }
    public func scatter(_ from: UnsafePointer<Float>?, counts: [Int], into: UnsafeMutablePointer<Float>, root: Int) {
        if let from { into.update(from: from, count: counts[0]) }
    }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    public func allGather(_ send: UnsafeRawPointer, bytes: Int, into: UnsafeMutableRawPointer) {
        into.copyMemory(from: send, byteCount: bytes)
    }
    public func barrier() {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finish() {}
}

/// Decides from the environment how this process was started.
public enum Launch {
    /// True when a process manager (mpirun / OpenMPI's PRRTE, PMIx, Slurm's PMI) started us as
    /// one rank of a job.
    public static var underMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    /// How long a SIGTERM to a bare `mpirun` leaves the ranks before it SIGKILLs them: OpenMPI's
    /// `odls_base_sigkill_timeout` (1 s unless set). Nil when no such deadline applies: not under
    /// OpenMPI's mpirun, or under a Loom launcher (launch/mpirun, launch/slurm.sbatch), which turns
    /// stop requests into a SIGUSR1 that mpirun forwards without killing anyone.
    public static var secondsBeforeKillAfterTerm: Double? {
        let env = ProcessInfo.processInfo.environment
        guard env["OMPI_COMM_WORLD_SIZE"] != nil, env["LOOM_LAUNCHER"] == nil else { return nil }
        return env["OMPI_MCA_odls_base_sigkill_timeout"].flatMap(Double.init) ?? 1
    }

    /// MPI (initialised now, funneled) when launched by mpirun/srun; otherwise one process, and MPI
    /// is not initialised at all. Refuses to run alone as one of several tasks of an `srun` step
    /// that gave its tasks no process manager (`--mpi=none`): each would train alone into the same
    /// run directory.
    public static func communicator() throws -> Communicator {
        if underMPI { return try MPICommunicator() }
        let env = ProcessInfo.processInfo.environment
        if let tasks = env["SLURM_STEP_NUM_TASKS"].flatMap(Int.init), tasks > 1 {
            throw UnconnectedTasks(tasks: tasks, task: env["SLURM_PROCID"].flatMap(Int.init) ?? -1)
        }
        return SingleProcessCommunicator()
    }
}

/// srun started several tasks but gave them no MPI process manager (no PMIx/PMI variables), so
/// they cannot form one job.
public struct UnconnectedTasks: Error, CustomStringConvertible {
    public let tasks: Int
    public let task: Int
    public var description: String {
        "srun started \(tasks) tasks (this is task \(task)) without an MPI process manager, so each would train alone: "
            + "launch with `srun --mpi=pmix …` (or set MpiDefault=pmix in slurm.conf; `srun --mpi=list` shows the choices)"
    }
}
