// GemmPlan: which GEMM engine (OpenBLAS, oneDNN or Loom's own kernels) runs each matrix-product
// shape of a training step: the shapes are recorded during the first step, oneDNN primitives are
// made for them once, and `auto` times the engines a shape can run on and keeps the fastest.
// Gemm.swift routes each call through the current plan.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CBLAS
import CKernelSupport
import Support

/// A GEMM engine: OpenBLAS sgemm (fp32 products), a oneDNN matmul primitive (fp32 or bf16), or
/// Loom's own kernels (`F32Gemm` on AVX-512 for fp32 products, `BF16Gemm` on AVX512_BF16 for
/// bf16 ones).
public enum GemmEngine: String, CaseIterable, Sendable, Codable {
    case openblas, onednn, loom

    /// How `loom bench` names it: "OpenBLAS", "oneDNN", "Loom".
    public var name: String {
        switch self {
        case .openblas: return "OpenBLAS"
        case .onednn: return "oneDNN"
        case .loom: return "Loom"
        }
    }
}

/// What `kernels.gemm` asks for: an engine for every product, or `auto` (the fastest per shape).
/// - `loom` (the default): Loom's own kernels where the CPU has what they need: fp32 products on `F32Gemm`
///   (AVX-512; OpenBLAS on other CPUs), bf16 products on `BF16Gemm` (AVX512_BF16) except on AMX
///   CPUs, where oneDNN's AMX kernels run them (and on CPUs without AVX512_BF16).
/// - `openblas`: fp32 products on OpenBLAS sgemm; bf16 products (OpenBLAS has none) as `loom`.
/// - `onednn`: every product on a oneDNN primitive (the own engine where oneDNN has none).
/// - `auto`: every engine a shape can run on is timed on it at start-up (OpenBLAS, Loom's kernel
///   and oneDNN for fp32; Loom's kernel and oneDNN for bf16); oneDNN, which allocates in its
///   execute, replaces an allocation-free engine only when faster by `GemmPlan.margin`.
public enum GemmSelection: String, CaseIterable, Sendable, Codable {
    case auto, loom, openblas, onednn
}

/// One product as Gemm's callers issue it: C(m×n) = alpha·op(A)·op(B) + beta·C, row-major, with
/// leading dimensions; `bf16` when A and B are bf16 bits (C is fp32 either way).
public struct GemmShape: Hashable, Sendable, CustomStringConvertible {
    public var transA: Bool, transB: Bool
    public var m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int
    public var alpha: Float, beta: Float
    public var bf16: Bool

    public init(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int,
                alpha: Float = 1, beta: Float, bf16: Bool = false) {
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k
        self.lda = lda; self.ldb = ldb; self.ldc = ldc; self.alpha = alpha; self.beta = beta; self.bf16 = bf16
    }

    /// Multiply-adds × 2.
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    /// e.g. "2048×1152×384 A·Bᵀ β1 ld 384/384/1152" (m×n×k, the transposes, beta, leading dimensions).
    public var description: String {
        let form = (transA ? "Aᵀ" : "A") + "·" + (transB ? "Bᵀ" : "B")
        return "\(m)×\(n)×\(k) \(form)" + (alpha == 1 ? "" : " α\(alpha)") + " β" + (beta == 0 ? "0" : beta == 1 ? "1" : "\(beta)")
            + " ld \(lda)/\(ldb)/\(ldc)" + (bf16 ? " bf16" : "")
    }

    /// Floats (or bf16 values) of A, B and C that the product touches, from the first element.
    var extents: (a: Int, b: Int, c: Int) {
        ((transA ? (k - 1) * lda + m : (m - 1) * lda + k),
         (transB ? (n - 1) * ldb + k : (k - 1) * ldb + n),
         (m - 1) * ldc + n)
    }
}

/// The engine per shape for one run (a Trainer holds one; `Gemm.plan` is the one in force).
public final class GemmPlan: @unchecked Sendable {
    /// What the plan found for one shape.
    public struct Choice: Sendable {
        public var shape: GemmShape
        /// Calls of this shape in the recorded step (over all threads).
        public var calls: Int
        /// Best time of one call on each engine, all pool threads running it at once; nil when
        /// not measured (a fixed selection, oneDNN has no implementation, Loom's kernel cannot run
        /// here, or the engine does not take the shape: OpenBLAS for bf16 ones).
        public var openblasSeconds: Double?, onednnSeconds: Double?, loomSeconds: Double?
        public var engine: GemmEngine
        /// oneDNN's implementation name ("brg:avx512_core"), `F32Gemm.implementation` or
        /// `BF16Gemm.implementation` for Loom's kernels, "" for OpenBLAS.
        public var implementation: String
    }

