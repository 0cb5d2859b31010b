// CollectiveWatchdog: ends an MPI job whose collectives have stopped making progress — a host that
// vanished, a link that went down — instead of letting every rank wait forever. Each rank sends
// its peers small heartbeats (the step it is in) on a communicator of their own: when it begins a
// step, and every second while it waits in a collective. A rank whose collective has waited past
// the limit prints what it was doing and the ranks it has not heard from lately, and aborts the job.
import CMPI
import Foundation
import Support

/// The heartbeats and the limits. Owned by `MPICommunicator`; only its thread calls it.
final class CollectiveWatchdog {
    private let rank: Int
    private let worldSize: Int
    private var channel: MPI_Comm?
    /// The step each peer has last said it is in (-1: none heard yet), when that was heard
    /// (monotonic seconds), and this rank's step.
    private(set) var peerSteps: [Int]
    private var heard: [Double]
    private(set) var step = -1
    private var stepsBegun = 0
    /// One receive posted from each peer and one send to each at a time; 1 value each.
    private let receives: UnsafeMutablePointer<MPI_Request?>   // [worldSize]
    private let sends: UnsafeMutablePointer<MPI_Request?>      // [worldSize]
    private let received: UnsafeMutablePointer<Int64>          // [worldSize]
    private let sent: UnsafeMutablePointer<Int64>              // [worldSize]
    private let completed: UnsafeMutablePointer<Int32>         // [worldSize] indices from MPI_Testsome
    private var seconds = 0.0
    private var firstStepSeconds = 0.0
    private var lastPoll = 0.0
    private var lastSent = 0.0
    private let host: String

    init(world: MPI_Comm?, rank: Int, worldSize: Int) {
        self.rank = rank; self.worldSize = worldSize
        var duplicate = loom_mpi_comm_null()
        MPI_Comm_dup(world, &duplicate)
        channel = duplicate
        peerSteps = Array(repeating: -1, count: worldSize)
        heard = Array(repeating: -Double.infinity, count: worldSize)
        receives = .allocate(capacity: worldSize); receives.initialize(repeating: loom_mpi_request_null(), count: worldSize)
        sends = .allocate(capacity: worldSize); sends.initialize(repeating: loom_mpi_request_null(), count: worldSize)
        received = .allocate(capacity: worldSize); received.initialize(repeating: -1, count: worldSize)
        sent = .allocate(capacity: worldSize); sent.initialize(repeating: -1, count: worldSize)
        completed = .allocate(capacity: worldSize); completed.initialize(repeating: 0, count: worldSize)
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, 255)
        host = String(cString: name)
    }

    deinit {
        receives.deallocate(); sends.deallocate(); received.deallocate(); sent.deallocate(); completed.deallocate()
    }

    /// The limit in force now (0: none).
    var limit: Double { stepsBegun >= 2 ? seconds : firstStepSeconds }

    func setLimits(seconds: Double, firstStepSeconds: Double) {
        self.seconds = seconds; self.firstStepSeconds = firstStepSeconds
        guard worldSize > 1, seconds > 0 || firstStepSeconds > 0 else { return }
        for peer in 0..<worldSize where peer != rank && receives[peer] == loom_mpi_request_null() { post(peer) }
    }

    private func post(_ peer: Int) {
        MPI_Irecv(received + peer, 1, loom_mpi_int64(), Int32(peer), 0, channel, receives + peer)
    }

    /// Tells every peer that this rank begins `step`.
    func begin(step: Int) {
        self.step = step
        stepsBegun += 1
        guard worldSize > 1, limit > 0 else { return }
        poll(force: true)
        beat(now: monotonicSeconds())
    }

    /// Sends this rank's step to every peer (a peer whose previous heartbeat is still in flight is
    /// skipped: it is not listening, and will learn the newer step with the next one).
    private func beat(now: Double) {
        lastSent = now
        for peer in 0..<worldSize where peer != rank {
            var done: Int32 = 1
            if sends[peer] != loom_mpi_request_null() { MPI_Test(sends + peer, &done, loom_mpi_status_ignore()) }
            guard done != 0 else { continue }
            sent[peer] = Int64(step)
            MPI_Isend(sent + peer, 1, loom_mpi_int64(), Int32(peer), 0, channel, sends + peer)
        }
    }

    /// Takes in the heartbeats that have arrived, and sends one every second while this rank
    /// waits (called from wait loops; does its work at most every 10 ms).
    func poll(force: Bool = false) {
        let now = monotonicSeconds()
        guard force || now - lastPoll > 0.01 else { return }
        lastPoll = now
        if !force, now - lastSent > 1 { beat(now: now) }
        while true {
            var count: Int32 = 0
            MPI_Testsome(Int32(worldSize), receives, &count, completed, loom_mpi_statuses_ignore())
            if count == loom_mpi_undefined() || count == 0 { return }
            for i in 0..<Int(count) {
                let peer = Int(completed[i])
                peerSteps[peer] = max(peerSteps[peer], Int(received[peer]))
                heard[peer] = now
                post(peer)
            }
        }
    }

    /// What a stalled rank prints before ending the job.
    func stallMessage(call: String, waited: Double) -> String {
        poll(force: true)
        let now = monotonicSeconds()
        // A peer that is waiting too sends a heartbeat every second; one unheard for 3 s is
        // computing, stopped, or cut off.
        let silent = (0..<worldSize).filter { $0 != rank && now - heard[$0] > 3 }
        let doing = step >= 0 ? "step \(step)" : "start-up, before the first step"
        var text = "rank \(rank) of \(worldSize) (host \(host)): \(call) made no progress for \(Int(waited)) s (\(doing)); "
        if silent.isEmpty {
            text += "every rank is alive and waiting too, so the collective itself is stuck (network?)"
        } else {
            let last = silent.map { peer -> String in
                peerSteps[peer] < 0 ? "rank \(peer): nothing heard"
                    : "rank \(peer): last heard \(Int(now - heard[peer])) s ago, at step \(peerSteps[peer])"
            }
            text += "still waiting for rank\(silent.count > 1 ? "s" : "") \(silent.map(String.init).joined(separator: ", "))"
                + " (\(last.joined(separator: "; ")))"
        }
        let key = stepsBegun >= 2 ? "distributed.timeout_seconds" : "distributed.first_step_timeout_seconds"
        return text + "; ending the job (\(key) = \(Int(limit)))"
    }

    /// Withdraws the receives still posted (before MPI_Finalize).
    func close() {
        for peer in 0..<worldSize where receives[peer] != loom_mpi_request_null() {
            MPI_Cancel(receives + peer)
            MPI_Request_free(receives + peer)
        }
        for peer in 0..<worldSize where sends[peer] != loom_mpi_request_null() { MPI_Request_free(sends + peer) }
        MPI_Comm_free(&channel)
    }
}
