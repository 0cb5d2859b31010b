// F32Gemm (Loom's AVX-512 fp32 kernel) against a double-precision product: the four transpose
// forms, ragged m, n and k (k past one packed block, n past one packed block, rows past the last
// whole register tile), leading dimensions wider than the matrices, α ≠ 1, β of 0 (C filled with
// NaN first), 1 and ½, k = 0; bands; a plan under `kernels.gemm: loom` runs it, allocating nothing.
import Testing
import Kernels
import TestSupport
import Support

@Suite(.enabled(if: F32Gemm.available, "Loom's fp32 kernel needs AVX-512, which this CPU (or build) lacks"))
struct F32GemmTests {
    /// C from Loom's kernel for `t`, whose operands are bf16 values widened (exact in fp32).
    static func run(_ t: BF16GemmTests.Case, _ a: [Float], _ b: [Float], _ c: [Float]) -> [Float] {
        var out = c
        out.withUnsafeMutableBufferPointer { cp in
            F32Gemm.product(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a, lda: t.lda,
                            b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
        }
        return out
    }

    /// The bf16 kernel's sizes and cases (the same packing edges: 16 lanes, an 8×48 tile, blocks
    /// of k and n), on the same values widened to fp32, checked by the same reference.
    @Test(arguments: 0..<BF16GemmTests.sizes.count)
    func matchesTheExactProduct(size: Int) {
        let (m, n, k) = BF16GemmTests.sizes[size]
        for transA in [false, true] {
            for transB in [false, true] {
                for (variant, (alpha, beta)) in [(Float(1), Float(0)), (1, 1), (-0.75, 0.5)].enumerated() {
                    let t = BF16GemmTests.Case(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                               pad: [0, 5, 1][variant])
                    let (a, b, c) = t.operands()
                    t.check(Self.run(t, a.map(BFloat16.widen), b.map(BFloat16.widen), c), a: a, b: b, c: c)
                }
            }
        }
    }

    /// Bands skip only what they may, as in Loom's bf16 kernel (BF16GemmTests).
    @Test(arguments: [GemmBand.Kind.columnsUpTo, .reductionUpTo, .reductionFrom])
    func bandsSkipOnlyWhatTheyMay(kind: GemmBand.Kind) {
        BF16GemmTests.expectBandsSkipOnlyWhatTheyMay(kind) { t, a, b, c, band in
            var out = c
            let a = a.map(BFloat16.widen), b = b.map(BFloat16.widen)
            out.withUnsafeMutableBufferPointer { cp in
                F32Gemm.product(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a,
                                lda: t.lda, b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc, band: band)
            }
            return out
        }
    }

    /// With a bias and β = 0, C (NaN before) is the product plus the bias on every row, its
    /// padding untouched; Gemm.serial under an `openblas` plan (OpenBLAS on C filled with the bias
    /// rows, β = 1) gives the same within the same error.
    @Test(arguments: 0..<BF16GemmTests.sizes.count)
    func addsTheBiasAsItStoresC(size: Int) {
        let (m, n, k) = BF16GemmTests.sizes[size]
        for (transA, transB) in [(false, false), (true, false), (false, true)] {
            for alpha in [Float(1), -0.75] {
                let t = BF16GemmTests.Case(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: 0, pad: 3)
                let (a16, b16, nan) = t.operands()
                let a = a16.map(BFloat16.widen), b = b16.map(BFloat16.widen)
                let bias = BF16GemmTests.values(n, seed: UInt64(9 + n)).map(BFloat16.widen)
                var got = nan, serial = nan
                got.withUnsafeMutableBufferPointer { cp in
                    F32Gemm.product(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: t.lda,
                                    b: b, ldb: t.ldb, beta: 0, bias: bias, c: cp.baseAddress!, ldc: t.ldc)
                }
                let saved = Gemm.plan
                Gemm.plan = GemmPlan(selection: .openblas)
                serial.withUnsafeMutableBufferPointer { cp in
                    Gemm.serial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: t.lda,
                                b: b, ldb: t.ldb, beta: 0, bias: bias, c: cp.baseAddress!, ldc: t.ldc)
                }
                Gemm.plan = saved
                // The reference: α·op(A)·op(B) + 1·C with C's rows the bias (its padding the NaN it was).
                var withBias = nan
                for i in 0..<m { for j in 0..<n { withBias[i * t.ldc + j] = bias[j] } }
                var reference = t
                reference.beta = 1
                reference.check(got, a: a16, b: b16, c: withBias, label: " with a bias")
                reference.check(serial, a: a16, b: b16, c: withBias, label: " with a bias, Gemm.serial on OpenBLAS")
            }
        }
    }

    /// k = 0: C = β·C, and β = 0 overwrites NaN with zeros.
    @Test func emptyInnerDimensionScalesC() {
        for beta in [Float(0), 1, 0.5] {
            let t = BF16GemmTests.Case(transA: true, transB: false, m: 19, n: 35, k: 0, alpha: 2, beta: beta, pad: 2)
            let (a, b, c) = t.operands()
            let got = Self.run(t, a.map(BFloat16.widen), b.map(BFloat16.widen), c)
            t.check(got, a: a, b: b, c: c)
            if beta == 0 { #expect((0..<t.m).allSatisfy { i in (0..<t.n).allSatisfy { got[i * t.ldc + $0] == 0 } }) }
        }
    }

    /// Under a `loom` plan Gemm.serial runs Loom's kernel (the same bits) on shapes it has not
    /// planned and on planned ones, and Gemm.parallel its split blocks; neither allocates.
    @Test func aLoomPlanRunsItAndAllocatesNothing() {
        ThreadPool.configure(threads: 2)
        let t = BF16GemmTests.Case(transA: false, transB: true, m: 150, n: 130, k: 70, alpha: 1, beta: 1, pad: 3)
        let (a16, b16, c) = t.operands()
        let a = a16.map(BFloat16.widen), b = b16.map(BFloat16.widen)
        let direct = Self.run(t, a, b, c)
        let saved = Gemm.plan
        defer { Gemm.plan = saved }
        let plan = GemmPlan(selection: .loom)
        #expect(plan.fp32Fallback == .loom)
        Gemm.plan = plan
        var serial = c, parallel = c
        func products() {
            serial.withUnsafeMutableBufferPointer { cp in
                Gemm.serial(transB: true, m: t.m, n: t.n, k: t.k, a: a, lda: t.lda, b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
            }
            parallel.withUnsafeMutableBufferPointer { cp in
                Gemm.parallel(transB: true, m: t.m, n: t.n, k: t.k, a: a, lda: t.lda, b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
            }
        }
        products()
        #expect(serial == direct, "Gemm.serial under an unplanned `loom` plan is Loom's kernel")
        t.check(parallel, a: a16, b: b16, c: c, label: " split over the pool")
        plan.planUnplanned()
        #expect(plan.choices.allSatisfy { $0.engine == .loom && $0.implementation == F32Gemm.implementation })
        serial = c
        products()
        #expect(serial == direct, "Gemm.serial on a planned shape is Loom's kernel")
        let fewest = fewestAllocations(products)
        #expect(fewest == 0, "\(fewest) heap allocations in two fp32 products")
    }
}
