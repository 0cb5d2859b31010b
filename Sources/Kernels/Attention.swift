// Attention: multi-head scaled dot-product attention softmax(Q·Kᵀ/√d)·V with causal and key-padding
// masks, forward and backward, per (batch, head) on sgemm. Queries and keys/values may come from
// different sequences (cross-attention) and any row stride (packed QKV, KV caches). Given bf16
// copies of Q, K and V (bf16 training), the four products of each block take bf16 operands with
// fp32 accumulation; the softmax and its gradient stay fp32. The Q/K/V and output projections are
// Linear layers.
import CKernelSupport
import Support

/// Shapes: B batch, Tq query positions, Tk key positions, H heads, D head size, C = H·D.
/// Row r of a query tensor is at `q + (b·Tq + t)·qStride`, head h at column offset h·D; keys and
/// values likewise, with batch stride `keyBatchStride` (default Tk·stride).
public struct AttentionShape {
    public var batch: Int, queryLength: Int, keyLength: Int, heads: Int, headSize: Int
    /// Query i may see key j only if j ≤ i + (Tk − Tq) (decoder self-attention, KV caches).
    public var causal: Bool
    public init(batch: Int, queryLength: Int, keyLength: Int, heads: Int, headSize: Int, causal: Bool) {
        self.batch = batch; self.queryLength = queryLength; self.keyLength = keyLength
        self.heads = heads; self.headSize = headSize; self.causal = causal
        smallBlocks = false   // every stored property is set before `blockRows` may be read
        smallBlocks = blockRows * keyLength * headSize <= ThreadPool.scratchFloats
    }
    public var channels: Int { heads * headSize }
    /// Floats in one probability tensor (B, H, Tq, Tk).
    public var probabilityCount: Int { batch * heads * queryLength * keyLength }

    /// Query rows processed together where the products cannot skip the masked triangle
    /// themselves (SmallGemm, OpenBLAS, oneDNN): each block multiplies only the keys its last row
    /// can see, which skips most of causal attention's upper triangle. Loom's kernels take a head's
    /// rows at once with a `GemmBand` (`Operands.forEachBlock`).
    public var blockRows: Int { causal ? max(16, queryLength / 4) : queryLength }

    /// Whether the per-block products go to SmallGemm rather than OpenBLAS, whose fixed cost per
    /// call dominates small blocks. By default blocks up to 2¹⁷ multiply-adds (the tiny GPT's
    /// 16×64×32) take SmallGemm; larger ones (the small GPT's 64×256×64) run faster on OpenBLAS,
    /// whose packing pays off there (docs/benchmarks.md). The bound also keeps the transposed keys (D·Tk floats) within the
    /// scratch every pool thread reserves, so no step allocates. Tests set it to check both.
    public var smallBlocks: Bool

    /// Keys visible to query row i of batch item b.
    @inline(__always)
    func visibleKeys(_ i: Int, _ keyLengths: UnsafePointer<Int32>?, _ b: Int) -> Int {
        var limit = causal ? min(keyLength, i + keyLength - queryLength + 1) : keyLength
        if let keyLengths { limit = min(limit, Int(keyLengths[b])) }
        return max(limit, 0)
    }
}

/// The bf16 operands of attention in a bf16 run: Q, K and V rounded to bf16 in the same layout
/// and row strides as the fp32 tensors the call also gets (the projection writes both), and, for
/// backward, scratch the output gradient (B, Tq, doutStride) is rounded into. The probabilities
/// and their gradient are rounded block by block into thread-local scratch just before the
/// products that take them.
public struct AttentionBF16 {
    public let q: UnsafePointer<UInt16>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>
    public let doutScratch: UnsafeMutablePointer<UInt16>?
    public init(q: UnsafePointer<UInt16>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>,
                doutScratch: UnsafeMutablePointer<UInt16>? = nil) {
        self.q = q; self.k = k; self.v = v; self.doutScratch = doutScratch
    }
}

