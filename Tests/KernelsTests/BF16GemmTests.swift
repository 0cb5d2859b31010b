// BF16Gemm (Loom's AVX512_BF16 kernel) against a double-precision product of the widened bf16
// values: the four transpose forms, ragged m, n and k (odd k, k past one packed block, n past one
// packed block, rows past the last whole register tile), leading dimensions wider than the
// matrices, α ≠ 1, β of 0 (C filled with NaN first), 1 and ½, k = 0; bands (causal attention's
// triangle) skipping only what they may; Gemm.serialBF16 and
// parallelBF16 on it without a plan, allocating nothing.
import Testing
import Kernels
import TestSupport
import Support

@Suite(.enabled(if: BF16Gemm.available, "Loom's bf16 kernel needs AVX512_BF16, which this CPU (or build) lacks"))
struct BF16GemmTests {
    /// Deterministic bf16 values in [-1, 1).
    static func values(_ count: Int, seed: UInt64) -> [UInt16] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return BFloat16.round(Float(state >> 40) / Float(1 << 23) - 1)
        }
    }

    /// One product's operands and parameters: op(A) m×k, op(B) k×n, C m×n, each with `pad`
    /// extra elements per row.
    struct Case: CustomStringConvertible {
        var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, pad: Int
        var lda: Int { (transA ? m : k) + pad }
        var ldb: Int { (transB ? k : n) + pad }
        var ldc: Int { n + pad + 1 }
        var description: String {
            "\(m)×\(n)×\(k) \(transA ? "Aᵀ" : "A")·\(transB ? "Bᵀ" : "B") α\(alpha) β\(beta) pad \(pad)"
        }

        func operands() -> (a: [UInt16], b: [UInt16], c: [Float]) {
            let a = BF16GemmTests.values(max((transA ? k : m) * lda, 1), seed: UInt64(1 + m))
            let b = BF16GemmTests.values(max((transB ? n : k) * ldb, 1), seed: UInt64(2 + n))
            // β = 0 must not read C: fill it with NaN.
            let c = beta == 0 ? [Float](repeating: .nan, count: m * ldc)
                : BF16GemmTests.values(m * ldc, seed: 3).map(BFloat16.widen)
            return (a, b, c)
        }

        /// Every element of `got` within fp32 accumulation error of the exact α·op(A)·op(B) + β·C
        /// (k + 4 roundings of at most one ulp of the magnitudes summed), and C's padding untouched.
        func check(_ got: [Float], a: [UInt16], b: [UInt16], c: [Float], label: String = "") {
            var bad = 0, worst = 0.0, firstBad = ""
            for i in 0..<m {
                for j in 0..<ldc {
                    let e = i * ldc + j
                    if j >= n {
                        if got[e].bitPattern != c[e].bitPattern { bad += 1; if firstBad.isEmpty { firstBad = "padding at \(i), \(j)" } }
                        continue
                    }
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        let x = Double(BFloat16.widen(a[transA ? p * lda + i : i * lda + p]))
                        let y = Double(BFloat16.widen(b[transB ? j * ldb + p : p * ldb + j]))
                        sum += x * y
                        magnitude += abs(x * y)
                    }
                    let old = beta == 0 ? 0 : Double(c[e])
                    let exact = Double(alpha) * sum + Double(beta) * old
                    let tolerance = Double(Float.ulpOfOne) * Double(k + 4) * (abs(Double(alpha)) * magnitude + abs(Double(beta) * old))
                    let error = abs(Double(got[e]) - exact)
                    if !(error <= tolerance) {
                        bad += 1
                        if firstBad.isEmpty { firstBad = "(\(i), \(j)): \(got[e]) against \(exact) ± \(tolerance)" }
                    }
                    if error.isFinite { worst = max(worst, error) }
                }
            }
            #expect(bad == 0, "\(self)\(label): \(bad) wrong, first \(firstBad); worst error \(worst)")
        }
    }

    /// C from Loom's kernel.
    static func run(_ t: Case, _ a: [UInt16], _ b: [UInt16], _ c: [Float]) -> [Float] {
        var out = c
        out.withUnsafeMutableBufferPointer { cp in
            BF16Gemm.product(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a, lda: t.lda,
                             b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
        }
        return out
    }

    /// (m, n, k): single rows, columns and pairs; ragged sizes around the 16-lane vectors and the
    /// register tile; k past a 256 packed block (odd); n past a 384 packed block; both at once.
    static let sizes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 15, 17), (15, 1, 33), (17, 33, 1), (33, 17, 15), (15, 17, 33), (8, 48, 2), (9, 49, 3),
        (16, 96, 64), (100, 100, 100), (100, 33, 257), (3, 385, 17), (200, 7, 9), (1, 500, 300), (37, 401, 515),
        (130, 97, 1000),
    ]

    @Test(arguments: 0..<sizes.count)
    func matchesTheExactProduct(size: Int) {
        let (m, n, k) = Self.sizes[size]
        for transA in [false, true] {
            for transB in [false, true] {
                for (variant, (alpha, beta)) in [(Float(1), Float(0)), (1, 1), (-0.75, 0.5)].enumerated() {
                    let t = Case(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta,
                                 pad: [0, 5, 1][variant])
                    let (a, b, c) = t.operands()
                    t.check(Self.run(t, a, b, c), a: a, b: b, c: c)
                }
            }
        }
    }

    /// A band (causal attention's triangle) skips only what it may: with op(A) zero where a
    /// reduction band says so, C is the whole product's bit for bit; with a columns band, every
    /// entry row i needs (j ≤ i + offset) is the whole product's and every other one is that or
    /// what C held. Ragged tiles, k past a packed block, n past one, negative and positive offsets.
    /// `product` runs a kernel on bf16 operands (Loom's fp32 kernel widens them) with a band.
    static func expectBandsSkipOnlyWhatTheyMay(_ kind: GemmBand.Kind,
                                               product: (Case, [UInt16], [UInt16], [Float], GemmBand) -> [Float]) {
        for (m, n, k) in [(70, 70, 64), (256, 64, 256), (33, 450, 17), (45, 37, 600), (8, 48, 2)] {
            for offset in [0, 5, -3, 40] {
                for transA in [false, true] {
                    let t = Case(transA: transA, transB: kind == .columnsUpTo, m: m, n: n, k: k, alpha: 0.5,
                                 beta: kind == .reductionFrom ? 1 : 0, pad: 1)
                    var (a, b, c) = t.operands()
                    if kind != .columnsUpTo {   // the zeros the band promises
                        for i in 0..<m {
                            for q in 0..<k where kind == .reductionUpTo ? q > i + offset : q < i - offset {
                                a[transA ? q * t.lda + i : i * t.lda + q] = 0
                            }
                        }
                    }
                    let whole = product(t, a, b, c, .none)
                    let got = product(t, a, b, c, GemmBand(kind, offset: offset))
                    var wrong = 0, first = ""
                    for i in 0..<m {
                        for j in 0..<t.ldc {
                            let e = i * t.ldc + j
                            let needed = j < n && (kind != .columnsUpTo || j <= i + offset)
                            let right = needed ? got[e].bitPattern == whole[e].bitPattern
                                : got[e].bitPattern == whole[e].bitPattern || got[e].bitPattern == c[e].bitPattern
                            if !right { wrong += 1; if first.isEmpty { first = "(\(i), \(j)): \(got[e]) against \(whole[e])" } }
                        }
                    }
                    #expect(wrong == 0, "\(kind) offset \(offset) \(t): \(wrong) wrong, first \(first)")
                }
            }
        }
    }

    @Test(arguments: [GemmBand.Kind.columnsUpTo, .reductionUpTo, .reductionFrom])
    func bandsSkipOnlyWhatTheyMay(kind: GemmBand.Kind) {
        Self.expectBandsSkipOnlyWhatTheyMay(kind) { t, a, b, c, band in
            var out = c
            out.withUnsafeMutableBufferPointer { cp in
                BF16Gemm.product(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a,
                                 lda: t.lda, b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc, band: band)
            }
            return out
        }
    }

    /// k = 0: C = β·C, and β = 0 overwrites NaN with zeros.
    @Test func emptyInnerDimensionScalesC() {
        for beta in [Float(0), 1, 0.5] {
            let t = Case(transA: false, transB: true, m: 19, n: 35, k: 0, alpha: 2, beta: beta, pad: 2)
            let (a, b, c) = t.operands()
            let got = Self.run(t, a, b, c)
            t.check(got, a: a, b: b, c: c)
            if beta == 0 { #expect((0..<t.m).allSatisfy { i in (0..<t.n).allSatisfy { got[i * t.ldc + $0] == 0 } }) }
        }
    }

    /// Without a plan, Gemm.serialBF16 runs Loom's kernel (the same bits) and parallelBF16 its
    /// split blocks on it; neither allocates.
    @Test func gemmRunsItWithoutAPlanAndAllocatesNothing() {
        ThreadPool.configure(threads: 2)
        let t = Case(transA: false, transB: false, m: 150, n: 130, k: 70, alpha: 1, beta: 1, pad: 3)
        let (a, b, c) = t.operands()
        let direct = Self.run(t, a, b, c)
        var serial = c, parallel = c
        func products() {
            serial.withUnsafeMutableBufferPointer { cp in
                Gemm.serialBF16(m: t.m, n: t.n, k: t.k, a: a, lda: t.lda, b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
            }
            parallel.withUnsafeMutableBufferPointer { cp in
                Gemm.parallelBF16(m: t.m, n: t.n, k: t.k, a: a, lda: t.lda, b: b, ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
            }
        }
        products()
        #expect(serial == direct, "Gemm.serialBF16 without a plan is Loom's kernel")
        t.check(parallel, a: a, b: b, c: c, label: " split over the pool")
        let fewest = fewestAllocations(products)
        #expect(fewest == 0, "\(fewest) heap allocations in two bf16 products")
    }
}
