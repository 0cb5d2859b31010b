// The GEMM engines against each other and against a double-precision product: oneDNN matmul
// primitives for every form the layers issue (forward, input and weight gradients, attention's
// scaled and strided products; beta 0 and 1; tight and padded leading dimensions), routed through
// Gemm.serial and Gemm.parallel by a plan; bf16 inputs against a rounding reference on oneDNN and
// on Loom's bf16 kernel; `auto`'s choice as a function of timings, for fp32 and bf16 shapes.
import Testing
import Kernels
import Support

@Suite(.serialized) struct GemmEngineTests {
    /// Deterministic values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    /// The product forms of Linear, Attention and the LM head, at odd sizes no other suite uses
    /// (so a plan of another test's trainer cannot route them): (transA, transB, alpha, beta,
    /// padded leading dimensions as packed QKV rows are).
    static let forms: [(Bool, Bool, Float, Float, Bool)] = [
        (false, false, 1, 0, false), (false, false, 1, 1, false),   // forward, without and with bias
        (false, true, 1, 0, false), (false, true, 1, 1, false),     // dinp = dout · Wᵀ, overwritten or added
        (true, false, 1, 1, false),                                 // dweight += inpᵀ · dout
        (false, true, 0.125, 0, true),                              // attention scores Q·Kᵀ/√d from packed QKV
        (false, false, 1, 0, true),                                 // attention P·V
        (true, false, 1, 1, true),                                  // attention dK, dV += ᵀ products
    ]

    static func shape(_ form: (Bool, Bool, Float, Float, Bool), m: Int = 37, n: Int = 45, k: Int = 29, bf16: Bool = false) -> GemmShape {
        let (ta, tb, alpha, beta, padded) = form
        let pad = padded ? 7 : 0
        return GemmShape(transA: ta, transB: tb, m: m, n: n, k: k, lda: (ta ? m : k) + pad, ldb: (tb ? k : n) + pad,
                         ldc: n + pad, alpha: alpha, beta: beta, bf16: bf16)
    }

    /// C = alpha · op(A) · op(B) + beta · C in double precision.
    static func reference(_ s: GemmShape, a: [Float], b: [Float], c: [Float]) -> [Double] {
        var out = c.map(Double.init)
        for i in 0..<s.m {
            for j in 0..<s.n {
                var sum = 0.0
                for p in 0..<s.k {
                    sum += Double(a[s.transA ? p * s.lda + i : i * s.lda + p]) * Double(b[s.transB ? j * s.ldb + p : p * s.ldb + j])
                }
                out[i * s.ldc + j] = Double(s.alpha) * sum + Double(s.beta) * Double(c[i * s.ldc + j])
            }
        }
        return out
    }

    static func operands(_ s: GemmShape) -> (a: [Float], b: [Float], c: [Float]) {
        (values((s.transA ? s.k : s.m) * s.lda, seed: 1), values((s.transB ? s.n : s.k) * s.ldb, seed: 2),
         values(s.m * s.ldc, seed: 3))
    }

    /// Gemm.serial on whatever engine `plan` gives the shape.
    static func serial(_ s: GemmShape, _ a: [Float], _ b: [Float], _ c: [Float], plan: GemmPlan?) -> [Float] {
        var c = c
        Gemm.plan = plan
        c.withUnsafeMutableBufferPointer { cp in
            Gemm.serial(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha, a: a, lda: s.lda,
                        b: b, ldb: s.ldb, beta: s.beta, c: cp.baseAddress!, ldc: s.ldc)
        }
        Gemm.plan = nil
        return c
    }

