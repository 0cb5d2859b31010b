// Communicator: the narrow interface through which the trainer talks to its peers, and the
// single-process implementation used in dev mode. It is not MPI (see MPICommunicator, later).

/// What the trainer needs from the other ranks, and nothing more.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// In-place sum over all ranks.
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Copies rank `root`'s buffer to every rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
    func barrier()
}

extension Communicator {
    public var isCoordinator: Bool { rank == 0 }
}

/// One process, no peers: every collective is the identity. Dev mode and tests use it.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    public func barrier() {}
}