    /// How the plan runs one planned shape.
    enum Route {
        case openblas, loom
        case onednn(OneDNNMatmul)
    }

    public let selection: GemmSelection
    /// The engine of fp32 shapes that have no route (unplanned ones, the recorded first step):
    /// OpenBLAS under `openblas`, else `defaultEngine` (Loom's kernel where it runs).
    public let fp32Fallback: GemmEngine
    /// Planned shapes whose engine is not the fallback (read concurrently by the pool's threads;
    /// written only by `add`).
    var routes: [GemmShape: Route] = [:]
    /// Every shape planned, whichever engine runs it (written only by `add`).
    var planned: Set<GemmShape> = []
    /// Shapes met after planning that the plan has not seen (an encoder-decoder's batches vary in
    /// length; a validation batch may be shorter): they run on `fp32Fallback` (fp32) or Loom's
    /// bf16 kernel (a one-off oneDNN primitive where it cannot run) until `planUnplanned()` adds
    /// them between steps.
    let unplanned = Mutex<[GemmShape: Int]>([:])
    /// Every planned shape, in the order planned.
    public private(set) var choices: [Choice] = []
    /// Time spent making primitives and timing engines (start-up cost of `onednn` and `auto`).
    public private(set) var planningSeconds = 0.0

    public init(selection: GemmSelection) {
        self.selection = selection
        fp32Fallback = selection == .openblas ? .openblas : GemmPlan.defaultEngine
        plansUnplannedFP32 = selection == .onednn || selection == .auto
    }

    /// The fp32 engine without a plan (`kernels.gemm: loom` in fp32) and the fallback of every
    /// selection but `openblas`: Loom's kernel where it runs (AVX-512), else OpenBLAS.
    public static var defaultEngine: GemmEngine { F32Gemm.available ? .loom : .openblas }

    /// Whether fp32 shapes met after planning are noted and planned between steps: only where the
    /// plan may put them on oneDNN (`onednn`, `auto`); the other selections run them on the fallback.
    let plansUnplannedFP32: Bool

    /// Whether bf16 products go to oneDNN rather than Loom's kernel under `loom` and `openblas`:
    /// on CPUs with AMX-BF16 (oneDNN's AMX kernels), and where Loom's kernel cannot run.
    public static var bf16PrefersOneDNN: Bool {
        !BF16Gemm.available || (CPUFeatures.current().has(.amx_tile, .amx_bf16) && OneDNN.isa.contains("amx"))
    }

    /// How much faster oneDNN must be on a shape to replace an allocation-free engine (OpenBLAS,
    /// Loom's kernels): within it the timings are machine noise (shared cores swing per-shape
    /// times by several per cent), and oneDNN's execute allocates a little.
    public static let margin = 0.05

    /// The fastest fp32 engine from measured times (nil = could not run): the faster of OpenBLAS
    /// and Loom's kernel (a tie keeps Loom's), then oneDNN only when it took less than
    /// (1 − margin) of that one's time.
    public static func decide(openblas: Double?, loom: Double? = nil, onednn: Double?,
                              margin: Double = GemmPlan.margin) -> GemmEngine {
        var own = GemmEngine.openblas, seconds = openblas
        if let loom, loom <= seconds ?? .infinity { own = .loom; seconds = loom }
        return fasterThan(own, seconds: seconds, onednn: onednn, margin: margin)
    }

    /// oneDNN when it ran and took less than (1 − margin) of `own`'s time (`own` ran, or not at
    /// all), else `own`.
    static func fasterThan(_ own: GemmEngine, seconds: Double?, onednn: Double?, margin: Double) -> GemmEngine {
        guard let onednn else { return own }
        guard let seconds else { return .onednn }
        return onednn < seconds * (1 - margin) ? .onednn : own
    }

    /// The same for a bf16 shape, between Loom's kernel and oneDNN: oneDNN only when it ran and
    /// took less than (1 − margin) of Loom's time; a near-tie keeps Loom's kernel (which, like
    /// OpenBLAS, allocates nothing).
    public static func decideBF16(loom: Double?, onednn: Double?, margin: Double = GemmPlan.margin) -> GemmEngine {
        fasterThan(.loom, seconds: loom, onednn: onednn, margin: margin)
    }