    @Test(arguments: 0..<forms.count)
    func oneDNNMatchesOpenBLASAndTheExactProduct(form: Int) throws {
        let s = Self.shape(Self.forms[form])
        let plan = GemmPlan(selection: .onednn)
        plan.add([s: 1])
        let choice = try #require(plan.choices.first)
        #expect(choice.engine == .onednn && !choice.implementation.isEmpty, "\(s): \(choice)")
        let (a, b, c) = Self.operands(s)
        let exact = Self.reference(s, a: a, b: b, c: c)
        let openblas = Self.serial(s, a, b, c, plan: GemmPlan(selection: .openblas))
        let onednn = Self.serial(s, a, b, c, plan: plan)
        var worst = (openblas: 0.0, onednn: 0.0)
        for i in 0..<s.m {
            for j in 0..<s.ldc {
                let e = i * s.ldc + j
                if j >= s.n {   // padding between rows of C is untouched
                    #expect(openblas[e] == c[e] && onednn[e] == c[e], "\(s): padding at \(i), \(j)")
                    continue
                }
                worst.openblas = max(worst.openblas, abs(Double(openblas[e]) - exact[e]))
                worst.onednn = max(worst.onednn, abs(Double(onednn[e]) - exact[e]))
            }
        }
        #expect(worst.openblas < 1e-5 && worst.onednn < 1e-5, "\(s): worst \(worst)")
        // The routed call ran a oneDNN primitive of this shape (the same bits as running one directly).
        var direct = c
        let matmul = try #require(OneDNNMatmul(s, slots: 256))
        let ran = direct.withUnsafeMutableBufferPointer { matmul.run(a: a, b: b, c: $0.baseAddress!) }
        #expect(ran && direct == onednn, "\(s): Gemm.serial did not run the planned primitive")
    }

    /// Gemm.parallel splits rows (M ≥ N) or columns over the pool: the block shapes it issues are
    /// recorded, planned on oneDNN, and the split product matches OpenBLAS's.
    @Test(arguments: [(201, 75, 53), (61, 203, 47)])
    func parallelBlocksRunOnOneDNN(m: Int, n: Int, k: Int) throws {
        ThreadPool.configure(threads: 2)
        for form in Self.forms {
            let s = Self.shape(form, m: m, n: n, k: k)
            let (a, b, c) = Self.operands(s)
            func parallel(_ plan: GemmPlan?) -> [Float] {
                var out = c
                Gemm.plan = plan
                out.withUnsafeMutableBufferPointer { cp in
                    Gemm.parallel(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha, a: a, lda: s.lda,
                                  b: b, ldb: s.ldb, beta: s.beta, c: cp.baseAddress!, ldc: s.ldc)
                }
                Gemm.plan = nil
                return out
            }
            let (openblas, shapes) = GemmPlan.record { parallel(nil) }
            #expect(shapes.count >= 1 && shapes.keys.allSatisfy { $0.m < s.m || $0.n < s.n }, "\(s): recorded \(shapes.keys)")
            let plan = GemmPlan(selection: .onednn)
            plan.add(shapes)
            #expect(plan.choices.allSatisfy { $0.engine == .onednn })
            let onednn = parallel(plan)
            let exact = Self.reference(s, a: a, b: b, c: c)
            var worst = (openblas: 0.0, onednn: 0.0)
            for i in 0..<s.m { for j in 0..<s.n {
                worst.onednn = max(worst.onednn, abs(Double(onednn[i * s.ldc + j]) - exact[i * s.ldc + j]))
                worst.openblas = max(worst.openblas, abs(Double(openblas[i * s.ldc + j]) - exact[i * s.ldc + j]))
            } }
            #expect(worst.onednn < 1e-5 && worst.openblas < 1e-5, "\(s): worst \(worst)")
        }
    }

