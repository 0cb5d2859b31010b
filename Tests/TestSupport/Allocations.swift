// Allocations: how many heap allocations a piece of work makes, counted on the calling thread and
// on the thread pool's workers only (MallocCounter's watch), so the tests that Swift Testing runs
// meanwhile on other threads do not land in the count.
import MallocCounter

/// The fewest heap allocations `body` made over up to `tries` runs (stopping at the first run
/// with none), counting the calling thread's and every ThreadPool worker's. Pool workers may run
/// a job of another test between this test's jobs; the fewest over several runs leaves that out.
public func fewestAllocations(tries: Int = 50, _ body: () -> Void) -> UInt64 {
    loom_malloc_watch_begin()
    defer { loom_malloc_watch_end() }
    var fewest = UInt64.max
    for _ in 0..<tries where fewest > 0 {
        let before = loom_malloc_watched_count()
        body()
        fewest = min(fewest, loom_malloc_watched_count() - before)
    }
    return fewest
}