public enum Attention {
    /// What both directions read: queries, keys and values with their strides, the shape, the
    /// masks and the dropout stream.
    struct Operands {
        let q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int
        let v: UnsafePointer<Float>, vStride: Int, s: AttentionShape, keyBatchStride: Int?
        let keyLengths: UnsafePointer<Int32>?, p: Float, dropoutKey: UInt64, dropoutCounter: Int
        let low: AttentionBF16?
        /// Query rows per block (`forEachBlock`), chosen once per call.
        let blockRows: Int

        init(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, kStride: Int, v: UnsafePointer<Float>,
             vStride: Int, s: AttentionShape, keyBatchStride: Int?, keyLengths: UnsafePointer<Int32>?, p: Float,
             dropoutKey: UInt64, dropoutCounter: Int, low: AttentionBF16?) {
            self.q = q; self.qStride = qStride; self.k = k; self.kStride = kStride; self.v = v; self.vStride = vStride
            self.s = s; self.keyBatchStride = keyBatchStride; self.keyLengths = keyLengths; self.p = p
            self.dropoutKey = dropoutKey; self.dropoutCounter = dropoutCounter; self.low = low
            // Where Loom's kernels run every product, they skip the triangle themselves (`band`), so
            // a block is all the rows, or in bf16 as many as the scratch for its rounded
            // probabilities holds (all of them up to 512 keys); elsewhere the blocks skip it.
            if s.causal && low != nil && Gemm.skipsBands(bf16: true) {
                blockRows = min(s.queryLength, max(16, 2 * ThreadPool.scratchFloats / max(s.keyLength, 1)))
            } else if s.causal && low == nil && !s.smallBlocks && Gemm.skipsBands(bf16: false) {
                blockRows = s.queryLength
            } else {
                blockRows = s.blockRows
            }
        }

        /// Batch item and the first row of head h's queries, keys and values for task b·H + h.
        @inline(__always)
        func head(_ task: Int) -> (b: Int, h: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
            let b = task / s.heads, h = task % s.heads, D = s.headSize
            return (b, h, q + b * s.queryLength * qStride + h * D,
                    k + b * (keyBatchStride ?? s.keyLength * kStride) + h * D,
                    v + b * (keyBatchStride ?? s.keyLength * vStride) + h * D)
        }

        /// The bf16 copies of a head's Q, K and V (at the offsets `head` gives the fp32 ones), when
        /// the products run in bf16.
        @inline(__always)
        func lowHead(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>)
            -> (q: UnsafePointer<UInt16>, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>)? {
            low.map { ($0.q + (q - self.q), $0.k + (k - self.k), $0.v + (v - self.v)) }
        }

        /// The blocks of `blockRows` query rows of batch item b (first row, rows, keys its last row
        /// sees): each block multiplies only those keys, which skips most of a causal mask's upper
        /// triangle; Loom's kernels skip the rest (`band`).
        @inline(__always)
        func forEachBlock(_ b: Int, _ body: (_ i0: Int, _ rows: Int, _ keys: Int) -> Void) {
            var i0 = 0
            while i0 < s.queryLength {
                let rows = min(blockRows, s.queryLength - i0)
                body(i0, rows, s.visibleKeys(i0 + rows - 1, keyLengths, b))
                i0 += rows
            }
        }

        /// What the products of the block starting at query row i0 may skip: with a causal mask, the
        /// block's row r sees keys j ≤ i0 + r + Tk − Tq. `columns`: the product's columns are keys
        /// (S = Q·Kᵀ, dP = dO·Vᵀ); `upTo`: its inner dimension is keys (P·V, dS·K); `from`: its rows
        /// are keys and its inner dimension the block's queries (Pᵀ·dO, dSᵀ·Q).
        @inline(__always)
        func band(_ i0: Int, _ kind: GemmBand.Kind) -> GemmBand {
            s.causal ? GemmBand(kind, offset: i0 + s.keyLength - s.queryLength) : .none
        }