    /// bf16 × bf16 products are exact in fp32, so each bf16 engine must agree with sgemm of the
    /// widened inputs to fp32-accumulation rounding, for every form and through the pool's split:
    /// oneDNN's bf16 matmul (a plan of `onednn` routes the recorded shapes to it) and the engine
    /// products run on without a plan (Loom's kernel where the CPU has AVX512_BF16).
    @Test(arguments: 0..<forms.count)
    func bf16MatchesSgemmOfTheRoundedInputs(form: Int) throws {
        ThreadPool.configure(threads: 2)
        for (m, n, k, split) in [(37, 45, 29, false), (130, 70, 96, true)] {
            let s = Self.shape(Self.forms[form], m: m, n: n, k: k)
            let (a, b, c) = Self.operands(s)
            let a16 = a.map(BFloat16.round), b16 = b.map(BFloat16.round)
            let expected = Self.serial(s, a16.map(BFloat16.widen), b16.map(BFloat16.widen), c, plan: nil)
            func product(_ plan: GemmPlan?) -> [Float] {
                var got = c
                Gemm.plan = plan
                got.withUnsafeMutableBufferPointer { cp in
                    if split {
                        Gemm.parallelBF16(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: s.alpha, a: a16, lda: s.lda,
                                          b: b16, ldb: s.ldb, beta: s.beta, c: cp.baseAddress!, ldc: s.ldc)
                    } else {
                        Gemm.serialBF16(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: s.alpha, a: a16, lda: s.lda,
                                        b: b16, ldb: s.ldb, beta: s.beta, c: cp.baseAddress!, ldc: s.ldc)
                    }
                }
                Gemm.plan = nil
                return got
            }
            let (unplanned, shapes) = GemmPlan.record { product(nil) }
            let onednn = GemmPlan(selection: .onednn)
            onednn.add(shapes)
            #expect(!onednn.choices.isEmpty && onednn.choices.allSatisfy { $0.engine == .onednn }, "\(s): \(onednn.choices)")
            for (engine, got) in [("unplanned", unplanned), ("oneDNN", product(onednn))] {
                var worst = 0.0
                for i in 0..<m { for j in 0..<s.ldc {
                    let e = i * s.ldc + j
                    if j >= n { #expect(got[e] == c[e]); continue }
                    worst = max(worst, abs(Double(got[e]) - Double(expected[e])))
                } }
                // k terms of magnitude < 1 summed in fp32 by two different orders.
                #expect(worst < 4e-6 * Double(k), "\(s) split \(split) \(engine): worst \(worst)")
                // And rounding the inputs mattered: the fp32 product differs from the bf16 one.
                let fp32 = Self.serial(s, a, b, c, plan: nil)
                #expect(zip(fp32, got).contains { abs($0 - $1) > 1e-3 }, "\(s) \(engine): bf16 inputs gave the fp32 product")
            }
        }
    }

    /// On a CPU with AVX512_BF16 oneDNN runs bf16 products on its bf16 kernels.
    @Test func bf16UsesTheCPUsBF16Kernels() throws {
        let cpu = CPUFeatures.current()
        let implementation = try #require(OneDNN.implementation(bf16: true))
        if cpu.has(.avx512_bf16) || cpu.has(.amx_bf16) {
            #expect(implementation.contains("bf16") || implementation.contains("amx"), "\(implementation) on \(OneDNN.isa)")
        }
        #expect(!OneDNN.isa.isEmpty && OneDNN.version.hasPrefix("2."))
    }

    @Test func autoKeepsTheFasterEngine() {
        #expect(GemmPlan.decide(openblas: 2e-3, onednn: 1e-3) == .onednn)
        #expect(GemmPlan.decide(openblas: 1e-3, onednn: 2e-3) == .openblas)
        #expect(GemmPlan.decide(openblas: 1e-3, onednn: 1e-3) == .openblas)   // a tie keeps OpenBLAS
        #expect(GemmPlan.decide(openblas: 1e-3, onednn: 0.97e-3) == .openblas) // so does a win within the margin
        #expect(GemmPlan.decide(openblas: 1e-3, onednn: 0.94e-3) == .onednn)
        #expect(GemmPlan.decide(openblas: 1e-3, onednn: 0.97e-3, margin: 0) == .onednn)
        #expect(GemmPlan.decide(openblas: 1e-3, onednn: nil) == .openblas)    // oneDNN could not run it
        #expect(GemmPlan.decide(openblas: nil, onednn: 1e-3) == .onednn)
        // fp32 with Loom's kernel: the faster of OpenBLAS and Loom (a tie keeps Loom), then oneDNN by the margin.
        #expect(GemmPlan.decide(openblas: 1e-3, loom: 0.9e-3, onednn: 0.95e-3) == .loom)
        #expect(GemmPlan.decide(openblas: 1e-3, loom: 1e-3, onednn: nil) == .loom)
        #expect(GemmPlan.decide(openblas: 0.9e-3, loom: 1e-3, onednn: 0.87e-3) == .openblas)
        #expect(GemmPlan.decide(openblas: 1e-3, loom: 0.9e-3, onednn: 0.8e-3) == .onednn)
        #expect(GemmPlan.decide(openblas: nil, loom: 1e-3, onednn: nil) == .loom)
        // bf16: Loom's kernel unless oneDNN beats it by the margin.
        #expect(GemmPlan.decideBF16(loom: 2e-3, onednn: 1e-3) == .onednn)
        #expect(GemmPlan.decideBF16(loom: 1e-3, onednn: 2e-3) == .loom)
        #expect(GemmPlan.decideBF16(loom: 1e-3, onednn: 0.97e-3) == .loom)
        #expect(GemmPlan.decideBF16(loom: 1e-3, onednn: 0.94e-3) == .onednn)
        #expect(GemmPlan.decideBF16(loom: 1e-3, onednn: nil) == .loom)      // oneDNN could not run it
        #expect(GemmPlan.decideBF16(loom: nil, onednn: 1e-3) == .onednn)    // nor Loom's kernel
    }

    /// `auto` times both engines on each shape and keeps what `decide` says; `openblas` routes
    /// nothing.
    @Test func autoPlansFromMeasuredTimes() throws {
        ThreadPool.configure(threads: 2)
        let shapes = [Self.shape(Self.forms[0], m: 96, n: 80, k: 64): 3, Self.shape(Self.forms[4], m: 48, n: 80, k: 96): 2]
        let plan = GemmPlan(selection: .auto)
        plan.add(shapes, rounds: 2)
        #expect(plan.choices.count == 2)
        for c in plan.choices {
            let openblas = try #require(c.openblasSeconds), onednn = try #require(c.onednnSeconds)
            #expect(openblas > 0 && onednn > 0 && c.calls == shapes[c.shape])
            #expect((c.loomSeconds != nil) == F32Gemm.available)
            #expect(c.engine == GemmPlan.decide(openblas: openblas, loom: c.loomSeconds, onednn: onednn))
        }
        let none = GemmPlan(selection: .openblas)
        none.add(shapes)
        #expect(none.choices.allSatisfy { $0.engine == .openblas && $0.openblasSeconds == nil } && none.split(on: .onednn).shapes == 0)
        // `loom`: Loom's kernel untimed where it runs, else OpenBLAS.
        let own = GemmPlan(selection: .loom)
        own.add(shapes)
        #expect(own.choices.allSatisfy { $0.engine == (F32Gemm.available ? .loom : .openblas) && $0.loomSeconds == nil })
    }

    /// bf16 shapes under `auto` are timed on oneDNN and Loom's kernel and run on the one `decideBF16`
    /// keeps, matching sgemm of the widened inputs; `openblas` puts them on Loom's kernel untimed,
    /// `onednn` on oneDNN.
    @Test(.enabled(if: BF16Gemm.available, "Loom's bf16 kernel needs AVX512_BF16, which this CPU (or build) lacks"))
    func bf16ShapesPlanOnLoomsKernelOrOneDNN() throws {
        ThreadPool.configure(threads: 2)
        let shapes = [Self.shape(Self.forms[1], m: 88, n: 104, k: 72, bf16: true): 2,
                      Self.shape(Self.forms[2], m: 56, n: 90, k: 66, bf16: true): 1,
                      Self.shape(Self.forms[4], m: 72, n: 40, k: 120, bf16: true): 1]
        for selection in GemmSelection.allCases {
            let plan = GemmPlan(selection: selection)
            plan.add(shapes, rounds: 2)
            #expect(plan.choices.count == shapes.count && plan.bf16Split.shapes == shapes.count && plan.split(on: .onednn).of == 0)
            for choice in plan.choices {
                let s = choice.shape
                switch selection {
                case .auto:
                    let loom = try #require(choice.loomSeconds), onednn = try #require(choice.onednnSeconds)
                    #expect(loom > 0 && onednn > 0 && choice.openblasSeconds == nil)
                    #expect(choice.engine == GemmPlan.decideBF16(loom: loom, onednn: onednn), "\(s): \(choice)")
                case .openblas, .loom:
                    let engine: GemmEngine = GemmPlan.bf16PrefersOneDNN ? .onednn : .loom
                    #expect(choice.engine == engine && choice.loomSeconds == nil && choice.onednnSeconds == nil, "\(s): \(choice)")
                case .onednn:
                    #expect(choice.engine == .onednn && choice.loomSeconds == nil, "\(s): \(choice)")
                }
                #expect(choice.engine == .loom ? choice.implementation == BF16Gemm.implementation
                        : !choice.implementation.isEmpty && choice.implementation != BF16Gemm.implementation, "\(s): \(choice)")
                // The planned engine's product matches sgemm of the widened inputs.
                let (a, b, c) = Self.operands(s)
                let a16 = a.map(BFloat16.round), b16 = b.map(BFloat16.round)
                let expected = Self.serial(s, a16.map(BFloat16.widen), b16.map(BFloat16.widen), c, plan: nil)
                var got = c
                Gemm.plan = plan
                got.withUnsafeMutableBufferPointer { cp in
                    Gemm.serialBF16(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha, a: a16, lda: s.lda,
                                    b: b16, ldb: s.ldb, beta: s.beta, c: cp.baseAddress!, ldc: s.ldc)
                }
                Gemm.plan = nil
                var worst = 0.0
                for i in 0..<s.m { for j in 0..<s.n { worst = max(worst, abs(Double(got[i * s.ldc + j]) - Double(expected[i * s.ldc + j]))) } }
                #expect(worst < 4e-6 * Double(s.k), "\(s) on \(choice.engine): worst \(worst)")
            }
            #expect(plan.summary.contains("bf16: Loom avx512_bf16 for \(plan.bf16Split.loomShapes) of \(shapes.count) shapes"), "\(plan.summary)")
        }
    }

