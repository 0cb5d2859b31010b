// Tests of GradientBuckets against a recording communicator: buckets tile the buffer, start only
// once backward has finished them, in backward order, and all complete before finish() returns.
import Testing
import Distributed

/// Records every call; reductions complete after `testsToComplete` tests each.
final class RecordingCommunicator: Communicator {
    var started: [(offset: Int, count: Int, slot: Int)] = []
    var completed = Set<Int>()
    var blocking: [(offset: Int, count: Int)] = []
    var testsSeen: [Int: Int] = [:]
    let base: UnsafeMutablePointer<Float>
    let testsToComplete: Int
    init(base: UnsafeMutablePointer<Float>, testsToComplete: Int) { self.base = base; self.testsToComplete = testsToComplete }
    var rank: Int { 0 }
    var worldSize: Int { 2 }
    var localRank: Int { 0 }
    var localSize: Int { 2 }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { blocking.append((buffer - base, count)) }
    func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    func startAllReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int, slot: Int) {
        #expect(!started.contains { $0.slot == slot && !completed.contains(slot) }, "slot \(slot) reused while in flight")
        started.append((buffer - base, count, slot))
    }
    func test(slot: Int) -> Bool {
        testsSeen[slot, default: 0] += 1
        if testsSeen[slot]! >= testsToComplete { completed.insert(slot); return true }
        return false
    }
    func wait(slot: Int) { completed.insert(slot) }
    var scattered: [(offset: Int, counts: [Int], slot: Int)] = []
    var intos: [UnsafeMutablePointer<Float>] = []
    func startReduceScatterSum(_ buffer: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>, slot: Int) {
        #expect(!started.contains { $0.slot == slot && !completed.contains(slot) }, "slot \(slot) reused while in flight")
        started.append((UnsafePointer(base).distance(to: buffer), counts.reduce(0, +), slot))
        scattered.append((UnsafePointer(base).distance(to: buffer), counts, slot))
        intos.append(into)
    }
    func allGatherInPlace(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {}
    func gather(_ send: UnsafePointer<Float>, counts: [Int], into: UnsafeMutablePointer<Float>?, root: Int) {}
    func scatter(_ from: UnsafePointer<Float>?, counts: [Int], into: UnsafeMutablePointer<Float>, root: Int) {}
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    func allGather(_ send: UnsafeRawPointer, bytes: Int, into: UnsafeMutableRawPointer) {}
    func barrier() {}
    func abort(code: Int32) -> Never { fatalError("abort") }
    func finish() {}
}

struct GradientBucketsTests {
    // A layout like a 3-block GPT: embeddings, h.0, h.1, h.2+ln_f.
    let groups = [0..<100, 100..<350, 350..<600, 600..<870]

