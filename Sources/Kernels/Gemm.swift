// Gemm: row-major matrix multiply, serial and split over the pool, on the engine the current
// GemmPlan chose for the shape (OpenBLAS sgemm, Loom's AVX-512 kernel or a oneDNN matmul
// primitive; bf16-input products on Loom's AVX512_BF16 kernel or oneDNN). Only the product shapes
// the layers use are offered.
import CBLAS
import Support

/// The part of a product its caller promises is not needed or is zero (causal attention's masked
/// triangle), for a kernel that can skip it; one that computes everything is still right.
/// `offset` places the band: row i of C, or of op(A), and column or k index j.
public struct GemmBand: Sendable, Equatable {
    public enum Kind: Int32, Sendable {
        /// The whole product.
        case none = 0
        /// Row i of C is needed only in columns j ≤ i + offset; other entries may keep what they held.
        case columnsUpTo = 1
        /// op(A)(i, q) = 0 for q > i + offset.
        case reductionUpTo = 2
        /// op(A)(i, q) = 0 for q < i − offset.
        case reductionFrom = 3
    }
    public var kind: Kind
    public var offset: Int
    public init(_ kind: Kind, offset: Int) { self.kind = kind; self.offset = offset }
    public static let none = GemmBand(.none, offset: 0)
}

/// C(M×N) = alpha · op(A)(M×K) · op(B)(K×N) + beta · C, all row-major with leading dimensions.
public enum Gemm {
    /// The plan in force: which engine runs each shape. nil = every fp32 product on
    /// `GemmPlan.defaultEngine` (Loom's kernel where the CPU has AVX-512, else OpenBLAS), the
    /// default `kernels.gemm: loom` in fp32. Set between steps (a Trainer sets its own before
    /// each step), never while products run.
    nonisolated(unsafe) public static var plan: GemmPlan?

    /// One product on the calling thread: on the engine the plan routes this shape to, else on the
    /// plan's `fp32Fallback` (`GemmPlan.defaultEngine` without a plan).
    /// With `bias` (β = 0), C = α·op(A)·op(B) + bias on every row: Loom's kernel adds it as it
    /// stores C, in one pass; OpenBLAS and oneDNN get C filled with the bias rows and β = 1, the
    /// form in which such a product is planned. Loom's kernel skips what `band` says is not
    /// needed; OpenBLAS and oneDNN compute it all.
    @inline(__always)
    public static func serial(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int,
        band: GemmBand = .none
    ) {
        if m == 0 || n == 0 { return }
        precondition(bias == nil || beta == 0, "Gemm.serial: a bias takes beta 0")
        let shape = GemmShape(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
                              alpha: alpha, beta: bias == nil ? beta : 1)
        @inline(__always) func fillBias() {
            if let row = bias { for r in 0..<m { (c + r * ldc).update(from: row, count: n) } }
        }
        if let plan {
            switch plan.route(shape) {
            case .onednn(let matmul)?: fillBias(); if matmul.run(a: a, b: b, c: c) { return }
            case .loom?: F32Gemm.run(shape, a: a, b: b, bias: bias, c: c, band: band); return
            case .openblas?: fillBias(); openblas(shape, a: a, b: b, c: c); return
            case nil: break
            }
            // Only oneDNN's selections route fp32 shapes met later anywhere but their fallback.
            if GemmPlan.recording { GemmPlan.note(shape) } else if plan.plansUnplannedFP32 { plan.noteUnplanned(shape) }
            if plan.fp32Fallback == .loom { F32Gemm.run(shape, a: a, b: b, bias: bias, c: c, band: band); return }
        } else {
            if GemmPlan.recording { GemmPlan.note(shape) }
            if F32Gemm.available { F32Gemm.run(shape, a: a, b: b, bias: bias, c: c, band: band); return }
        }
        fillBias()
        openblas(shape, a: a, b: b, c: c)
    }

    /// Whether every product of this precision runs on Loom's kernel, the one engine that skips a
    /// band's part (causal attention then multiplies a head's rows at once, not in blocks): not
    /// under `onednn` or `auto`, whose plans may route a shape to oneDNN; in fp32 where the
    /// fallback is Loom's kernel; in bf16 where it runs and oneDNN is not preferred (AMX).
    public static func skipsBands(bf16: Bool) -> Bool {
        if let plan, plan.selection == .onednn || plan.selection == .auto { return false }
        if bf16 { return BF16Gemm.available && !GemmPlan.bf16PrefersOneDNN }
        return (plan?.fp32Fallback ?? GemmPlan.defaultEngine) == .loom
    }