    /// Bands are skipped (and attention takes whole heads) only where Loom's kernel runs every
    /// product of the precision: never under `onednn` or `auto`, not in fp32 under `openblas`.
    @Test func bandsAreSkippedOnlyWhereLoomsKernelRunsEveryProduct() {
        defer { Gemm.plan = nil }
        Gemm.plan = nil
        #expect(Gemm.skipsBands(bf16: false) == F32Gemm.available)
        #expect(Gemm.skipsBands(bf16: true) == (BF16Gemm.available && !GemmPlan.bf16PrefersOneDNN))
        for selection in [GemmSelection.onednn, .auto] {
            Gemm.plan = GemmPlan(selection: selection)
            #expect(!Gemm.skipsBands(bf16: false) && !Gemm.skipsBands(bf16: true), "\(selection)")
        }
        Gemm.plan = GemmPlan(selection: .openblas)
        #expect(!Gemm.skipsBands(bf16: false))
        #expect(Gemm.skipsBands(bf16: true) == (BF16Gemm.available && !GemmPlan.bf16PrefersOneDNN))
    }

    /// A shape met after planning is noted, planned between steps by `planUnplanned`, and then runs
    /// on its planned engine without being noted again; planned shapes are never noted.
    @Test func shapesMetAfterPlanningArePlannedBetweenSteps() {
        ThreadPool.configure(threads: 2)
        let s = Self.shape(Self.forms[0], m: 23, n: 41, k: 19)
        let (a, b, c) = Self.operands(s)
        let a16 = a.map(BFloat16.round), b16 = b.map(BFloat16.round)
        let plan = GemmPlan(selection: .openblas)
        func run() -> [Float] {
            var out = c
            Gemm.plan = plan
            out.withUnsafeMutableBufferPointer { cp in
                Gemm.serialBF16(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha, a: a16, lda: s.lda,
                                b: b16, ldb: s.ldb, beta: s.beta, c: cp.baseAddress!, ldc: s.ldc)
            }
            Gemm.plan = nil
            return out
        }
        let once = run()
        #expect(plan.choices.isEmpty)
        #expect(plan.planUnplanned() == 1)
        let bf16Shape = GemmShape(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, lda: s.lda, ldb: s.ldb,
                                  ldc: s.ldc, alpha: s.alpha, beta: s.beta, bf16: true)
        // `openblas` puts bf16 products on Loom's kernel (oneDNN where it cannot run).
        #expect(plan.choices.map(\.shape) == [bf16Shape] && plan.choices[0].engine == (BF16Gemm.available ? .loom : .onednn))
        #expect(run() == once, "the planned engine computes what the unplanned call did")
        #expect(plan.planUnplanned() == 0)
    }
}
