// OneDNN: Kernels' second GEMM engine: oneDNN matmul primitives, each made once for one fixed
// shape (strides, alpha, beta, fp32 or bf16 inputs) and run on the calling thread alone. GemmPlan
// chooses between the engines.
import CDNNL
import CKernelSupport

/// oneDNN (Debian 12: 2.6.3, on OpenMP) as Loom uses it: one OpenMP thread per Loom thread, so
/// Loom's pool stays the only set of threads on the cores. oneDNN sizes a primitive's work split
/// for the creating thread's OpenMP team, so primitives are made on a thread that runs alone, and
/// a product split over the pool runs one primitive per block, as OpenBLAS does.
public enum OneDNN {
    /// The CPU engine; nil when oneDNN cannot make one (then every product runs on OpenBLAS).
    nonisolated(unsafe) static let engine: dnnl_engine_t? = {
        var engine: dnnl_engine_t?
        return dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? engine : nil
    }()

    /// Whether oneDNN matmuls can run here.
    public static var available: Bool { engine != nil }

    /// Threads that may run primitives (slots of `loom_thread_slot`): their streams and scratchpads.
    static let maxSlots = 256
    nonisolated(unsafe) static let streams: UnsafeMutablePointer<dnnl_stream_t?> = {
        let p = UnsafeMutablePointer<dnnl_stream_t?>.allocate(capacity: maxSlots)
        p.initialize(repeating: nil, count: maxSlots)
        return p
    }()
    nonisolated(unsafe) static let scratchpads: UnsafeMutablePointer<UnsafeMutableRawPointer?> = {
        let p = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: maxSlots)
        p.initialize(repeating: nil, count: maxSlots)
        return p
    }()
    nonisolated(unsafe) static var scratchpadBytes = 0

    /// Called around every oneDNN execution when set (`loom bench` sets MallocCounter's foreign
    /// scope here: oneDNN 2.x allocates inside dnnl_primitive_execute, and the bench names those
    /// allocations apart from Loom's). Set once at start-up.
    nonisolated(unsafe) public static var aroundExecute: (begin: @convention(c) () -> Void, end: @convention(c) () -> Void)?

    /// Makes the calling thread run oneDNN on itself alone (an OpenMP team of one: no OpenMP
    /// thread starts) and gives it a slot. The pool's threads call it when they start.
    public static func prepareThread() {
        omp_set_num_threads(1)
        _ = loom_thread_slot()
    }

    /// Streams for slots up to `slots` and scratchpads of at least `bytes` each. Only between
    /// steps (plan time, or a probe while no product runs): a larger size replaces the buffers.
    static func reserve(slots: Int, scratchpad bytes: Int) {
        guard let engine else { return }
        for s in 0..<min(slots, maxSlots) where streams[s] == nil {
            var stream: dnnl_stream_t?
            if dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success { streams[s] = stream }
        }
        // A larger size replaces every slot's scratchpad (and makes those still missing).
        var wanted = min(slots, maxSlots)
        if bytes > scratchpadBytes {
            scratchpadBytes = (bytes + 4095) / 4096 * 4096
            for s in 0..<maxSlots where scratchpads[s] != nil {
                scratchpads[s]!.deallocate()
                scratchpads[s] = nil
                wanted = max(wanted, s + 1)
            }
        }
        for s in 0..<wanted where scratchpads[s] == nil && scratchpadBytes > 0 {
            scratchpads[s] = UnsafeMutableRawPointer.allocate(byteCount: scratchpadBytes, alignment: 4096)
        }
    }

    /// The library's version, e.g. "2.6.3".
    public static var version: String {
        guard let v = dnnl_version() else { return "?" }
        return "\(v.pointee.major).\(v.pointee.minor).\(v.pointee.patch)"
    }

    /// The instruction set oneDNN dispatches to on this CPU (`dnnl_get_effective_cpu_isa`), in
    /// oneDNN's names: "avx2", "avx512_core", "avx512_core_bf16", "avx512_core_amx", …
    public static var isa: String { isaName(dnnl_get_effective_cpu_isa()) }

    static func isaName(_ isa: dnnl_cpu_isa_t) -> String {
        switch isa {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx512_mic: return "avx512_mic"
        case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_all: return "all"
        default: return "isa \(isa.rawValue)"
        }
    }

    /// The implementation oneDNN picks for a square product of `size` in fp32 or bf16, e.g.
    /// "brg:avx512_core" (what `loom system` names); nil when it cannot make one.
    public static func implementation(size: Int = 512, bf16: Bool) -> String? {
        OneDNNMatmul(GemmShape(m: size, n: size, k: size, lda: size, ldb: size, ldc: size, beta: 0, bf16: bf16), slots: 0)?
            .implementation
    }
}