    /// Runs `body` (one training step) while recording every product shape it issues, with how
    /// often: fp32 products on `fallback` (the plan's `fp32Fallback`, so a run's first step uses
    /// the engine of the steps after it wherever the plan keeps it), bf16 products on Loom's
    /// kernel (one-off oneDNN primitives where it cannot run).
    public static func record<T>(fallback: GemmEngine = .openblas, _ body: () -> T) -> (result: T, shapes: [GemmShape: Int]) {
        let saved = Gemm.plan
        Gemm.plan = fallback == .openblas ? GemmPlan(selection: .openblas) : nil
        recorded.withLock { $0.removeAll() }
        recording = true
        let result = body()
        recording = false
        Gemm.plan = saved
        return (result, recorded.withLock { $0 })
    }

    nonisolated(unsafe) static var recording = false
    static let recorded = Mutex<[GemmShape: Int]>([:])

    @inline(never)
    static func note(_ shape: GemmShape) { recorded.withLock { $0[shape, default: 0] += 1 } }

    /// Plans the shapes not planned yet (between steps: no product may run meanwhile): makes a
    /// oneDNN primitive for each that may run on oneDNN, with a slot for every thread, and with
    /// `auto` times every engine the shape can run on (best of `rounds`, alternating) on the
    /// pool's threads at once and keeps the fastest (`decide`, `decideBF16`); `GemmSelection`
    /// says what the fixed selections run.
    public func add(_ shapes: [GemmShape: Int], rounds: Int = 5) {
        let pool = ThreadPool.shared
        let new = shapes.filter { shape, _ in !choices.contains { $0.shape == shape } }
            .sorted { ($0.key.flops, $0.key.m, $0.key.n) > ($1.key.flops, $1.key.m, $1.key.n) }
        if new.isEmpty { return }
        let start = monotonicNanoseconds()
        defer { planningSeconds += Double(monotonicNanoseconds() - start) * 1e-9 }
        OneDNN.prepareThread()   // the planning thread has a slot, and primitives split work for one thread
        let slots = max(Int(loom_thread_slots()), pool.threads)
        let bench = selection == .auto ? GemmTiming(shapes: new.map(\.key), parts: pool.threads) : nil
        defer { bench?.release() }
        for (shape, calls) in new {
            var choice = Choice(shape: shape, calls: calls, engine: .openblas, implementation: "")
            if shape.bf16 {
                // Without Loom's kernel oneDNN is the only bf16 engine (Gemm.serialBF16 stops the
                // program if it has no implementation either).
                let loom = BF16Gemm.available
                let wantsDNN = selection == .onednn || selection == .auto || GemmPlan.bf16PrefersOneDNN
                let matmul = wantsDNN ? OneDNNMatmul(shape, slots: slots) : nil
                choice.engine = loom ? .loom : .onednn
                if matmul != nil, selection != .auto, selection == .onednn || GemmPlan.bf16PrefersOneDNN { choice.engine = .onednn }
                if loom, let matmul, let bench {
                    let times = bench.measure(shape, engines: [.loom, .onednn(matmul)], rounds: rounds)
                    choice.loomSeconds = times[0]
                    choice.onednnSeconds = times[1]
                    choice.engine = GemmPlan.decideBF16(loom: times[0], onednn: times[1])
                }
                if choice.engine == .onednn, let matmul { routes[shape] = .onednn(matmul) }
            } else {
                let matmul = selection == .onednn || selection == .auto ? OneDNNMatmul(shape, slots: slots) : nil
                choice.engine = selection == .openblas ? .openblas : fp32Fallback
                if selection == .onednn, matmul != nil { choice.engine = .onednn }
                if let bench {
                    var engines: [Route] = [.openblas]
                    if F32Gemm.available { engines.append(.loom) }
                    if let matmul { engines.append(.onednn(matmul)) }
                    let times = bench.measure(shape, engines: engines, rounds: rounds)
                    choice.openblasSeconds = times[0]
                    choice.loomSeconds = F32Gemm.available ? times[1] : nil
                    choice.onednnSeconds = matmul == nil ? nil : times.last!
                    choice.engine = GemmPlan.decide(openblas: choice.openblasSeconds, loom: choice.loomSeconds,
                                                    onednn: choice.onednnSeconds)
                }
                if choice.engine != fp32Fallback {
                    switch choice.engine {
                    case .onednn: routes[shape] = .onednn(matmul!)
                    case .loom: routes[shape] = .loom
                    case .openblas: routes[shape] = .openblas
                    }
                }
            }
            switch choice.engine {
            case .onednn: if case .onednn(let matmul)? = routes[shape] { choice.implementation = matmul.implementation }
            case .loom: choice.implementation = shape.bf16 ? BF16Gemm.implementation : F32Gemm.implementation
            case .openblas: break
            }
            choices.append(choice)
            planned.insert(shape)
        }
    }

