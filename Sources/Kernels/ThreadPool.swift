// ThreadPool: a fixed set of worker threads that split one loop at a time with the caller; the
// parallel-for under every kernel. It is not a task scheduler: one job at a time, from one thread.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CBLAS

/// Runs loop bodies on `threads` threads (the caller plus `threads - 1` workers).
///
/// Why our own pool: OpenBLAS runs single-threaded and the pool splits every sgemm and every
/// elementwise kernel, so exactly one set of threads competes for the cores. Issuing a job
/// allocates nothing: the body is borrowed (`withoutActuallyEscaping`), workers spin briefly
/// between jobs (the step loop issues hundreds per step), then sleep on a condition variable.
public final class ThreadPool: @unchecked Sendable {
    /// The pool every kernel uses; replace it with `ThreadPool.configure(threads:)` at start-up.
    nonisolated(unsafe) public private(set) static var shared = ThreadPool(threads: 1)

    /// Makes a pool of `threads` threads the shared one and pins OpenBLAS to one thread per call.
    public static func configure(threads: Int) {
        openblas_set_num_threads(1)
        if shared.threads != threads { shared = ThreadPool(threads: max(1, threads)) }
    }

    /// Threads that run a job, the caller included.
    public let threads: Int

    private let generation = Atomic<Int>(0)
    private let nextTask = Atomic<Int>(0)
    private let busyWorkers = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private var body: ((Int) -> Void)?
    private var taskCount = 0
    private var stopping = false
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    /// How many polls a worker makes before it sleeps (each poll yields the core).
    private let spinLimit = 4000

    public init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        for _ in 1..<self.threads {
            let unmanaged = Unmanaged.passRetained(self)
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let pool = Unmanaged<ThreadPool>.fromOpaque(arg!).takeRetainedValue()
                pool.workerLoop()
                return nil
            }, unmanaged.toOpaque())
            precondition(rc == 0, "ThreadPool: pthread_create failed (\(rc))")
            pthread_detach(thread)
        }
    }

    private func workerLoop() {
        var seen = 0
        while true {
            var polls = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                polls += 1
                if polls < spinLimit { sched_yield(); continue }
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(&condition, &mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(&mutex)
            }
            seen = generation.load(ordering: .acquiring)
            if stopping { return }
            if let body {
                while true {
                    let task = nextTask.add(1, ordering: .relaxed).oldValue
                    if task >= taskCount { break }
                    body(task)
                }
            }
            busyWorkers.subtract(1, ordering: .releasing)
        }
    }

    /// Calls `body(task)` once for every task in `0..<tasks`, spread over the pool's threads.
    /// Returns when all have finished.
    public func run(tasks: Int, _ body: (Int) -> Void) {
        if tasks <= 0 { return }
        if threads == 1 || tasks == 1 {
            for task in 0..<tasks { body(task) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            self.body = escapable
            self.taskCount = tasks
            nextTask.store(0, ordering: .relaxed)
            busyWorkers.store(threads - 1, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&condition)
                pthread_mutex_unlock(&mutex)
            }
            while true {
                let task = nextTask.add(1, ordering: .relaxed).oldValue
                if task >= tasks { break }
                escapable(task)
            }
            while busyWorkers.load(ordering: .acquiring) > 0 {}
            self.body = nil
        }
    }

    /// Splits `0..<count` into at most `threads` contiguous ranges (multiples of `grain` where
    /// possible) and runs `body` on each. Static partitioning keeps results deterministic.
    public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let grains = (count + grain - 1) / grain
        let parts = min(threads, grains)
        if parts <= 1 { body(0..<count); return }
        run(tasks: parts) { part in
            let start = min(count, (grains * part / parts) * grain)
            let end = min(count, (grains * (part + 1) / parts) * grain)
            if start < end { body(start..<end) }
        }
    }
}
