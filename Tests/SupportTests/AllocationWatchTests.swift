// AllocationWatch: the allocation count the step tests read (TestSupport's fewestAllocations, on
// MallocCounter's watch) sees the calling thread's allocations and a ThreadPool worker's, and not
// those of any other thread (the tests Swift Testing runs meanwhile).
import Testing
import Foundation
import Synchronization
import Support
import TestSupport

@Suite struct AllocationWatchTests {
    /// Keeps `count` small arrays alive until the end of the call, so each is an allocation.
    @inline(never)
    static func allocate(_ count: Int) {
        var kept: [[Int]] = []
        kept.reserveCapacity(count)
        for i in 0..<count { kept.append([Int](repeating: i, count: 64 + i)) }
        withExtendedLifetime(kept) {}
    }

    @Test func theCallingThreadIsCounted() {
        #expect(fewestAllocations(tries: 3) { Self.allocate(10) } >= 10)
    }

    final class Started: Sendable { let parts = Atomic<Int>(0) }

    /// Both parts wait until both have started (so one runs on the pool's worker); the worker's
    /// part allocates, the caller's does not.
    struct AllocateOnTheWorker: ParallelLoop {
        let started: Started, caller: pthread_t
        func run(_ range: Range<Int>) {
            started.parts.add(1, ordering: .sequentiallyConsistent)
            let deadline = Date(timeIntervalSinceNow: 10)
            while started.parts.load(ordering: .sequentiallyConsistent) < 2 && Date() < deadline { sched_yield() }
            if pthread_equal(pthread_self(), caller) == 0 { AllocationWatchTests.allocate(10) }
        }
    }

    @Test func aPoolWorkerIsCounted() {
        let pool = ThreadPool(threads: 2)
        let started = Started()
        let job = AllocateOnTheWorker(started: started, caller: pthread_self())
        let fewest = fewestAllocations(tries: 3) {
            started.parts.store(0, ordering: .sequentiallyConsistent)
            pool.parallelFor(2, job)
        }
        #expect(fewest >= 10)
    }

    final class Signals: Sendable {
        let go = Atomic<Int>(0), done = Atomic<Int>(0)
    }

    /// The other thread allocates once per round the watched thread asks for (and waits for),
    /// until told to stop (go < 0).
    @Test func anotherThreadIsNotCounted() {
        let signals = Signals()
        let other = Thread {
            var handled = 0
            while true {
                let round = signals.go.load(ordering: .sequentiallyConsistent)
                if round < 0 { return }
                if round > handled {
                    Self.allocate(10)
                    handled = round
                    signals.done.store(round, ordering: .sequentiallyConsistent)
                } else {
                    sched_yield()
                }
            }
        }
        other.start()
        var round = 0
        let fewest = fewestAllocations(tries: 3) {
            round += 1
            signals.go.store(round, ordering: .sequentiallyConsistent)
            while signals.done.load(ordering: .sequentiallyConsistent) < round { sched_yield() }
        }
        signals.go.store(-1, ordering: .sequentiallyConsistent)
        #expect(fewest == 0, "\(fewest) allocations of another thread counted")
    }
}
