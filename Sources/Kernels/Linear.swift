// Linear: fully connected layer out = inp · W + b with W stored (in, out) as Hugging Face GPT-2's
// Conv1D does, forward and backward on sgemm. It is not a batched or grouped matmul.

/// Shapes: N rows (B·T), I input features, O output features.
public enum Linear {
    /// out(N,O) = inp(N,I) · weight(I,O) + bias(O).
    public static func forward(
        out: UnsafeMutablePointer<Float>,      // (N, O)
        inp: UnsafePointer<Float>,             // (N, I)
        weight: UnsafePointer<Float>,          // (I, O)
        bias: UnsafePointer<Float>?,           // (O)
        rows N: Int, inputs I: Int, outputs O: Int
    ) {
        Profiler.measure(.linear) {
            if let bias { ThreadPool.shared.parallelFor(N, grain: 16, RowFill(out: out, row: bias, columns: O)) }
            Gemm.parallel(m: N, n: O, k: I, a: inp, lda: I, b: weight, ldb: O,
                          beta: bias == nil ? 0 : 1, c: out, ldc: O)
        }
    }

    /// dweight(I,O) += inpᵀ · dout; dbias(O) += Σ_rows dout; dinp(N,I) = dout · weightᵀ
    /// (overwritten, or added to when `accumulateInput`, e.g. an encoder output read by many layers).
    public static func backward(
        dinp: UnsafeMutablePointer<Float>?,    // (N, I)
        dweight: UnsafeMutablePointer<Float>,  // (I, O) accumulated
        dbias: UnsafeMutablePointer<Float>?,   // (O) accumulated
        dout: UnsafePointer<Float>,            // (N, O)
        inp: UnsafePointer<Float>,             // (N, I)
        weight: UnsafePointer<Float>,          // (I, O)
        rows N: Int, inputs I: Int, outputs O: Int, accumulateInput: Bool = false
    ) {
        Profiler.measure(.linear) {
            if let dinp {
                Gemm.parallel(transB: true, m: N, n: I, k: O, a: dout, lda: O, b: weight, ldb: O,
                              beta: accumulateInput ? 1 : 0, c: dinp, ldc: I)
            }
            Gemm.parallel(transA: true, m: I, n: O, k: N, a: inp, lda: I, b: dout, ldb: O,
                          beta: 1, c: dweight, ldc: O)
            if let dbias {
                ColumnSum.accumulate(into: dbias, from: dout, rows: N, columns: O)
            }
        }
    }
}

/// Copies one row into every row of a matrix (bias initialisation before sgemm with beta = 1).
struct RowFill: ParallelLoop {
    let out: UnsafeMutablePointer<Float>, row: UnsafePointer<Float>, columns: Int
    func run(_ rows: Range<Int>) {
        for r in rows { (out + r * columns).update(from: row, count: columns) }
    }
}

/// into(C) += Σ_rows from(N, C), split over columns; each column adds its rows in order (so the
/// result does not depend on the split), 32 columns at a time in registers.
public enum ColumnSum {
    struct Columns: ParallelLoop {
        let into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, N: Int, C: Int
        func run(_ cols: Range<Int>) {
            var c = cols.lowerBound
            while c + 32 <= cols.upperBound {
                var s0 = into.load8(c), s1 = into.load8(c + 8), s2 = into.load8(c + 16), s3 = into.load8(c + 24)
                var d = from + c
                for _ in 0..<N {
                    s0 += d.load8(0); s1 += d.load8(8); s2 += d.load8(16); s3 += d.load8(24)
                    d += C
                }
                into.store8(c, s0); into.store8(c + 8, s1); into.store8(c + 16, s2); into.store8(c + 24, s3)
                c += 32
            }
            while c + 8 <= cols.upperBound {
                var s = into.load8(c), d = from + c
                for _ in 0..<N { s += d.load8(0); d += C }
                into.store8(c, s)
                c += 8
            }
            for c in c..<cols.upperBound {
                var s = into[c]
                for row in 0..<N { s += from[row * C + c] }
                into[c] = s
            }
        }
    }
    public static func accumulate(into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>,
                                  rows N: Int, columns C: Int) {
        ThreadPool.shared.parallelFor(C, grain: 32, Columns(into: into, from: from, N: N, C: C))
    }
}