    /// Notes a product shape this plan has not planned (a lookup for planned ones, a lock for the rest).
    @inline(__always)
    func noteUnplanned(_ shape: GemmShape) {
        if planned.contains(shape) { return }
        unplanned.withLock { $0[shape, default: 0] += 1 }
    }

    /// Plans the shapes met since the last call that were not planned (between steps, as `add`);
    /// returns how many.
    @discardableResult
    public func planUnplanned() -> Int {
        let shapes = unplanned.withLock { pending -> [GemmShape: Int] in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        if !shapes.isEmpty { add(shapes) }
        return shapes.count
    }

    /// The route of `shape`, or nil (the fallback: `fp32Fallback` for fp32, Loom's kernel for bf16).
    @inline(__always)
    func route(_ shape: GemmShape) -> Route? { routes.isEmpty ? nil : routes[shape] }

    /// Shares of the recorded step's fp32 product FLOPs, and shape counts, on `engine`.
    public func split(on engine: GemmEngine) -> (shapes: Int, of: Int, share: Double) {
        share(bf16: false, on: engine)
    }

    /// The same for the bf16 products: how many shapes, and what share of their FLOPs, run on
    /// Loom's kernel (the rest on oneDNN).
    public var bf16Split: (loomShapes: Int, shapes: Int, loomShare: Double) {
        share(bf16: true, on: .loom)
    }

    func share(bf16: Bool, on engine: GemmEngine) -> (Int, Int, Double) {
        let kind = choices.filter { $0.shape.bf16 == bf16 }
        let total = kind.reduce(0) { $0 + $1.shape.flops * Double($1.calls) }
        let on = kind.filter { $0.engine == engine }
        let share = on.reduce(0) { $0 + $1.shape.flops * Double($1.calls) }
        return (on.count, kind.count, total > 0 ? share / total : 0)
    }

    /// One line: the selection and what it chose, e.g. "kernels.gemm auto: Loom avx512 for 20 of
    /// 30 product shapes (88 % of the step's matmul FLOPs), oneDNN (avx512_core) for 10 (12 %),
    /// OpenBLAS for 0 (0 %); planned in 1.2 s"; with bf16 products, the fp32 part only when there
    /// are fp32 shapes, and "bf16: Loom avx512_bf16 for 20 of 24 shapes (90 % of the bf16
    /// FLOPs), oneDNN (avx512_core_bf16) for the rest".
    public var summary: String {
        let h = bf16Split
        var parts: [String] = []
        let fp32 = choices.filter { !$0.shape.bf16 }.count
        if fp32 > 0 || h.shapes == 0 {
            let engines: [(GemmEngine, String)] = [(.loom, "Loom \(F32Gemm.implementation)"), (.onednn, "oneDNN (\(OneDNN.isa))"),
                                                   (.openblas, "OpenBLAS")]
            let used = engines.map { ($0.1, split(on: $0.0)) }.filter { $0.1.shapes > 0 || $0.0 == "OpenBLAS" }
            parts.append(used.enumerated().map { i, e in
                "\(e.0) for \(e.1.shapes)" + (i == 0 ? " of \(fp32) product shapes" : "")
                    + " (\(Int((100 * e.1.share).rounded())) %" + (i == 0 ? " of the step's matmul FLOPs)" : ")")
            }.joined(separator: ", "))
        }
        if h.shapes > 0 {
            parts.append("bf16: Loom \(BF16Gemm.implementation) for \(h.loomShapes) of \(h.shapes) shapes"
                         + " (\(Int((100 * h.loomShare).rounded())) % of the bf16 FLOPs), oneDNN (\(OneDNN.isa)) for the rest")
        }
        return "kernels.gemm \(selection.rawValue): " + parts.joined(separator: "; ") + "; planned in "
            + "\((planningSeconds * 10).rounded() / 10) s"
    }
}

/// Times one shape on each of its engines with every pool thread running it at once on its own
/// operands, as the step's parallel jobs do: OpenBLAS, Loom's kernel or oneDNN for an fp32
/// shape, Loom's kernel or oneDNN for a bf16 one.
struct GemmTiming {
    let parts: Int
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>
    /// The bf16 shapes' A and B (parts × sizes16.a, parts × sizes16.b).
    let a16: UnsafeMutablePointer<UInt16>, b16: UnsafeMutablePointer<UInt16>
    let sizes: (a: Int, b: Int, c: Int), sizes16: (a: Int, b: Int)

