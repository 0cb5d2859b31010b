// ThreadPool: every index of a range runs exactly once, whatever the grain, and every worker runs
// its pool's preparation before its first job.
import Testing
import Foundation
import Synchronization
import Support

@Suite struct ThreadPoolTests {
    struct Count: ParallelLoop {
        let hits: UnsafeMutablePointer<Int>, grain: Int
        func run(_ range: Range<Int>) {
            for i in range { hits[i] += 1 }
        }
    }

    @Test func poolCoversEveryIndexOnce() {
        let pool = ThreadPool(threads: 3)
        for count in [0, 1, 7, 100, 1001] {
            for grain in [1, 4, 64] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { h in pool.parallelFor(count, grain: grain, Count(hits: h.baseAddress!, grain: grain)) }
                #expect(hits.allSatisfy { $0 == 1 }, "count \(count) grain \(grain)")
            }
        }
    }

    /// The threads that ran `prepareThread`, and a rendezvous that makes each part of a job run on
    /// its own thread (a part waits until every part has started).
    final class Record: @unchecked Sendable {
        let lock = NSLock()
        var prepared: [pthread_t] = []
        let started = Atomic<Int>(0)
        func add(_ thread: pthread_t) { lock.lock(); prepared.append(thread); lock.unlock() }
        func isPrepared(_ thread: pthread_t) -> Bool {
            lock.lock(); defer { lock.unlock() }
            return prepared.contains { pthread_equal($0, thread) != 0 }
        }
    }

    struct Meet: ParallelLoop {
        let record: Record, parts: Int, caller: pthread_t
        let seen: UnsafeMutablePointer<Bool>   // [parts]: part p ran on a prepared worker or the caller
        func run(_ range: Range<Int>) {
            record.started.add(1, ordering: .sequentiallyConsistent)
            let deadline = Date(timeIntervalSinceNow: 10)
            while record.started.load(ordering: .sequentiallyConsistent) < parts && Date() < deadline { sched_yield() }
            let me = pthread_self()
            for p in range { seen[p] = pthread_equal(me, caller) != 0 || record.isPrepared(me) }
        }
    }

    @Test func everyWorkerPreparesItselfBeforeItsFirstJob() {
        let record = Record()
        let pool = ThreadPool(threads: 3, prepareThread: { record.add(pthread_self()) })
        var seen = [Bool](repeating: false, count: 3)
        seen.withUnsafeMutableBufferPointer { s in
            pool.parallelFor(3, Meet(record: record, parts: 3, caller: pthread_self(), seen: s.baseAddress!))
        }
        #expect(record.started.load(ordering: .sequentiallyConsistent) == 3)
        #expect(seen == [true, true, true])
        #expect(record.lock.withLock { record.prepared.count } == 2, "two workers, each prepared once")
    }
}