        /// `value` through the dropout mask of element e of task `task`'s (Tq, Tk) probabilities.
        @inline(__always)
        func dropped(_ value: Float, task: Int, element e: Int) -> Float {
            let index = dropoutCounter + task * s.queryLength * s.keyLength + e
            return Dropout.keep(index, key: dropoutKey, threshold: Dropout.threshold(p)) ? value / (1 - p) : 0
        }
    }

    /// `rows` rows of `columns` probabilities (or their gradients; row stride `ld`) rounded to bf16
    /// into this thread's scratch, packed (row stride `columns`): the operand of the next products.
    static func roundBlock(_ p: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int) -> UnsafePointer<UInt16> {
        let scratch = loom_thread_scratch(max((rows * columns + 1) / 2, ThreadPool.scratchFloats))!
        let out = UnsafeMutableRawPointer(scratch).assumingMemoryBound(to: UInt16.self)
        for r in 0..<rows { BFloat16.round(p + r * ld, into: out + r * columns, range: 0..<columns) }
        return UnsafePointer(out)
    }

    /// The three product forms of a head's block, on SmallGemm or on OpenBLAS (one call each).
    struct Products {
        let small: Bool

        /// Bᵀ (columns × rows) in this thread's scratch when SmallGemm needs it, else nil.
        func transposed(_ b: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int) -> UnsafePointer<Float>? {
            guard small else { return nil }
            let scratch = loom_thread_scratch(max(rows * columns, ThreadPool.scratchFloats))!
            SmallGemm.transpose(b, rows: rows, columns: columns, ld: ld, into: scratch)
            return UnsafePointer(scratch)
        }

        /// C(m×n) = α·A·Bᵀ, B (n×k) given by rows; `transposed` is Bᵀ (k × seen) for SmallGemm.
        @inline(__always)
        func timesTransposed(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int, transposed: UnsafePointer<Float>?, seen: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int, band: GemmBand) {
            if small {
                SmallGemm.multiply(m: m, n: n, k: k, alpha: alpha, a: a, rowStride: lda, columnStride: 1,
                                   b: transposed!, ldb: seen, accumulate: false, c: c, ldc: ldc)
            } else if k > 0 {
                Gemm.serial(transB: true, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c,
                            ldc: ldc, band: band)
            }
        }

        /// C(m×n) = A·B (zeros when k = 0: a block whose rows see no key).
        @inline(__always)
        func times(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                   c: UnsafeMutablePointer<Float>, ldc: Int, band: GemmBand) {
            if small {
                SmallGemm.multiply(m: m, n: n, k: k, a: a, rowStride: lda, columnStride: 1, b: b, ldb: ldb,
                                   accumulate: false, c: c, ldc: ldc)
            } else if k > 0 {
                Gemm.serial(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c, ldc: ldc, band: band)
            } else {
                for r in 0..<m { (c + r * ldc).update(repeating: 0, count: n) }
            }
        }

        /// C(m×n) += Aᵀ·B, A (k×m) and B (k×n) given by rows.
        @inline(__always)
        func addTransposedTimes(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>,
                                ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, band: GemmBand) {
            if small {
                SmallGemm.multiply(m: m, n: n, k: k, a: a, rowStride: 1, columnStride: lda, b: b, ldb: ldb,
                                   accumulate: true, c: c, ldc: ldc)
            } else {
                Gemm.serial(transA: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: c, ldc: ldc,
                            band: band)
            }
        }
    }

    struct Forward: ParallelLoop {
        let x: Operands
        let out: UnsafeMutablePointer<Float>, outStride: Int, probs: UnsafeMutablePointer<Float>
        let probsDropped: UnsafeMutablePointer<Float>?

        func run(_ tasks: Range<Int>) {
            let products = Products(small: x.s.smallBlocks)
            for task in tasks { run(task, products) }
        }