    init(shapes: [GemmShape], parts: Int) {
        self.parts = parts
        let e = shapes.filter { !$0.bf16 }.map(\.extents), e16 = shapes.filter(\.bf16).map(\.extents)
        sizes = (e.map(\.a).max() ?? 1, e.map(\.b).max() ?? 1, shapes.map { $0.extents.c }.max() ?? 1)
        sizes16 = (e16.map(\.a).max() ?? 1, e16.map(\.b).max() ?? 1)
        a = .allocate(capacity: parts * sizes.a); b = .allocate(capacity: parts * sizes.b); c = .allocate(capacity: parts * sizes.c)
        a16 = .allocate(capacity: parts * sizes16.a); b16 = .allocate(capacity: parts * sizes16.b)
        for i in 0..<(parts * sizes.a) { a[i] = Float(i % 7) * 0.01 }
        for i in 0..<(parts * sizes.b) { b[i] = Float(i % 5) * 0.01 }
        for i in 0..<(parts * sizes16.a) { a16[i] = BFloat16.round(Float(i % 7) * 0.01) }
        for i in 0..<(parts * sizes16.b) { b16[i] = BFloat16.round(Float(i % 5) * 0.01) }
        c.initialize(repeating: 0, count: parts * sizes.c)
    }

    func release() { a.deallocate(); b.deallocate(); c.deallocate(); a16.deallocate(); b16.deallocate() }

    struct Job: ParallelLoop {
        let t: GemmTiming, shape: GemmShape, engine: GemmPlan.Route, repeats: Int
        func run(_ range: Range<Int>) {
            for p in range {
                let c = t.c + p * t.sizes.c
                if shape.bf16 {
                    let a = t.a16 + p * t.sizes16.a, b = t.b16 + p * t.sizes16.b
                    for _ in 0..<repeats {
                        if case .onednn(let matmul) = engine { _ = matmul.run(a: a, b: b, c: c) } else { BF16Gemm.run(shape, a: a, b: b, c: c) }
                    }
                } else {
                    let a = t.a + p * t.sizes.a, b = t.b + p * t.sizes.b
                    for _ in 0..<repeats {
                        switch engine {
                        case .onednn(let matmul): _ = matmul.run(a: a, b: b, c: c)
                        case .loom: F32Gemm.run(shape, a: a, b: b, c: c)
                        case .openblas: Gemm.openblas(shape, a: a, b: b, c: c)
                        }
                    }
                }
            }
        }
    }

    /// Best seconds per call on each of `engines`, in their order.
    func measure(_ shape: GemmShape, engines: [GemmPlan.Route], rounds: Int) -> [Double] {
        // About a millisecond per round at 100 GFLOP/s, at least one call.
        let repeats = max(1, min(100, Int(1e8 / max(shape.flops, 1))))
        var best = [Double](repeating: .infinity, count: engines.count)
        for engine in engines {   // warm-up: caches, first-touch of the scratchpads
            ThreadPool.shared.parallelFor(parts, Job(t: self, shape: shape, engine: engine, repeats: 1))
        }
        for round in 0..<rounds {
            for i in engines.indices {
                let side = round % 2 == 0 ? i : engines.count - 1 - i
                let t0 = monotonicNanoseconds()
                ThreadPool.shared.parallelFor(parts, Job(t: self, shape: shape, engine: engines[side], repeats: repeats))
                best[side] = min(best[side], Double(monotonicNanoseconds() - t0) * 1e-9 / Double(repeats))
            }
        }
        return best
    }
}