    @Test func oneBucketPerGroupStartsAsBackwardFinishesEachGroup() {
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: 870)
        defer { grads.deallocate() }
        let comm = RecordingCommunicator(base: grads, testsToComplete: 3)
        let buckets = GradientBuckets(groups: groups, bucketBytes: 0, gradients: grads, communicator: comm, overlap: true)
        #expect(buckets.buckets == [600..<870, 350..<600, 100..<350, 0..<100])
        buckets.arm()
        buckets.ready(from: 600)                 // last block done
        #expect(comm.started.map(\.offset) == [600])
        buckets.progress(); buckets.progress()
        buckets.ready(from: 350)
        #expect(comm.started.map(\.offset) == [600, 350])
        #expect(comm.completed.contains(0), "the first bucket completes through tests during backward")
        buckets.ready(from: 100)
        buckets.ready(from: 0)
        #expect(comm.started.map(\.offset) == [600, 350, 100, 0])
        buckets.finish()
        #expect(comm.completed == [0, 1, 2, 3])
        #expect(comm.blocking.isEmpty)
        #expect(buckets.rounds == 1)
    }

    @Test func sizedBucketsTileTheBufferAndWaitForTheirWholeRange() {
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: 870)
        defer { grads.deallocate() }
        let comm = RecordingCommunicator(base: grads, testsToComplete: 1)
        // 200 floats per bucket.
        let buckets = GradientBuckets(groups: groups, bucketBytes: 800, gradients: grads, communicator: comm, overlap: true)
        #expect(buckets.buckets == [670..<870, 470..<670, 270..<470, 70..<270, 0..<70])
        buckets.arm()
        buckets.ready(from: 600)   // 670..<870 is complete; 470..<670 is not
        #expect(comm.started.map(\.offset) == [670])
        buckets.ready(from: 350)
        #expect(comm.started.map(\.offset) == [670, 470])
        buckets.finish()           // embeddings were the last: finish starts the rest
        #expect(comm.started.map(\.offset) == [670, 470, 270, 70, 0])
        #expect(comm.started.map(\.count).reduce(0, +) == 870)
        #expect(comm.completed.count == 5)
    }

    @Test func largeBucketsGoAsSeveralMessagesThatStartTogether() {
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: 870)
        defer { grads.deallocate() }
        let comm = RecordingCommunicator(base: grads, testsToComplete: 1)
        // One bucket per group, messages of at most 100 floats.
        let buckets = GradientBuckets(groups: groups, bucketBytes: 0, messageBytes: 400, gradients: grads,
                                      communicator: comm, overlap: true)
        #expect(buckets.buckets.prefix(3) == [770..<870, 670..<770, 600..<670])
        #expect(buckets.buckets.count == 3 + 3 + 3 + 1)
        buckets.arm()
        buckets.ready(from: 600)   // the whole last group: its three messages start together
        #expect(comm.started.map(\.offset) == [770, 670, 600])
        buckets.finish()
        #expect(comm.started.map(\.count).reduce(0, +) == 870)
    }

    @Test func nothingStartsBeforeArmingAndOverlapOffReducesAfterBackward() {
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: 870)
        defer { grads.deallocate() }
        let comm = RecordingCommunicator(base: grads, testsToComplete: 1)
        let buckets = GradientBuckets(groups: groups, bucketBytes: 0, gradients: grads, communicator: comm, overlap: false)
        buckets.ready(from: 0)      // not armed: an earlier micro-step
        buckets.arm()
        buckets.ready(from: 600); buckets.ready(from: 0)
        #expect(comm.started.isEmpty)
        buckets.finish()
        #expect(comm.blocking.map(\.offset) == [600, 350, 100, 0])
        #expect(comm.blocking.map(\.count).reduce(0, +) == 870)
    }

    @Test func shardedBucketsReduceScatterIntoTheirPartOfThisRanksSlice() {
        let grads = UnsafeMutablePointer<Float>.allocate(capacity: 870)
        let slice = UnsafeMutablePointer<Float>.allocate(capacity: 448)
        defer { grads.deallocate(); slice.deallocate() }
        // Rank 0 of 2 (the recording communicator's): slices 0..<448 and 448..<870.
        let slices = ParameterSlices(count: 870, world: 2)
        #expect(slices.counts == [448, 422])
        for overlap in [true, false] {
            let comm = RecordingCommunicator(base: grads, testsToComplete: 1)
            let buckets = GradientBuckets(groups: groups, bucketBytes: 0, gradients: grads, communicator: comm, overlap: overlap,
                                          sharding: .init(slices: slices, sliceGradients: slice))
            buckets.arm()
            buckets.ready(from: 600)
            #expect(comm.scattered.map(\.offset) == (overlap ? [600] : []))
            buckets.finish()
            #expect(comm.blocking.isEmpty, "a sharded run all-reduced a bucket")
            #expect(comm.scattered.map(\.offset) == [600, 350, 100, 0])
            // Each bucket's parts in rank order: the last block falls in rank 1's slice, h.1 straddles
            // the boundary at 448, h.0 and the embeddings fall in rank 0's; rank 0 receives each
            // part at its place in its slice.
            #expect(comm.scattered.map(\.counts) == [[0, 270], [98, 152], [250, 0], [100, 0]])
            #expect(comm.intos.map { slice.distance(to: $0) } == [448, 350, 100, 0])
            #expect(comm.completed == [0, 1, 2, 3])
        }
    }
}
