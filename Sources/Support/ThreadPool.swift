// ThreadPool: a fixed set of worker threads that split one loop at a time with the caller; the
// parallel-for under every kernel: one job at a time, issued from one thread.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CSupport

/// A loop body and the state it reads, as a value: `run` does the iterations in `range`.
///
/// Kernels hand the pool structs rather than closures because a closure shared with another
/// thread must be boxed on the heap (`withoutActuallyEscaping`), and the step loop must not
/// allocate. A struct is passed by address; the specialised call stores two plain words.
public protocol ParallelLoop {
    func run(_ range: Range<Int>)
}

/// Runs loops on `threads` threads (the caller plus `threads - 1` workers). Workers live as long
/// as the process: pools are made once at start-up.
///
/// Why our own pool: OpenBLAS runs single-threaded and the pool splits every sgemm and every
/// elementwise kernel, so exactly one set of threads competes for the cores. Workers spin briefly
/// between jobs (the step loop issues hundreds per step), then sleep on a condition variable.
public final class ThreadPool: @unchecked Sendable {
    /// The pool every kernel uses; Kernels' `ThreadPool.configure(threads:)` replaces it at start-up.
    nonisolated(unsafe) public private(set) static var shared = ThreadPool(threads: 1)

    /// Makes a pool of `threads` threads whose workers start with `prepareThread` the shared one,
    /// unless the shared pool already has that many threads. Start-up only: a job running on the
    /// old pool keeps it.
    public static func share(threads: Int, prepareThread: (@Sendable () -> Void)? = nil) {
        if shared.threads != threads { shared = ThreadPool(threads: max(1, threads), prepareThread: prepareThread) }
    }

    /// Threads that run a job, the caller included.
    public let threads: Int

    /// What each worker does once when it starts, before its first job (Kernels sets the
    /// floating-point controls and per-thread scratch of a compute thread there).
    private let prepareThread: (@Sendable () -> Void)?

    private let generation = Atomic<Int>(0)
    private let nextPart = Atomic<Int>(0)
    private let busyWorkers = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let inUse = Atomic<Bool>(false)
    // The current job: a pointer to the caller's loop value and a context-free invoker.
    private var job: UnsafeRawPointer?
    private var invoke: ((UnsafeRawPointer, Range<Int>) -> Void)?
    private var jobCount = 0, jobGrain = 1, jobGrains = 0, jobParts = 0
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    /// How many polls a worker makes before it sleeps: the first `pauseLimit` with a pause
    /// instruction (microseconds apart: the next job of a step usually comes that soon), the rest
    /// yielding the core to other processes (MPI ranks sharing cores).
    private let pauseLimit = 2000, spinLimit = 6000

    /// A pool of `threads` threads (at least one, the caller); each of the `threads - 1` workers
    /// runs `prepareThread` when it starts.
    public init(threads: Int, prepareThread: (@Sendable () -> Void)? = nil) {
        self.threads = max(1, threads)
        self.prepareThread = prepareThread
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
        loom_mark_pool_worker()
        prepareThread?()
        var seen = 0
        while true {
            var polls = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                polls += 1
                if polls < spinLimit { backOff(polls); continue }
                pthread_mutex_lock(&mutex)
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(&condition, &mutex)
                }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(&mutex)
            }
            seen = generation.load(ordering: .acquiring)
            runParts()
            busyWorkers.subtract(1, ordering: .releasing)
        }
    }

    /// One poll's wait: a pause instruction for the first `pauseLimit` polls, then a yield.
    @inline(__always)
    private func backOff(_ polls: Int) {
        if polls < pauseLimit { loom_cpu_relax() } else { sched_yield() }
    }

    /// Takes parts of the current job until none are left.
    private func runParts() {
        guard let job, let invoke else { return }
        while true {
            let part = nextPart.add(1, ordering: .relaxed).oldValue
            if part >= jobParts { return }
            invoke(job, range(part))
        }
    }

    /// Part `part` of `jobParts` contiguous ranges over `0..<jobCount`, in multiples of the grain.
    private func range(_ part: Int) -> Range<Int> {
        ThreadPool.part(part, of: jobParts, count: jobCount, grain: jobGrain)
    }

    /// The range `parallelFor(count, grain:)` hands to part `part` of `parts`: a job that does
    /// several loops per part (one parallel job instead of several) splits each the same way.
    @inlinable
    public static func part(_ part: Int, of parts: Int, count: Int, grain: Int) -> Range<Int> {
        let grains = (count + grain - 1) / grain
        let start = min(count, (grains * part / parts) * grain)
        let end = min(count, (grains * (part + 1) / parts) * grain)
        return start..<end
    }

    /// Splits `0..<count` into at most `threads` contiguous ranges (multiples of `grain` where
    /// possible) and runs `loop` on each. Static partitioning keeps results deterministic.
    /// A call made while the pool is busy (from another thread) runs serially on its caller.
    @inlinable
    public func parallelFor<Loop: ParallelLoop>(_ count: Int, grain: Int = 1, _ loop: Loop) {
        if count <= 0 { return }
        let grains = (count + grain - 1) / grain
        let parts = min(threads, grains)
        if parts <= 1 || !acquire() {
            loop.run(0..<count)
            return
        }
        withUnsafePointer(to: loop) { pointer in
            start(job: UnsafeRawPointer(pointer), count: count, grain: grain, grains: grains, parts: parts,
                  invoke: { raw, range in raw.assumingMemoryBound(to: Loop.self).pointee.run(range) })
        }
    }

    /// Whether a `parallelFor` called now would run on its caller alone: one thread, or a job
    /// already running (a kernel inside a GPT thread replica). Jobs that choose their own number
    /// of parts use one part then, rather than running several in a row.
    public var runsSerially: Bool { threads == 1 || inUse.load(ordering: .relaxed) }

    /// Claims the pool for one job; false when another job is running.
    @usableFromInline
    func acquire() -> Bool {
        inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
    }

    @usableFromInline
    func start(job: UnsafeRawPointer, count: Int, grain: Int, grains: Int, parts: Int,
                       invoke: @escaping (UnsafeRawPointer, Range<Int>) -> Void) {
        self.job = job
        self.invoke = invoke
        jobCount = count; jobGrain = grain; jobGrains = grains; jobParts = parts
        nextPart.store(0, ordering: .relaxed)
        busyWorkers.store(threads - 1, ordering: .relaxed)
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(&mutex)
            pthread_cond_broadcast(&condition)
            pthread_mutex_unlock(&mutex)
        }
        runParts()
        // A pause per poll: where the "cores" are hardware threads of one core (as on many
        // virtual machines), a bare spin would take issue slots from the worker it waits for.
        // Then yield: when another process shares the cores, the worker we wait for may be
        // descheduled, and spinning out our time slice would only keep it off the core.
        var polls = 0
        while busyWorkers.load(ordering: .acquiring) > 0 { polls += 1; backOff(polls) }
        self.job = nil
        self.invoke = nil
        inUse.store(false, ordering: .releasing)
    }
}