        func run(_ task: Int, _ products: Products) {
            let s = x.s, Tq = s.queryLength, Tk = s.keyLength, D = s.headSize
            let alpha = 1 / Float(D).squareRoot()
            let (b, h, qbh, kbh, vbh) = x.head(task)
            let pbh = probs + task * Tq * Tk
            let dbh = x.p > 0 ? probsDropped! + task * Tq * Tk : pbh
            let low = x.lowHead(qbh, kbh, vbh)
            // The keys any row of this head sees, transposed once for SmallGemm (D, seen).
            let seen = s.visibleKeys(Tq - 1, x.keyLengths, b)
            let kt = low == nil ? products.transposed(kbh, rows: seen, columns: D, ld: x.kStride) : nil
            x.forEachBlock(b) { i0, rows, keys in
                // S = α·Q·Kᵀ
                if let low {
                    Gemm.serialBF16(transB: true, m: rows, n: keys, k: D, alpha: alpha, a: low.q + i0 * x.qStride,
                                    lda: x.qStride, b: low.k, ldb: x.kStride, beta: 0, c: pbh + i0 * Tk, ldc: Tk,
                                    band: x.band(i0, .columnsUpTo))
                } else {
                    products.timesTransposed(m: rows, n: keys, k: D, alpha: alpha, a: qbh + i0 * x.qStride, lda: x.qStride,
                                             b: kbh, ldb: x.kStride, transposed: kt, seen: seen, c: pbh + i0 * Tk, ldc: Tk,
                                             band: x.band(i0, .columnsUpTo))
                }
                for i in i0..<(i0 + rows) {
                    let row = pbh + i * Tk
                    let limit = s.visibleKeys(i, x.keyLengths, b)
                    if limit > 0 { Softmax.row(row, count: limit) }
                    for j in limit..<Tk { row[j] = 0 }
                }
                if x.p > 0 {
                    for e in (i0 * Tk)..<((i0 + rows) * Tk) { dbh[e] = x.dropped(pbh[e], task: task, element: e) }
                }
                // O = P′·V (a block whose rows see no key gets zeros: k = 0)
                let o = out + (b * Tq + i0) * outStride + h * D
                if let low, keys > 0 {
                    let p16 = Attention.roundBlock(dbh + i0 * Tk, rows: rows, columns: keys, ld: Tk)
                    Gemm.serialBF16(m: rows, n: D, k: keys, a: p16, lda: keys, b: low.v, ldb: x.vStride, beta: 0,
                                    c: o, ldc: outStride, band: x.band(i0, .reductionUpTo))
                } else {
                    products.times(m: rows, n: D, k: keys, a: dbh + i0 * Tk, lda: Tk, b: vbh, ldb: x.vStride, c: o,
                                   ldc: outStride, band: x.band(i0, .reductionUpTo))
                }
            }
        }
    }

    struct Backward: ParallelLoop {
        let x: Operands
        let dq: UnsafeMutablePointer<Float>, dqStride: Int, dk: UnsafeMutablePointer<Float>, dkStride: Int
        let dv: UnsafeMutablePointer<Float>, dvStride: Int, dprobs: UnsafeMutablePointer<Float>
        let dout: UnsafePointer<Float>, doutStride: Int, probs: UnsafePointer<Float>
        let probsDropped: UnsafePointer<Float>?
        let dout16: UnsafePointer<UInt16>?   // (B, Tq, doutStride) dout in bf16, when the products run in bf16

        func run(_ tasks: Range<Int>) {
            let products = Products(small: x.s.smallBlocks)
            for task in tasks { run(task, products) }
        }