    /// The product on OpenBLAS whatever the plan (the timing of `auto` compares against it).
    @inline(__always)
    static func openblas(_ s: GemmShape, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans,
                    Int32(s.m), Int32(s.n), Int32(s.k), s.alpha, a, Int32(s.lda), b, Int32(s.ldb), s.beta, c, Int32(s.ldc))
    }

    /// The same product split across `ThreadPool.shared`: along M when M ≥ N, else along N.
    /// Each thread computes a disjoint block of C (one `serial` call, with its columns of `bias`),
    /// so the result does not depend on timing.
    public static func parallel(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        split(Block(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, bias: bias, c: c, ldc: ldc, splitRows: m >= n))
    }

    /// The operand types a product takes: fp32, or bf16 bits (`UInt16`); C is fp32 either way.
    protocol Operand {
        static func serialProduct(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                                  a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                                  beta: Float, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int)
    }

    /// Runs `job` whole on the calling thread when the pool has one thread or the product is
    /// small, else split across the pool along M when M ≥ N, along N otherwise.
    @inline(__always)
    static func split<T: Operand>(_ job: Block<T>) {
        let pool = ThreadPool.shared
        if pool.threads == 1 || job.m * job.n * job.k < 32 * 32 * 32 {
            T.serialProduct(transA: job.transA, transB: job.transB, m: job.m, n: job.n, k: job.k, alpha: job.alpha,
                            a: job.a, lda: job.lda, b: job.b, ldb: job.ldb, beta: job.beta, bias: job.bias, c: job.c,
                            ldc: job.ldc)
            return
        }
        pool.parallelFor(job.splitRows ? job.m : job.n, grain: 16, job)
    }

    /// One thread's block of C: a range of rows (A's rows) or of columns (B's columns).
    struct Block<T: Operand>: ParallelLoop {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
        let a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int
        let beta: Float, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int, splitRows: Bool
        func run(_ part: Range<Int>) {
            if splitRows {
                let aOffset = transA ? part.lowerBound : part.lowerBound * lda
                T.serialProduct(transA: transA, transB: transB, m: part.count, n: n, k: k, alpha: alpha,
                                a: a + aOffset, lda: lda, b: b, ldb: ldb, beta: beta, bias: bias,
                                c: c + part.lowerBound * ldc, ldc: ldc)
            } else {
                let bOffset = transB ? part.lowerBound * ldb : part.lowerBound
                T.serialProduct(transA: transA, transB: transB, m: m, n: part.count, k: k, alpha: alpha,
                                a: a, lda: lda, b: b + bOffset, ldb: ldb, beta: beta, bias: bias.map { $0 + part.lowerBound },
                                c: c + part.lowerBound, ldc: ldc)
            }
        }
    }

    /// C(fp32) = alpha · op(A) · op(B) + beta · C with A and B in bf16 (raw bits, the high half of
    /// an fp32), on the calling thread (products accumulate in fp32): on the oneDNN primitive the
    /// plan made for the shape, else on Loom's kernel (`BF16Gemm`: the plan chose it, or the shape
    /// is not planned). Where Loom's kernel cannot run (no AVX512_BF16), a shape the plan has not
    /// routed runs on a one-off oneDNN primitive (allocates: the recorded first step, tests), and
    /// the program stops when oneDNN cannot run it either (bf16 training checks the CPU at start).
    /// With `bias` (β = 0), C = α·op(A)·op(B) + bias on every row: Loom's kernel adds it as it
    /// stores C, in one pass; oneDNN gets C filled with the bias rows and β = 1, the form in which
    /// such a product is planned. Loom's kernel skips what `band` says is not needed; oneDNN
    /// computes it all.
    public static func serialBF16(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int,
        band: GemmBand = .none
    ) {
        if m == 0 || n == 0 { return }
        precondition(bias == nil || beta == 0, "Gemm.serialBF16: a bias takes beta 0")
        let shape = GemmShape(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
                              alpha: alpha, beta: bias == nil ? beta : 1, bf16: true)
        var bias = bias   // nil once C holds the bias rows
        func fillBias() {
            if let row = bias { for r in 0..<m { (c + r * ldc).update(from: row, count: n) } }
            bias = nil
        }
        if let plan, case .onednn(let matmul)? = plan.route(shape) {
            fillBias()
            if matmul.run(a: a, b: b, c: c) { return }
        }
        if GemmPlan.recording { GemmPlan.note(shape) } else if let plan { plan.noteUnplanned(shape) }
        if BF16Gemm.available {
            BF16Gemm.run(shape, a: a, b: b, bias: bias, c: c, band: band)
            return
        }
        fillBias()
        if k == 0 {   // oneDNN refuses an empty inner dimension: C = beta · C
            for r in 0..<m { for j in 0..<n { c[r * ldc + j] = shape.beta == 0 ? 0 : shape.beta * c[r * ldc + j] } }
            return
        }
        guard OneDNNMatmul.runOnce(shape, a: a, b: b, c: c) else {
            fatalError("Gemm.serialBF16: oneDNN cannot run \(shape) on this CPU (oneDNN ISA \(OneDNN.isa))")
        }
    }

    /// `serialBF16` split across `ThreadPool.shared` as `parallel` splits.
    public static func parallelBF16(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
        beta: Float, bias: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        split(Block(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                    b: b, ldb: ldb, beta: beta, bias: bias, c: c, ldc: ldc, splitRows: m >= n))
    }
}

extension Float: Gemm.Operand {
    @inline(__always)
    static func serialProduct(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int) {
        Gemm.serial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                    beta: beta, bias: bias, c: c, ldc: ldc)
    }
}

extension UInt16: Gemm.Operand {
    @inline(__always)
    static func serialProduct(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                              a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
                              beta: Float, bias: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>, ldc: Int) {
        Gemm.serialBF16(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                        beta: beta, bias: bias, c: c, ldc: ldc)
    }
}
