// ComputeThreads: what every thread that runs kernels sets up once — OpenBLAS and oneDNN pinned to
// one thread per call, denormals flushed, thread-local scratch reserved — and the start-up call
// that makes the shared pool out of such threads.
import Support
import CBLAS
import CKernelSupport

extension ThreadPool {
    /// Floats of thread-local scratch (`loom_thread_scratch`) reserved on every thread when it
    /// starts (512 KiB): kernels that ask for no more never allocate, whichever thread runs them.
    public static let scratchFloats = 1 << 17

    /// Makes a pool of `threads` compute threads the shared one, pins OpenBLAS and oneDNN to one
    /// thread per call (each pool thread runs its own block: one set of threads on the cores) and
    /// prepares the calling thread as the workers prepare themselves when they start.
    public static func configure(threads: Int) {
        openblas_set_num_threads(1)
        prepareComputeThread()
        share(threads: threads, prepareThread: { ThreadPool.prepareComputeThread() })
    }

    /// Readies the calling thread for kernels: oneDNN's per-thread slot and one-thread setting,
    /// denormals flushed to zero (sharpening attention produces probabilities near e^−87, and
    /// denormal arithmetic is ~100× slower), and `scratchFloats` of scratch.
    public static func prepareComputeThread() {
        OneDNN.prepareThread()
        loom_flush_denormals()
        _ = loom_thread_scratch(scratchFloats)
    }
}
