// GemmPlan: which GEMM engine (OpenBLAS, oneDNN or Loom's bf16 kernel) runs each matrix-product
// shape of a training step: the shapes are recorded during the first step, oneDNN primitives are
// made for them once, and `auto` times the two engines a shape can run on and keeps the faster.
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
/// Loom's own AVX512_BF16 kernel (`BF16Gemm`, bf16 products only).
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

/// What `kernels.gemm` asks for: one engine for every product, or `auto` (the faster per shape).
/// fp32 products choose between OpenBLAS and oneDNN. bf16 products (OpenBLAS has none) choose
/// between oneDNN and Loom's AVX512_BF16 kernel (`BF16Gemm`, where the CPU has AVX512_BF16):
/// `onednn` runs them on oneDNN; `openblas` on Loom's kernel (oneDNN where it cannot run);
/// `auto` times both on each bf16 shape and keeps Loom's unless oneDNN is faster by
/// `GemmPlan.margin` (oneDNN alone where Loom's kernel cannot run; on AMX CPUs its AMX kernels
/// win).
public enum GemmSelection: String, CaseIterable, Sendable, Codable {
    case auto, openblas, onednn
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
        /// not measured (a fixed selection, oneDNN has no implementation, or the engine does not
        /// take the shape: OpenBLAS for fp32 shapes, Loom's kernel for bf16 ones).
        public var openblasSeconds: Double?, onednnSeconds: Double?, loomSeconds: Double?
        public var engine: GemmEngine
        /// oneDNN's implementation name ("brg:avx512_core"), `BF16Gemm.implementation` for Loom's
        /// kernel, "" for OpenBLAS.
        public var implementation: String
    }

    public let selection: GemmSelection
    /// Shapes routed to oneDNN (read concurrently by the pool's threads; written only by `add`).
    var routes: [GemmShape: OneDNNMatmul] = [:]
    /// Every shape planned, whichever engine runs it (written only by `add`).
    var planned: Set<GemmShape> = []
    /// Shapes met after planning that the plan has not seen (an encoder-decoder's batches vary in
    /// length; a validation batch may be shorter): they run on OpenBLAS (fp32) or Loom's bf16
    /// kernel (a one-off oneDNN primitive where it cannot run) until `planUnplanned()` adds them
    /// between steps.
    let unplanned = Mutex<[GemmShape: Int]>([:])
    /// Every planned shape, in the order planned.
    public private(set) var choices: [Choice] = []
    /// Time spent making primitives and timing engines (start-up cost of `onednn` and `auto`).
    public private(set) var planningSeconds = 0.0

    public init(selection: GemmSelection) { self.selection = selection }

    /// How much faster oneDNN must be on a shape to replace OpenBLAS: within it the timings are
    /// machine noise (shared cores swing per-shape times by several per cent), and OpenBLAS's call
    /// allocates nothing while oneDNN's execute allocates a little.
    public static let margin = 0.05

    /// The faster engine from measured times (nil = could not run): oneDNN only when it ran and
    /// took less than (1 − margin) of OpenBLAS's time; a near-tie keeps OpenBLAS.
    public static func decide(openblas: Double?, onednn: Double?, margin: Double = GemmPlan.margin) -> GemmEngine {
        fasterThan(.openblas, seconds: openblas, onednn: onednn, margin: margin)
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

    /// Runs `body` (one training step) on OpenBLAS alone while recording every product shape it
    /// issues, with how often; bf16 products run on Loom's kernel meanwhile (one-off oneDNN
    /// primitives where it cannot run).
    public static func record<T>(_ body: () -> T) -> (result: T, shapes: [GemmShape: Int]) {
        let saved = Gemm.plan
        Gemm.plan = nil
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
    /// `auto` times both engines the shape can run on (best of `rounds`, alternating) on the
    /// pool's threads at once and keeps the faster: OpenBLAS or oneDNN for fp32 shapes, Loom's
    /// kernel or oneDNN for bf16 shapes (`GemmSelection` says what fixed selections mean for bf16).
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
            let loom = shape.bf16 && BF16Gemm.available
            let wantsDNN = shape.bf16 ? !loom || selection != .openblas : selection != .openblas
            let matmul = wantsDNN ? OneDNNMatmul(shape, slots: slots) : nil
            var choice = Choice(shape: shape, calls: calls, engine: .openblas, implementation: "")
            if shape.bf16 {
                // Without Loom's kernel oneDNN is the only bf16 engine (Gemm.serialBF16 stops the
                // program if it has no implementation either).
                choice.engine = loom ? .loom : .onednn
                if loom, matmul != nil, selection == .onednn { choice.engine = .onednn }
                if loom, let matmul, selection == .auto, let bench {
                    let times = bench.measure(shape, matmul: matmul, rounds: rounds)
                    choice.loomSeconds = times.own
                    choice.onednnSeconds = times.onednn
                    choice.engine = GemmPlan.decideBF16(loom: times.own, onednn: times.onednn)
                }
            } else if selection == .onednn {
                choice.engine = matmul == nil ? .openblas : .onednn
            } else if selection == .auto, let bench {
                let times = bench.measure(shape, matmul: matmul, rounds: rounds)
                choice.openblasSeconds = times.own
                choice.onednnSeconds = times.onednn
                choice.engine = GemmPlan.decide(openblas: times.own, onednn: times.onednn)
            }
            if choice.engine == .onednn, let matmul {
                routes[shape] = matmul
                choice.implementation = matmul.implementation
            } else if choice.engine == .loom {
                choice.implementation = BF16Gemm.implementation
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

    /// The oneDNN primitive for `shape`, or nil (OpenBLAS).
    @inline(__always)
    func route(_ shape: GemmShape) -> OneDNNMatmul? { routes.isEmpty ? nil : routes[shape] }

    /// Shares of the recorded step's fp32 product FLOPs, and shape counts, per engine.
    public var split: (onednnShapes: Int, shapes: Int, onednnShare: Double) {
        share(bf16: false, on: .onednn)
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

    /// One line: the selection and what it chose, e.g. "kernels.gemm auto: oneDNN (avx512_core)
    /// for 12 of 30 product shapes (81 % of the step's matmul FLOPs), OpenBLAS for the rest;
    /// planned in 1.2 s"; with bf16 products, the fp32 part only when there are fp32 shapes, and
    /// "bf16: Loom avx512_bf16 for 20 of 24 shapes (90 % of the bf16 FLOPs), oneDNN
    /// (avx512_core_bf16) for the rest".
    public var summary: String {
        let s = split, h = bf16Split
        var parts: [String] = []
        if s.shapes > 0 || h.shapes == 0 {
            parts.append("oneDNN (\(OneDNN.isa)) for \(s.onednnShapes) of \(s.shapes) product shapes"
                         + " (\(Int((100 * s.onednnShare).rounded())) % of the step's matmul FLOPs), OpenBLAS for the rest")
        }
        if h.shapes > 0 {
            parts.append("bf16: Loom \(BF16Gemm.implementation) for \(h.loomShapes) of \(h.shapes) shapes"
                         + " (\(Int((100 * h.loomShare).rounded())) % of the bf16 FLOPs), oneDNN (\(OneDNN.isa)) for the rest")
        }
        return "kernels.gemm \(selection.rawValue): " + parts.joined(separator: "; ") + "; planned in "
            + "\((planningSeconds * 10).rounded() / 10) s"
    }
}

/// Times one shape on both of its engines with every pool thread running it at once on its own
/// operands, as the step's parallel jobs do: OpenBLAS or oneDNN for an fp32 shape, Loom's kernel
/// or oneDNN for a bf16 one.
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
        let t: GemmTiming, shape: GemmShape, matmul: OneDNNMatmul?, repeats: Int
        func run(_ range: Range<Int>) {
            for p in range {
                let c = t.c + p * t.sizes.c
                if shape.bf16 {
                    let a = t.a16 + p * t.sizes16.a, b = t.b16 + p * t.sizes16.b
                    for _ in 0..<repeats {
                        if let matmul { _ = matmul.run(a: a, b: b, c: c) } else { BF16Gemm.run(shape, a: a, b: b, c: c) }
                    }
                } else {
                    let a = t.a + p * t.sizes.a, b = t.b + p * t.sizes.b
                    for _ in 0..<repeats {
                        if let matmul { _ = matmul.run(a: a, b: b, c: c) } else { Gemm.openblas(shape, a: a, b: b, c: c) }
                    }
                }
            }
        }
    }

    /// Best seconds per call on the shape's own engine (OpenBLAS for fp32, Loom's kernel for
    /// bf16) and on oneDNN (nil when it has no primitive).
    func measure(_ shape: GemmShape, matmul: OneDNNMatmul?, rounds: Int) -> (own: Double?, onednn: Double?) {
        // About a millisecond per round at 100 GFLOP/s, at least one call.
        let repeats = max(1, min(100, Int(1e8 / max(shape.flops, 1))))
        var best: [Double] = [.infinity, .infinity]
        let engines: [OneDNNMatmul?] = matmul == nil ? [nil] : [nil, matmul]
        for side in 0..<engines.count {   // warm-up: caches, first-touch of the scratchpads
            ThreadPool.shared.parallelFor(parts, Job(t: self, shape: shape, matmul: engines[side], repeats: 1))
        }
        for round in 0..<rounds {
            for i in 0..<engines.count {
                let side = round % 2 == 0 ? i : engines.count - 1 - i
                let t0 = monotonicNanoseconds()
                ThreadPool.shared.parallelFor(parts, Job(t: self, shape: shape, matmul: engines[side], repeats: repeats))
                best[side] = min(best[side], Double(monotonicNanoseconds() - t0) * 1e-9 / Double(repeats))
            }
        }
        return (best[0], matmul == nil ? nil : best[1])
    }
}