/// One matmul primitive for one `GemmShape`, with memory objects for each thread slot (a memory
/// object's data pointer is set per call, so threads cannot share one). Made at plan time, never
/// in the step loop; running it allocates nothing of Loom's.
public final class OneDNNMatmul: @unchecked Sendable {
    public let shape: GemmShape
    var matmul = loom_dnnl_matmul()
    /// Slots with memory objects: a thread whose slot is beyond them gets `false` from `run`.
    let slots: Int
    /// A, B, C and scratchpad memory objects of slot s at 4s ..< 4s + 4.
    let memories: UnsafeMutablePointer<dnnl_memory_t?>

    /// oneDNN's implementation name, e.g. "brg:avx512_core_bf16".
    public var implementation: String { matmul.implementation.map { String(cString: $0) } ?? "" }

    /// nil when oneDNN has no implementation for the shape (or no engine). `shared`: its
    /// threads use the shared per-slot streams and scratchpads (made or grown here, so only while
    /// no product runs); a private one (a one-off call) has one slot and brings its own.
    public init?(_ shape: GemmShape, slots: Int, shared: Bool = true) {
        self.shape = shape
        self.slots = min(slots, OneDNN.maxSlots)
        memories = .allocate(capacity: 4 * max(self.slots, 1))
        memories.initialize(repeating: nil, count: 4 * max(self.slots, 1))
        guard let engine = OneDNN.engine else { return nil }
        OneDNN.prepareThread()
        let s = shape
        guard loom_dnnl_matmul_create(&matmul, engine, s.transA ? 1 : 0, s.transB ? 1 : 0, Int64(s.m), Int64(s.n),
                                      Int64(s.k), Int64(s.lda), Int64(s.ldb), Int64(s.ldc), s.alpha, s.beta,
                                      s.bf16 ? 1 : 0) == dnnl_success else {
            matmul.primitive = nil
            return nil
        }
        if shared { OneDNN.reserve(slots: self.slots, scratchpad: matmul.scratchpad_bytes) }
        for slot in 0..<self.slots {
            for (i, desc) in [matmul.a, matmul.b, matmul.c, matmul.scratchpad].enumerated() {
                var d = desc
                guard dnnl_memory_create(&memories[4 * slot + i], &d, engine, nil) == dnnl_success else { return nil }
            }
        }
    }

    deinit {
        for i in 0..<4 * max(slots, 1) where memories[i] != nil { dnnl_memory_destroy(memories[i]) }
        memories.deallocate()
        if matmul.primitive != nil { dnnl_primitive_destroy(matmul.primitive) }
    }

    /// C = alpha · op(A) · op(B) + beta · C on the calling thread; false (nothing done) when this
    /// thread has no slot here or oneDNN fails.
    @inline(__always)
    public func run(a: UnsafeRawPointer, b: UnsafeRawPointer, c: UnsafeMutablePointer<Float>) -> Bool {
        let slot = Int(loom_thread_slot())
        guard slot < slots, let stream = OneDNN.streams[slot] else { return false }
        let m = memories + 4 * slot
        let hooks = OneDNN.aroundExecute
        hooks?.begin()
        let status = loom_dnnl_matmul_execute(matmul.primitive, stream, m[0], m[1], m[2], m[3], a, b, c,
                                              OneDNN.scratchpads[slot])
        hooks?.end()
        return status == dnnl_success
    }

    /// A primitive made for this one call and dropped, with its own stream and scratchpad, so
    /// that it may run while other threads run planned primitives (allocates: the recorded first
    /// step, shapes met after planning, tests). False when oneDNN cannot run the shape.
    static func runOnce(_ shape: GemmShape, a: UnsafeRawPointer, b: UnsafeRawPointer, c: UnsafeMutablePointer<Float>) -> Bool {
        guard let engine = OneDNN.engine, let once = OneDNNMatmul(shape, slots: 1, shared: false) else { return false }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success else { return false }
        defer { dnnl_stream_destroy(stream) }
        let bytes = max(once.matmul.scratchpad_bytes, 1)
        let scratchpad = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { scratchpad.deallocate() }
        let m = once.memories
        return loom_dnnl_matmul_execute(once.matmul.primitive, stream, m[0], m[1], m[2], m[3], a, b, c, scratchpad) == dnnl_success
    }
}