        func run(_ task: Int, _ products: Products) {
            let s = x.s, Tq = s.queryLength, Tk = s.keyLength, D = s.headSize
            let alpha = 1 / Float(D).squareRoot()
            let (b, h, qbh, kbh, vbh) = x.head(task)
            let pbh = probs + task * Tq * Tk
            let dpbh = dprobs + task * Tq * Tk
            let dobh = dout + b * Tq * doutStride + h * D
            let used = x.p > 0 ? probsDropped! + task * Tq * Tk : pbh
            let dkbh = dk + b * Tk * dkStride + h * D, dvbh = dv + b * Tk * dvStride + h * D
            for j in 0..<Tk {
                (dkbh + j * dkStride).update(repeating: 0, count: D)
                (dvbh + j * dvStride).update(repeating: 0, count: D)
            }
            let low = x.lowHead(qbh, kbh, vbh)
            let do16 = dout16.map { $0 + (dobh - dout) }
            let seen = s.visibleKeys(Tq - 1, x.keyLengths, b)
            let vt = low == nil ? products.transposed(vbh, rows: seen, columns: D, ld: x.vStride) : nil
            x.forEachBlock(b) { i0, rows, keys in
                let dq0 = dq + (b * Tq + i0) * dqStride + h * D
                if keys == 0 {
                    for r in 0..<rows { (dq0 + r * dqStride).update(repeating: 0, count: D) }
                    return
                }
                let dpBlock = dpbh + i0 * Tk, do0 = dobh + i0 * doutStride
                // dP′ = dO·Vᵀ ; dV += P′ᵀ·dO
                if let low, let do16 {
                    let dO = do16 + i0 * doutStride
                    Gemm.serialBF16(transB: true, m: rows, n: keys, k: D, a: dO, lda: doutStride, b: low.v, ldb: x.vStride,
                                    beta: 0, c: dpBlock, ldc: Tk, band: x.band(i0, .columnsUpTo))
                    let p16 = Attention.roundBlock(used + i0 * Tk, rows: rows, columns: keys, ld: Tk)
                    Gemm.serialBF16(transA: true, m: keys, n: D, k: rows, a: p16, lda: keys, b: dO, ldb: doutStride,
                                    beta: 1, c: dvbh, ldc: dvStride, band: x.band(i0, .reductionFrom))
                } else {
                    products.timesTransposed(m: rows, n: keys, k: D, a: do0, lda: doutStride, b: vbh, ldb: x.vStride,
                                             transposed: vt, seen: seen, c: dpBlock, ldc: Tk, band: x.band(i0, .columnsUpTo))
                    products.addTransposedTimes(m: keys, n: D, k: rows, a: used + i0 * Tk, lda: Tk, b: do0,
                                                ldb: doutStride, c: dvbh, ldc: dvStride, band: x.band(i0, .reductionFrom))
                }
                if x.p > 0 {
                    for i in i0..<(i0 + rows) {
                        for j in 0..<keys { dpbh[i * Tk + j] = x.dropped(dpbh[i * Tk + j], task: task, element: i * Tk + j) }
                    }
                }
                // dS = P ⊙ (dP − Σ_j P·dP) · α   (entries a row cannot see are 0)
                for i in i0..<(i0 + rows) {
                    Softmax.backwardRow(pbh + i * Tk, dpbh + i * Tk, limit: s.visibleKeys(i, x.keyLengths, b), count: keys,
                                        scale: alpha)
                }
                // dQ = dS·K ; dK += dSᵀ·Q
                if let low {
                    let ds16 = Attention.roundBlock(dpBlock, rows: rows, columns: keys, ld: Tk)
                    Gemm.serialBF16(m: rows, n: D, k: keys, a: ds16, lda: keys, b: low.k, ldb: x.kStride, beta: 0,
                                    c: dq0, ldc: dqStride, band: x.band(i0, .reductionUpTo))
                    Gemm.serialBF16(transA: true, m: keys, n: D, k: rows, a: ds16, lda: keys, b: low.q + i0 * x.qStride,
                                    ldb: x.qStride, beta: 1, c: dkbh, ldc: dkStride, band: x.band(i0, .reductionFrom))
                } else {
                    products.times(m: rows, n: D, k: keys, a: dpBlock, lda: Tk, b: kbh, ldb: x.kStride, c: dq0,
                                   ldc: dqStride, band: x.band(i0, .reductionUpTo))
                    products.addTransposedTimes(m: keys, n: D, k: rows, a: dpBlock, lda: Tk, b: qbh + i0 * x.qStride,
                                                ldb: x.qStride, c: dkbh, ldc: dkStride, band: x.band(i0, .reductionFrom))
                }
            }
        }
    }

