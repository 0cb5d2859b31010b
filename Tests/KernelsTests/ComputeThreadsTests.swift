// ComputeThreads: a pool of compute threads (as `ThreadPool.configure` makes the shared one)
// flushes denormals on every thread that runs a part of a job, the prepared caller and the workers.
import Testing
import Foundation
import Synchronization
import Kernels
import Support

@Suite struct ComputeThreadsTests {
    /// Each part waits until both have started (so the two run on two threads), then multiplies
    /// the smallest normal float by a half: zero when denormals are flushed.
    struct Halve: ParallelLoop {
        let started: UnsafeMutablePointer<Atomic<Int>>
        let inputs: UnsafePointer<Float>   // [2]: the smallest normal float, 0.5
        let results: UnsafeMutablePointer<Float>   // [2]
        func run(_ range: Range<Int>) {
            started.pointee.add(1, ordering: .sequentiallyConsistent)
            let deadline = Date(timeIntervalSinceNow: 10)
            while started.pointee.load(ordering: .sequentiallyConsistent) < 2 && Date() < deadline { sched_yield() }
            for p in range { results[p] = inputs[0] * inputs[1] }
        }
    }

    @Test func everyComputeThreadFlushesDenormals() {
        // A pool of its own: tests running at the same time keep the shared one busy.
        ThreadPool.prepareComputeThread()
        let pool = ThreadPool(threads: 2, prepareThread: { ThreadPool.prepareComputeThread() })
        let started = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        started.initialize(to: Atomic(0))
        defer { started.deinitialize(count: 1); started.deallocate() }
        let inputs: [Float] = [.leastNormalMagnitude, 0.5]
        var results: [Float] = [1, 1]
        inputs.withUnsafeBufferPointer { i in
            results.withUnsafeMutableBufferPointer { r in
                pool.parallelFor(2, Halve(started: started, inputs: i.baseAddress!, results: r.baseAddress!))
            }
        }
        #expect(started.pointee.load(ordering: .sequentiallyConsistent) == 2)
        #expect(results == [0, 0], "a denormal result survived on a pool thread: \(results)")
    }
}