    /// out(B,Tq,C) = softmax(q·kᵀ/√D + mask)·v, saving the probabilities for backward.
    /// With dropout p > 0 the dropped probabilities go to `probsDropped` and feed the product.
    /// With `bf16`, both products take bf16 operands (its Q, K, V and the rounded probabilities).
    public static func forward(
        out: UnsafeMutablePointer<Float>, outStride: Int,          // (B, Tq, C)
        probs: UnsafeMutablePointer<Float>,                        // (B, H, Tq, Tk)
        q: UnsafePointer<Float>, qStride: Int,                     // (B, Tq, ≥C)
        k: UnsafePointer<Float>, kStride: Int,                     // (B, Tk, ≥C)
        v: UnsafePointer<Float>, vStride: Int,                     // (B, Tk, ≥C)
        shape s: AttentionShape,
        keyBatchStride: Int? = nil,                                // k and v alike (KV caches)
        keyLengths: UnsafePointer<Int32>? = nil,                   // (B) valid keys per item
        dropout p: Float = 0, dropoutKey: UInt64 = 0, dropoutCounter: Int = 0,
        probsDropped: UnsafeMutablePointer<Float>? = nil,          // (B, H, Tq, Tk) when p > 0
        bf16: AttentionBF16? = nil
    ) {
        let operands = Operands(q: q, qStride: qStride, k: k, kStride: kStride, v: v, vStride: vStride, s: s,
                                keyBatchStride: keyBatchStride, keyLengths: keyLengths, p: p,
                                dropoutKey: dropoutKey, dropoutCounter: dropoutCounter, low: bf16)
        let job = Forward(x: operands, out: out, outStride: outStride, probs: probs, probsDropped: probsDropped)
        Profiler.measure(.attention) { ThreadPool.shared.parallelFor(s.batch * s.heads, job) }
    }

    /// Gradients of `forward`: dq, dk, dv are overwritten (each (batch, head) writes its own block).
    /// `dprobs` is scratch of the probabilities' size. With `bf16` (its `doutScratch` given), dout
    /// is rounded to bf16 first and all four products take bf16 operands.
    public static func backward(
        dq: UnsafeMutablePointer<Float>, dqStride: Int,
        dk: UnsafeMutablePointer<Float>, dkStride: Int,
        dv: UnsafeMutablePointer<Float>, dvStride: Int,
        dprobs: UnsafeMutablePointer<Float>,                       // (B, H, Tq, Tk) scratch
        dout: UnsafePointer<Float>, doutStride: Int,               // (B, Tq, C)
        probs: UnsafePointer<Float>,                               // (B, H, Tq, Tk) from forward
        q: UnsafePointer<Float>, qStride: Int,
        k: UnsafePointer<Float>, kStride: Int,
        v: UnsafePointer<Float>, vStride: Int,
        shape s: AttentionShape,
        keyLengths: UnsafePointer<Int32>? = nil,
        dropout p: Float = 0, dropoutKey: UInt64 = 0, dropoutCounter: Int = 0,
        probsDropped: UnsafePointer<Float>? = nil,
        bf16: AttentionBF16? = nil
    ) {
        precondition(bf16 == nil || bf16?.doutScratch != nil, "Attention.backward: bf16 needs its doutScratch")
        let dout16 = bf16?.doutScratch.map { scratch in
            Profiler.measure(.conversion) { BFloat16.round(dout, into: scratch, count: s.batch * s.queryLength * doutStride) }
            return UnsafePointer(scratch)
        }
        let operands = Operands(q: q, qStride: qStride, k: k, kStride: kStride, v: v, vStride: vStride, s: s,
                                keyBatchStride: nil, keyLengths: keyLengths, p: p,
                                dropoutKey: dropoutKey, dropoutCounter: dropoutCounter, low: bf16)
        let job = Backward(x: operands, dq: dq, dqStride: dqStride, dk: dk, dkStride: dkStride, dv: dv, dvStride: dvStride,
                           dprobs: dprobs, dout: dout, doutStride: doutStride, probs: probs, probsDropped: probsDropped,
                           dout16: dout16)
        Profiler.measure(.attention) { ThreadPool.shared.parallelFor(s.batch * s.heads, job) }
    }
}
